package main

import (
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/server"
)

// httpLimits are the serve flags that bound what one request may cost:
// body sizes, JSON shape and the time a body may take to arrive.
type httpLimits struct {
	body, jsonBody, jsonDepth, jsonValues, bodyTime, bodyRate *string
}

// addHTTPLimitFlags registers the limit flags on fs, each defaulting to its
// UH_ environment variable and then to the built-in default.
func addHTTPLimitFlags(fs *flag.FlagSet, getenv func(string) string) httpLimits {
	str := func(name, env, def, usage string) *string {
		return fs.String(name, envOr(getenv, env, def), usage+" (env "+env+")")
	}
	return httpLimits{
		body: str("max-body", "UH_MAX_BODY", strconv.Itoa(server.DefaultBodyLimit),
			"largest multipart/form-data request body in bytes (files stream to disk)"),
		jsonBody: str("max-json-body", "UH_MAX_JSON_BODY", strconv.Itoa(server.DefaultJSONBodyLimit),
			"largest request body of any other type (JSON, url-encoded) in bytes; the batch setting maxBodySize overrides it for /api/batch"),
		jsonDepth: str("max-json-depth", "UH_MAX_JSON_DEPTH", strconv.Itoa(underhood.DefaultJSONMaxDepth),
			"deepest nesting of arrays and objects in a JSON body"),
		jsonValues: str("max-json-values", "UH_MAX_JSON_VALUES", strconv.Itoa(underhood.DefaultJSONMaxValues),
			"most array elements and object members in one JSON body"),
		bodyTime: str("max-body-time", "UH_MAX_BODY_TIME", server.DefaultBodyTimeout.String(),
			"time a request body may take to arrive before --min-body-rate extends it (0 disables the deadline)"),
		bodyRate: str("min-body-rate", "UH_MIN_BODY_RATE", strconv.Itoa(server.DefaultMinBodyRate),
			"bytes per second of a request body that each earn a second beyond --max-body-time"),
	}
}

// parsedLimits are the values of httpLimits, for server.Deps and rest.Deps.
type parsedLimits struct {
	body, jsonBody, bodyRate int64
	bodyTime                 time.Duration
	json                     underhood.JSONLimits
}

// parse checks and converts the flag values.
func (l httpLimits) parse() (parsedLimits, error) {
	var p parsedLimits
	positive := func(name, v string) (int64, error) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("serve: --%s: %q is not a positive integer", name, v)
		}
		return n, nil
	}
	var err error
	if p.body, err = positive("max-body", *l.body); err != nil {
		return p, err
	}
	if p.jsonBody, err = positive("max-json-body", *l.jsonBody); err != nil {
		return p, err
	}
	depth, err := positive("max-json-depth", *l.jsonDepth)
	if err != nil {
		return p, err
	}
	values, err := positive("max-json-values", *l.jsonValues)
	if err != nil {
		return p, err
	}
	p.json = underhood.JSONLimits{MaxDepth: int(depth), MaxValues: int(values)}
	if p.bodyRate, err = positive("min-body-rate", *l.bodyRate); err != nil {
		return p, err
	}
	t, err := time.ParseDuration(*l.bodyTime)
	if err != nil || t < 0 {
		return p, fmt.Errorf("serve: --max-body-time: %q is not a duration such as 30s", *l.bodyTime)
	}
	p.bodyTime = t
	if t == 0 {
		p.bodyTime = -1 // server.Deps: negative disables, zero is the default
	}
	return p, nil
}

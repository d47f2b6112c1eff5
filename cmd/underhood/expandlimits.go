package main

import (
	"flag"
	"fmt"
	"strconv"

	"github.com/underhood/underhood/record"
)

// expandLimitFlags are the serve flags that bound how many related records
// an expand may return (record.ExpandLimits).
type expandLimitFlags struct {
	response, realtime *string
}

// addExpandLimitFlags registers the expand limit flags on fs, each
// defaulting to its UH_ environment variable and then to the built-in
// default.
func addExpandLimitFlags(fs *flag.FlagSet, getenv func(string) string) expandLimitFlags {
	str := func(name, env string, def int, usage string) *string {
		return fs.String(name, envOr(getenv, env, strconv.Itoa(def)), usage+" (env "+env+")")
	}
	return expandLimitFlags{
		response: str("max-expand-records", "UH_MAX_EXPAND_RECORDS", record.DefaultMaxExpandRecords,
			"most expanded records one response may hold, each reference counted (the requests of a batch share one limit); past it the request is answered 400"),
		realtime: str("max-realtime-expand-records", "UH_MAX_REALTIME_EXPAND_RECORDS", record.DefaultMaxRealtimeExpandRecords,
			"most expanded records one realtime message may hold, each reference counted; past it the event is sent without expand and with expandError"),
	}
}

// parse checks and converts the flag values.
func (f expandLimitFlags) parse() (record.ExpandLimits, error) {
	positive := func(name, v string) (int, error) {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("serve: --%s: %q is not a positive integer", name, v)
		}
		return n, nil
	}
	var l record.ExpandLimits
	var err error
	if l.Response, err = positive("max-expand-records", *f.response); err != nil {
		return l, err
	}
	l.Realtime, err = positive("max-realtime-expand-records", *f.realtime)
	return l, err
}

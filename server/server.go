// Package server is the HTTP front door: the middleware every request passes
// through (panic recovery, request ids, access log, security headers, CORS,
// body size and time limits, caller identity, superuser addresses), the
// mounting of the protocol adapters and the static website (static.go) on
// the paths they leave. It knows no protocol itself; the adapters it
// mounts are passed in.
package server

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/ratelimit"
)

// Identifier resolves the token of a request to the caller's record.
// *auth.Service implements it.
type Identifier interface {
	Identify(ctx context.Context, token string) (*underhood.Record, error)
}

// Deps are what the server needs.
type Deps struct {
	// API serves every /api/ route (rest.NewHandler).
	API http.Handler
	// Dashboard serves everything under /_/ (admin.Handler); nil serves
	// no dashboard.
	Dashboard http.Handler
	// Auth resolves the Authorization header to the caller; nil treats every
	// request as a guest. (Leave it unset rather than assigning a nil
	// *auth.Service, which makes a non-nil interface.)
	Auth Identifier
	// Log receives the access log and recovered panics; nil is slog.Default.
	Log *slog.Logger
	// BodyLimit is the largest multipart/form-data body in bytes; 0 is
	// DefaultBodyLimit, a negative value disables the limit.
	BodyLimit int64
	// JSONBodyLimit is the largest body of any other type (JSON,
	// url-encoded forms) in bytes; 0 is DefaultJSONBodyLimit, a negative
	// value disables the limit. POST /api/batch takes the settings'
	// batch.maxBodySize instead when that is set.
	JSONBodyLimit int64
	// BodyTimeout is how long a request body may take to arrive, extended
	// by a second for every MinBodyRate bytes received; 0 is
	// DefaultBodyTimeout, a negative value disables it. MinBodyRate 0 is
	// DefaultMinBodyRate, a negative value gives no extension.
	BodyTimeout time.Duration
	MinBodyRate int64
	// Settings gives the batch body size, the superuserIPs list and the
	// trusted proxy headers; nil is RateLimits, and when both are nil
	// neither applies.
	Settings SettingsSource
	// AllowedOrigins are the origins CORS admits; empty or "*" admits any.
	AllowedOrigins []string
	// RateLimits gives the per-IP rate-limit rules (ratelimit.go); nil
	// applies none. RateLimitStore holds the counts; nil keeps them in
	// this process's memory.
	RateLimits     RateLimitSource
	RateLimitStore ratelimit.Store
	// Static serves the paths no adapter owns (NewStatic); nil answers
	// them with 404.
	Static http.Handler
}

// New returns the handler of the whole HTTP surface.
func New(d Deps) http.Handler {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.BodyLimit == 0 {
		d.BodyLimit = DefaultBodyLimit
	}
	if d.JSONBodyLimit == 0 {
		d.JSONBodyLimit = DefaultJSONBodyLimit
	}
	if d.BodyTimeout == 0 {
		d.BodyTimeout = DefaultBodyTimeout
	}
	if d.MinBodyRate == 0 {
		d.MinBodyRate = DefaultMinBodyRate
	}
	if d.Settings == nil && d.RateLimits != nil {
		d.Settings = d.RateLimits
	}
	mux := http.NewServeMux()
	routes(mux, d)
	return chain(mux,
		requestID,
		accessLog(d.Log),
		recoverPanics(d.Log),
		securityHeaders,
		cors(d.AllowedOrigins),
		limitBodyTime(d.BodyTimeout, d.MinBodyRate),
		limitBody(bodyLimits{multipart: d.BodyLimit, other: d.JSONBodyLimit, settings: d.Settings}),
		identify(d.Auth, d.Log),
		guardSuperusers(d.Settings),
		limitRate(d.RateLimits, d.RateLimitStore, d.Log),
	)
}

// chain wraps h in middleware so that the first one listed runs first.
func chain(h http.Handler, middleware ...func(http.Handler) http.Handler) http.Handler {
	for i := len(middleware) - 1; i >= 0; i-- {
		h = middleware[i](h)
	}
	return h
}

// Package server is the HTTP front door: the middleware every request passes
// through (panic recovery, request ids, access log, security headers, CORS,
// body limit, caller identity) and the mounting of the protocol adapters.
// It knows no protocol itself; the adapters it mounts are passed in.
package server

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/ratelimit"
)

// DefaultBodyLimit is the largest request body accepted when Deps.BodyLimit
// is zero: 32 MiB, as PocketBase.
const DefaultBodyLimit = 32 << 20

// Identifier resolves the token of a request to the caller's record.
// *auth.Service implements it.
type Identifier interface {
	Identify(ctx context.Context, token string) (*underhood.Record, error)
}

// Deps are what the server needs.
type Deps struct {
	// API serves every /api/ route (rest.NewHandler).
	API http.Handler
	// Auth resolves the Authorization header to the caller; nil treats every
	// request as a guest. (Leave it unset rather than assigning a nil
	// *auth.Service, which makes a non-nil interface.)
	Auth Identifier
	// Log receives the access log and recovered panics; nil is slog.Default.
	Log *slog.Logger
	// BodyLimit is the largest request body in bytes; 0 is
	// DefaultBodyLimit, a negative value disables the limit.
	BodyLimit int64
	// AllowedOrigins are the origins CORS admits; empty or "*" admits any.
	AllowedOrigins []string
	// RateLimits gives the per-IP rate-limit rules (ratelimit.go); nil
	// applies none. RateLimitStore holds the counts; nil keeps them in
	// this process's memory.
	RateLimits     RateLimitSource
	RateLimitStore ratelimit.Store
}

// New returns the handler of the whole HTTP surface.
func New(d Deps) http.Handler {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.BodyLimit == 0 {
		d.BodyLimit = DefaultBodyLimit
	}
	mux := http.NewServeMux()
	routes(mux, d)
	return chain(mux,
		requestID,
		accessLog(d.Log),
		recoverPanics(d.Log),
		securityHeaders,
		cors(d.AllowedOrigins),
		limitBody(d.BodyLimit),
		identify(d.Auth, d.Log),
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

package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/underhood/underhood"
)

// errorBody is PocketBase's error JSON.
type errorBody struct {
	Status  int            `json:"status"`
	Message string         `json:"message"`
	Data    map[string]any `json:"data"`
}

// writeError writes PocketBase's error JSON with no field data.
func writeError(w http.ResponseWriter, status int, message string) {
	b, _ := json.Marshal(errorBody{Status: status, Message: message, Data: map[string]any{}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// recorder remembers the status and size of a response. It passes Flush
// through (server-sent events) and unwraps for http.ResponseController.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Flush() {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// requestIDKey is the context key of the request id.
type requestIDKey struct{}

// requestIDFrom returns the id requestID gave the request.
func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// requestID gives every request an id, echoed in X-Request-Id so a client
// report can be matched with the log. A well-formed id sent by a proxy is
// kept.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// accessLog logs one line per request. It logs the path without the query
// and never a header: tokens travel in both.
func accessLog(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rec := &recorder{ResponseWriter: w}
			next.ServeHTTP(rec, r)
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			level := slog.LevelInfo
			if status >= 500 {
				level = slog.LevelError
			}
			log.LogAttrs(r.Context(), level, "request",
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", status),
				slog.Duration("duration", time.Since(start)),
				slog.Int64("bytes", rec.bytes),
				slog.String("remote", r.RemoteAddr),
				slog.String("request_id", requestIDFrom(r.Context())),
			)
		})
	}
}

// recoverPanics turns a panic in a handler into PocketBase's generic 500 and
// logs it with its stack. http.ErrAbortHandler keeps its meaning (abort the
// response silently).
func recoverPanics(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := &recorder{ResponseWriter: w}
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.ErrorContext(r.Context(), "panic serving request",
					"method", r.Method, "path", r.URL.Path, "request_id", requestIDFrom(r.Context()),
					"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if rec.status != 0 {
					// The response has begun; all that can be done is to
					// cut it short.
					panic(http.ErrAbortHandler)
				}
				writeError(rec, http.StatusInternalServerError, "Something went wrong while processing your request.")
			}()
			next.ServeHTTP(rec, r)
		})
	}
}

// securityHeaders sets the headers that keep browsers from sniffing types,
// framing the API into other sites and leaking URLs in Referer.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "SAMEORIGIN")
		h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
		next.ServeHTTP(w, r)
	})
}

// corsMethods are the methods a cross-origin request may use.
const corsMethods = "GET, HEAD, PUT, PATCH, POST, DELETE"

// corsHeaders are the request headers allowed when a preflight does not
// list its own.
const corsHeaders = "Authorization, Content-Type, Accept, X-Requested-With, X-Request-Id"

// cors admits cross-origin requests from allowed origins (any, by default,
// as PocketBase does: tokens travel in a header, not a cookie, so another
// origin gains nothing it could not get with curl). The origin is echoed
// rather than "*" so that browsers also accept credentialed requests.
// Preflights are answered here with 204.
func cors(allowed []string) func(http.Handler) http.Handler {
	anyOrigin := len(allowed) == 0
	set := map[string]bool{}
	for _, o := range allowed {
		o = strings.TrimRight(strings.TrimSpace(o), "/")
		if o == "*" {
			anyOrigin = true
		}
		set[strings.ToLower(o)] = true
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			origin := r.Header.Get("Origin")
			h := w.Header()
			h.Add("Vary", "Origin")
			preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
			if origin == "" || !(anyOrigin || set[strings.ToLower(origin)]) {
				if preflight {
					// Not an allowed origin: answer without CORS headers,
					// which the browser treats as a refusal.
					w.WriteHeader(http.StatusNoContent)
					return
				}
				next.ServeHTTP(w, r)
				return
			}
			h.Set("Access-Control-Allow-Origin", origin)
			if !preflight {
				h.Set("Access-Control-Expose-Headers", "X-Request-Id")
				next.ServeHTTP(w, r)
				return
			}
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			h.Set("Access-Control-Allow-Methods", corsMethods)
			if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
				h.Set("Access-Control-Allow-Headers", req)
			} else {
				h.Set("Access-Control-Allow-Headers", corsHeaders)
			}
			h.Set("Access-Control-Max-Age", "86400")
			w.WriteHeader(http.StatusNoContent)
		})
	}
}

// identify resolves the Authorization header to the caller's record and
// stores it in the request context (underhood.Identity). A missing, invalid,
// expired or revoked token makes the request a guest's; it never fails the
// request by itself, so endpoints open to guests still answer.
func identify(id Identifier, log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if id == nil {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token := r.Header.Get("Authorization")
			if token == "" {
				next.ServeHTTP(w, r)
				return
			}
			rec, err := id.Identify(r.Context(), token)
			if err != nil {
				// A token that does not hold makes a guest, as in
				// PocketBase. A lookup that failed says nothing about
				// the token: answered as a guest, a signed-in client
				// would be told it may not act, or see less, and sign
				// its user out; it is told to try again instead.
				var ue *underhood.Error
				switch {
				case errors.As(err, &ue) && ue.Code == underhood.EUnavailable:
					writeError(w, http.StatusServiceUnavailable, ue.Message)
				case !errors.As(err, &ue) || ue.Code == underhood.EInternal:
					log.ErrorContext(r.Context(), "identify caller", "path", r.URL.Path,
						"request_id", requestIDFrom(r.Context()), "err", err)
					writeError(w, http.StatusInternalServerError, "Something went wrong while processing your request.")
				default:
					next.ServeHTTP(w, r)
				}
				return
			}
			next.ServeHTTP(w, r.WithContext(underhood.WithIdentity(r.Context(), rec)))
		})
	}
}

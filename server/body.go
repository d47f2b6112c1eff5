package server

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"time"

	"github.com/underhood/underhood/record"
)

// Defaults of the body limits (Deps).
const (
	// DefaultBodyLimit is the largest multipart/form-data body: 32 MiB, as
	// PocketBase. Files are streamed to disk, never held whole in memory.
	DefaultBodyLimit = 32 << 20
	// DefaultJSONBodyLimit is the largest body of any other type (JSON,
	// url-encoded forms): 2 MiB. Such a body is decoded in memory, where it
	// can take thirty times its size, so it is kept far below the
	// multipart limit.
	DefaultJSONBodyLimit = 2 << 20
	// DefaultBodyTimeout is how long a request body may take to arrive
	// before DefaultMinBodyRate extends it.
	DefaultBodyTimeout = 30 * time.Second
	// DefaultMinBodyRate is the average rate, in bytes per second, that
	// earns a body time beyond DefaultBodyTimeout: each byte received adds
	// 1/rate seconds, so a 32 MiB upload at 64 KiB/s still arrives whole
	// while a body trickling a byte a second is cut off after 30 s.
	DefaultMinBodyRate = 64 << 10
)

// SettingsSource gives the middleware the current settings (batch body
// size, superuser addresses, trusted proxy headers), read on every request
// so that a change applies at once. *record.Service implements it.
type SettingsSource interface {
	Settings() record.Settings
}

// errTooLarge writes the 413 that names the limit a body passed.
func errTooLarge(w http.ResponseWriter, limit int64) {
	writeError(w, http.StatusRequestEntityTooLarge, TooLargeMessage(limit))
}

// TooLargeMessage is the message of the 413 for a body over limit bytes.
func TooLargeMessage(limit int64) string {
	return fmt.Sprintf("Request entity too large: the limit for this body is %d bytes.", limit)
}

// bodyLimits are the body limits of Deps with their defaults applied.
type bodyLimits struct {
	multipart int64 // multipart/form-data bodies
	other     int64 // any other body
	settings  SettingsSource
}

// limitFor returns the limit of r's body, or -1 for none. A batch takes
// the settings' batch.maxBodySize when it is set, as in PocketBase.
func (l bodyLimits) limitFor(r *http.Request) int64 {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	limit := l.other
	if ct == "multipart/form-data" {
		limit = l.multipart
	}
	if r.URL.Path == "/api/batch" && l.settings != nil {
		if max := l.settings.Settings().Batch.MaxBodySize; max > 0 {
			limit = max
		}
	}
	return limit
}

// limitBody refuses a body larger than its limit (limitFor): at once with
// 413 when Content-Length announces it (the body is never read), otherwise
// when a handler reads past the limit (http.MaxBytesError, which the
// adapters report as 413 naming the limit). Reading stops at the limit and
// the connection is closed after the answer, so the rest of a chunked body
// is never read.
func limitBody(l bodyLimits) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			limit := l.limitFor(r)
			if limit < 0 || r.Body == nil || r.Body == http.NoBody {
				next.ServeHTTP(w, r)
				return
			}
			if r.ContentLength > limit {
				// Ask the server to drop the connection rather than drain
				// an unwanted upload.
				w.Header().Set("Connection", "close")
				errTooLarge(w, limit)
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, limit)
			next.ServeHTTP(w, r)
		})
	}
}

// limitBodyTime gives a request body timeout to arrive, plus 1/minRate
// seconds for each byte received (minRate 0: none), with a read deadline
// on the connection. A body that misses it fails to read with an error
// that wraps os.ErrDeadlineExceeded (the adapters answer 408), and the
// connection is closed. Only the body is timed: once it has been read the
// deadline is lifted, and requests without a body (downloads, SSE and
// WebSocket streams) never get one. timeout <= 0 disables it.
func limitBodyTime(timeout time.Duration, minRate int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if timeout <= 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Body == nil || r.Body == http.NoBody {
				next.ServeHTTP(w, r)
				return
			}
			rc := http.NewResponseController(w)
			start := time.Now()
			if err := rc.SetReadDeadline(start.Add(timeout)); err != nil {
				// Not a connection that takes deadlines (a test recorder).
				next.ServeHTTP(w, r)
				return
			}
			r.Body = &timedBody{body: r.Body, rc: rc, start: start, timeout: timeout, minRate: minRate, deadline: start.Add(timeout)}
			next.ServeHTTP(w, r)
		})
	}
}

// timedBody moves the read deadline on as bytes arrive and lifts it when
// the body ends.
type timedBody struct {
	body     io.ReadCloser
	rc       *http.ResponseController
	start    time.Time
	timeout  time.Duration
	minRate  int64
	read     int64
	deadline time.Time
	done     bool
}

// errBodyTimeout is what reading a body that missed its deadline returns.
type errBodyTimeout struct{ err error }

func (e *errBodyTimeout) Error() string { return "request body not received in time: " + e.err.Error() }
func (e *errBodyTimeout) Unwrap() error { return os.ErrDeadlineExceeded }

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	b.read += int64(n)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return n, &errBodyTimeout{err: err}
		}
		if !b.done {
			b.done = true
			b.rc.SetReadDeadline(time.Time{})
		}
		return n, err
	}
	if b.minRate > 0 && n > 0 {
		earned := time.Duration(float64(b.read) / float64(b.minRate) * float64(time.Second))
		// Move the deadline in steps of a second at least: setting it is
		// cheap but not free.
		if d := b.start.Add(b.timeout + earned); d.Sub(b.deadline) >= time.Second {
			b.deadline = d
			b.rc.SetReadDeadline(d)
		}
	}
	return n, err
}

func (b *timedBody) Close() error { return b.body.Close() }

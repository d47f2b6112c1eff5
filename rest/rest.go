// Package rest is the PocketBase-compatible HTTP adapter: it decodes the
// requests under /api/ into calls on record.Service, auth.Service and the
// files, realtime and webhooks capabilities, and encodes their results and
// errors in PocketBase's JSON shapes. Who may do what is decided by those
// services, which take the caller (underhood.Identity) as an argument;
// where a refusal must come before a request is read (a guest gets 401
// whatever it sends), a handler asks the service first. routes.go lists
// every route.
package rest

import (
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"os"
	"strconv"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/auth"
	"github.com/underhood/underhood/events"
	"github.com/underhood/underhood/files"
	"github.com/underhood/underhood/realtime"
	"github.com/underhood/underhood/record"
)

// Deps are what the REST adapter needs.
type Deps struct {
	Records *record.Service
	Auth    *auth.Service
	Log     *slog.Logger
	// Realtime serves /api/realtime; nil leaves realtime out.
	Realtime *realtime.Broker
	// Webhooks serves /api/webhooks; nil leaves webhooks out.
	Webhooks *events.Webhooks
	// Files stores uploads and serves /api/files; nil leaves files out
	// (multipart bodies are then read without their files).
	Files *files.Service
	// JSON bounds the nesting depth and the number of values of a JSON
	// body; zero fields are underhood's defaults.
	JSON underhood.JSONLimits
}

// api holds the dependencies the handlers share.
type api struct {
	records  *record.Service
	auth     *auth.Service
	log      *slog.Logger
	realtime *realtime.Broker
	webhooks *events.Webhooks
	files    *files.Service
	json     underhood.JSONLimits
	mux      *http.ServeMux
}

// NewHandler returns the handler of every /api/ route.
func NewHandler(d Deps) http.Handler {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	a := &api{records: d.Records, auth: d.Auth, log: d.Log, realtime: d.Realtime, webhooks: d.Webhooks, files: d.Files, json: d.JSON, mux: http.NewServeMux()}
	a.routes()
	return a.mux
}

// callerOf returns the caller of r: the record its token was issued to,
// or nil for a guest.
func callerOf(r *http.Request) *underhood.Record { return underhood.Identity(r.Context()) }

// handlerFunc is a handler that returns its error for one place to write.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (a *api) handle(pattern string, h handlerFunc) {
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			a.writeError(w, r, err)
		}
	})
}

// statusOf maps an error code to its HTTP status; this table is the only
// place where that mapping lives.
var statusOf = map[string]int{
	underhood.EInvalid:         http.StatusBadRequest,
	underhood.EUnauthorized:    http.StatusUnauthorized,
	underhood.EForbidden:       http.StatusForbidden,
	underhood.ENotFound:        http.StatusNotFound,
	underhood.EConflict:        http.StatusConflict,
	underhood.ETooLarge:        http.StatusRequestEntityTooLarge,
	underhood.ETooManyRequests: http.StatusTooManyRequests,
	underhood.EInternal:        http.StatusInternalServerError,
	underhood.EUnavailable:     http.StatusServiceUnavailable,
}

// errorBody is PocketBase's error JSON.
type errorBody struct {
	Status  int            `json:"status"`
	Message string         `json:"message"`
	Data    map[string]any `json:"data"`
}

// errorResponse converts err to its status and body. Internal errors are
// reported generically; their cause goes to the log only.
func (a *api) errorResponse(r *http.Request, err error) errorBody {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return a.errorResponse(r, errTooLarge(mbe.Limit))
	}
	var ue *underhood.Error
	if !errors.As(err, &ue) && errors.Is(err, os.ErrDeadlineExceeded) {
		// The server's time limit for the body (server.limitBodyTime).
		return errorBody{Status: http.StatusRequestTimeout, Message: "The request body was not received in time.", Data: map[string]any{}}
	}
	if !errors.As(err, &ue) || ue.Code == underhood.EInternal {
		a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		return errorBody{Status: http.StatusInternalServerError, Message: "Something went wrong while processing your request.", Data: map[string]any{}}
	}
	status, ok := statusOf[ue.Code]
	if !ok {
		status = http.StatusBadRequest
	}
	data := ue.Data
	if data == nil {
		data = map[string]any{}
	}
	return errorBody{Status: status, Message: ue.Message, Data: data}
}

func (a *api) writeError(w http.ResponseWriter, r *http.Request, err error) {
	body := a.errorResponse(r, err)
	var ue *underhood.Error
	if errors.As(err, &ue) && ue.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(ue.RetryAfter.Seconds()))))
	}
	writeJSON(w, body.Status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, err = w.Write(b)
	return err
}

func writeRaw(w http.ResponseWriter, status int, b []byte) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, err := w.Write(b)
	return err
}

func noContent(w http.ResponseWriter) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *api) handleHealth(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]any{"message": "API is healthy.", "code": 200, "data": map[string]any{}})
}

func (a *api) handleNotFound(w http.ResponseWriter, r *http.Request) error {
	return underhood.Errorf(underhood.ENotFound, "The requested resource wasn't found.")
}

package underhood

import (
	"errors"
	"fmt"
	"time"
)

// Error codes. Each maps to exactly one HTTP status in the rest adapter.
const (
	EInvalid         = "invalid"           // 400
	EUnauthorized    = "unauthorized"      // 401
	EForbidden       = "forbidden"         // 403
	ENotFound        = "not_found"         // 404
	EConflict        = "conflict"          // 409
	ETooLarge        = "too_large"         // 413
	ETooManyRequests = "too_many_requests" // 429
	EInternal        = "internal"          // 500
	EUnavailable     = "unavailable"       // 503
)

// Error is the one error type of the system. Code decides the status a
// client sees, Message is safe to show to a client, Data carries per-field
// details (values are FieldError or nested map[string]any), and Err is the
// wrapped cause, which is logged but never shown. RetryAfter, set on
// ETooManyRequests, is how long the client must wait.
type Error struct {
	Code       string
	Message    string
	Data       map[string]any
	Err        error
	RetryAfter time.Duration
}

// FieldError describes what is wrong with one field of a request body.
type FieldError struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Params  map[string]any `json:"params,omitempty"`
}

func (e FieldError) Error() string { return e.Code + ": " + e.Message }

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = e.Code
	}
	if e.Err != nil {
		return msg + ": " + e.Err.Error()
	}
	if len(e.Data) > 0 {
		return fmt.Sprintf("%s %v", msg, e.Data)
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a client-safe message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns a 400 error whose data names the fields at fault.
func Invalid(message string, fields map[string]any) *Error {
	return &Error{Code: EInvalid, Message: message, Data: fields}
}

// Internal wraps err as an internal error: the client sees a generic message.
func Internal(err error) *Error {
	return &Error{Code: EInternal, Message: "Something went wrong while processing your request.", Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain, EInternal
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the client-safe message of err.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != EInternal && e.Message != "" {
		return e.Message
	}
	return "Something went wrong while processing your request."
}

// Wrap prefixes *errp with the name of the operation that failed when it is
// an internal failure (any error without a client-facing code), so that the
// log line of a 500 says where it came from. It is meant to be deferred at
// the top of an exported method with a named error result:
//
//	defer underhood.Wrap(&err, "record.SaveCollection(%s)", name)
//
// An *Error with a client-facing code (EInvalid, ENotFound, …) is left
// exactly as it is: its message is what the client reads. The arguments
// are evaluated (and boxed, which allocates) on every call, failed or not:
// a method on a hot path names only itself, since the log line of a
// request already holds its path.
func Wrap(errp *error, format string, args ...any) {
	if *errp == nil || ErrorCode(*errp) != EInternal {
		return
	}
	*errp = fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), *errp)
}

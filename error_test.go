package underhood

import (
	"errors"
	"strings"
	"testing"
)

func TestWrap(t *testing.T) {
	cause := errors.New("disk I/O error")
	notFound := Errorf(ENotFound, "The requested resource wasn't found.")
	invalid := Invalid("Failed to save collection.", map[string]any{"name": FieldError{Code: "validation_required", Message: "Cannot be blank."}})
	tests := []struct {
		name string
		err  error
		// wrapped: the error gains the operation's name; otherwise it
		// must come back as the very same value.
		wrapped bool
	}{
		{"nil", nil, false},
		{"not found", notFound, false},
		{"invalid", invalid, false},
		{"too many requests", &Error{Code: ETooManyRequests, Message: "Too Many Requests."}, false},
		{"internal error", Internal(cause), true},
		{"plain error", cause, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err
			Wrap(&err, "record.SaveCollection(%s)", "posts")
			if !tt.wrapped {
				if err != tt.err {
					t.Fatalf("Wrap(%v) = %v, want it unchanged", tt.err, err)
				}
				return
			}
			if !strings.HasPrefix(err.Error(), "record.SaveCollection(posts): ") {
				t.Errorf("Wrap(%v) = %q, want it to start with the operation", tt.err, err)
			}
			if !errors.Is(err, cause) {
				t.Errorf("Wrap(%v) lost its cause", tt.err)
			}
			if code := ErrorCode(err); code != EInternal {
				t.Errorf("ErrorCode(Wrap(%v)) = %q, want %q", tt.err, code, EInternal)
			}
			if msg := ErrorMessage(err); msg != "Something went wrong while processing your request." {
				t.Errorf("ErrorMessage(Wrap(%v)) = %q, want the generic message", tt.err, msg)
			}
		})
	}
}

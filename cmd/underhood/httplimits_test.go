package main

import (
	"context"
	"io"
	"strings"
	"testing"
)

// TestServeHTTPLimits: the body limits are set with UH_MAX_... (and the
// flags of the same names), and a bad value stops serve with an error
// naming the flag.
func TestServeHTTPLimits(t *testing.T) {
	env := func(k string) string {
		return map[string]string{"UH_MAX_JSON_BODY": "1024", "UH_MAX_JSON_DEPTH": "4"}[k]
	}
	srv := startRun(t, t.TempDir(), env)
	login := srv.base + "/api/collections/users/auth-with-password"
	tests := []struct {
		name    string
		body    map[string]any
		status  int
		message string
	}{
		{"over UH_MAX_JSON_BODY", map[string]any{"identity": strings.Repeat("x", 2000)}, 413, "Request entity too large: the limit for this body is 1024 bytes."},
		{"over UH_MAX_JSON_DEPTH", map[string]any{"identity": [][][][]int{{{{1}}}}}, 400, "The JSON body is nested too deeply: the limit is 4 levels."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := call(t, "POST", login, "", tt.body)
			if status != tt.status || body["message"] != tt.message {
				t.Errorf("POST auth-with-password = %d %v, want %d %q", status, body, tt.status, tt.message)
			}
		})
	}

	for _, arg := range []string{"--max-json-body=2MB", "--max-body=0", "--max-json-values=-1", "--max-body-time=soon", "--min-body-rate=x"} {
		flag, _, _ := strings.Cut(arg, "=")
		err := run(context.Background(), []string{"underhood", "serve", "--http", "127.0.0.1:0", "--dir", t.TempDir(), arg}, noEnv, nil, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), flag) {
			t.Errorf("serve %s = %v, want an error naming %s", arg, err, flag)
		}
	}
}

package main

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/underhood/underhood/realtime"
)

func TestRealtimeFlags(t *testing.T) {
	defaults := realtime.Limits{CheckTime: realtime.DefaultCheckTime, Checks: realtime.DefaultChecks(), Backlog: realtime.DefaultBacklog}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    realtime.Limits
		wantErr string // part of the error; "" = none
	}{
		{"defaults", nil, nil, defaults, ""},
		{"flags", []string{"--max-realtime-check-time", "2s", "--max-realtime-checks", "8", "--max-realtime-backlog", "100"}, nil,
			realtime.Limits{CheckTime: 2 * time.Second, Checks: 8, Backlog: 100}, ""},
		{"environment", nil, map[string]string{"UH_MAX_REALTIME_CHECK_TIME": "500ms", "UH_MAX_REALTIME_CHECKS": "3", "UH_MAX_REALTIME_BACKLOG": "10"},
			realtime.Limits{CheckTime: 500 * time.Millisecond, Checks: 3, Backlog: 10}, ""},
		{"a flag over its variable", []string{"--max-realtime-checks", "6"}, map[string]string{"UH_MAX_REALTIME_CHECKS": "3"},
			realtime.Limits{CheckTime: realtime.DefaultCheckTime, Checks: 6, Backlog: realtime.DefaultBacklog}, ""},
		{"no checks", []string{"--max-realtime-checks", "0"}, nil, realtime.Limits{}, "--max-realtime-checks must be at least 1"},
		{"no backlog", []string{"--max-realtime-backlog", "-1"}, nil, realtime.Limits{}, "--max-realtime-backlog must be at least 1"},
		{"no time", []string{"--max-realtime-check-time", "0s"}, nil, realtime.Limits{}, "--max-realtime-check-time must be more than 0"},
		{"a bad variable", nil, map[string]string{"UH_MAX_REALTIME_CHECK_TIME": "5"}, realtime.Limits{}, "UH_MAX_REALTIME_CHECK_TIME"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("serve", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			limits := realtimeFlags(fs, func(k string) string { return tt.env[k] })
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			got, err := limits()
			switch {
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("limits() error = %v, want one with %q", err, tt.wantErr)
			case tt.wantErr == "" && err != nil:
				t.Errorf("limits() error = %v", err)
			case got != tt.want:
				t.Errorf("limits() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

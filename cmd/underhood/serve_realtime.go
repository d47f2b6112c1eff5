package main

import (
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/underhood/underhood/realtime"
)

// realtimeFlags adds serve's limits of the realtime checks to fs, each
// with its environment variable; the function it returns reads them once
// fs is parsed.
func realtimeFlags(fs *flag.FlagSet, getenv func(string) string) func() (realtime.Limits, error) {
	var envErr error
	envDuration := func(key string, def time.Duration) time.Duration {
		v := envOr(getenv, key, "")
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil && envErr == nil {
			envErr = fmt.Errorf("serve: %s: %q is not a duration (e.g. 5s)", key, v)
		}
		return d
	}
	envInt := func(key string, def int) int {
		v := envOr(getenv, key, "")
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil && envErr == nil {
			envErr = fmt.Errorf("serve: %s: %q is not a whole number", key, v)
		}
		return n
	}
	checkTime := fs.Duration("max-realtime-check-time", envDuration("UH_MAX_REALTIME_CHECK_TIME", realtime.DefaultCheckTime),
		"how long checking one change against one realtime subscription (its rule, filter and expand) may take; past it the subscription's clients are disconnected (UH_MAX_REALTIME_CHECK_TIME)")
	checks := fs.Int("max-realtime-checks", envInt("UH_MAX_REALTIME_CHECKS", realtime.DefaultChecks()),
		"how many realtime subscriptions may be checked at once; at most half of them slow ones (UH_MAX_REALTIME_CHECKS; default two per processor, at least 4)")
	backlog := fs.Int("max-realtime-backlog", envInt("UH_MAX_REALTIME_BACKLOG", realtime.DefaultBacklog),
		"how many changes may wait for one realtime subscription's checks; past it the subscription's clients are disconnected (UH_MAX_REALTIME_BACKLOG)")
	return func() (realtime.Limits, error) {
		switch {
		case envErr != nil:
			return realtime.Limits{}, envErr
		case *checkTime <= 0:
			return realtime.Limits{}, fmt.Errorf("serve: --max-realtime-check-time must be more than 0, got %v", *checkTime)
		case *checks < 1:
			return realtime.Limits{}, fmt.Errorf("serve: --max-realtime-checks must be at least 1, got %d", *checks)
		case *backlog < 1:
			return realtime.Limits{}, fmt.Errorf("serve: --max-realtime-backlog must be at least 1, got %d", *backlog)
		}
		return realtime.Limits{CheckTime: *checkTime, Checks: *checks, Backlog: *backlog}, nil
	}
}

// Package ratelimit counts events per key in fixed time windows, for
// request and login-attempt limits. The in-process Memory store bounds its
// memory; a shared store (Redis, for several nodes) implements the same
// Store interface.
package ratelimit

import (
	"context"
	"time"
)

// Store counts hits per key in fixed windows.
//
// Add adds n hits (n may be 0, to read) to key's current window of length
// window, opening a new window when there is none or the last one has
// ended, and returns the number of hits in the window and when it ends.
// Reset forgets key.
type Store interface {
	Add(ctx context.Context, key string, n int, window time.Duration) (count int, ends time.Time, err error)
	Reset(ctx context.Context, key string) error
}

// Limit is at most Max hits per Window.
type Limit struct {
	Max    int
	Window time.Duration
}

// Allow counts one hit for key against l and reports how long the caller
// must wait: 0 when the hit is within the limit. now is the time the store
// measures its windows with.
func Allow(ctx context.Context, s Store, key string, l Limit, now time.Time) (time.Duration, error) {
	return check(ctx, s, key, l, 1, now)
}

// Blocked reports, without counting a hit, how long key must wait before
// its next hit is allowed: 0 when it may go ahead.
func Blocked(ctx context.Context, s Store, key string, l Limit, now time.Time) (time.Duration, error) {
	return check(ctx, s, key, l, 0, now)
}

func check(ctx context.Context, s Store, key string, l Limit, n int, now time.Time) (time.Duration, error) {
	if l.Max <= 0 || l.Window <= 0 {
		return 0, nil
	}
	count, ends, err := s.Add(ctx, key, n, l.Window)
	if err != nil {
		return 0, err
	}
	// With n == 0 the question is whether one more hit would fit.
	if count+1-n <= l.Max {
		return 0, nil
	}
	// A window never lasts longer than l.Window; a shared store's clock
	// (ends) may run a little ahead of now.
	wait := min(ends.Sub(now), l.Window)
	if wait < time.Second {
		// Retry-After counts whole seconds; never tell a client "now".
		wait = time.Second
	}
	return wait, nil
}

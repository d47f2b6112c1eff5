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
// A negative n takes hits away from a window that has not ended, never
// below zero, and opens none. Reset forgets key.
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
	_, wait, err := check(ctx, s, key, l, 1, now)
	return wait, err
}

// Reserve counts one hit for key against l before the work it stands for
// is done, and returns the count of the window, this hit included, and
// how long the caller must wait: 0 when the hit is within the limit.
// Counting first is what bounds concurrent attempts: of any number that
// arrive at once, at most l.Max see a wait of 0. A caller gives a hit
// back with Refund when its work turns out not to count (a login that
// succeeded, an attempt refused by another limit).
func Reserve(ctx context.Context, s Store, key string, l Limit, now time.Time) (count int, wait time.Duration, err error) {
	return check(ctx, s, key, l, 1, now)
}

// Refund gives back one hit of key's current window under l. It never
// opens a window and never takes a count below zero, so it gives no
// credit beyond what was counted.
func Refund(ctx context.Context, s Store, key string, l Limit) error {
	if l.Max <= 0 || l.Window <= 0 {
		return nil
	}
	_, _, err := s.Add(ctx, key, -1, l.Window)
	return err
}

// Blocked reports, without counting a hit, how long key must wait before
// its next hit is allowed: 0 when it may go ahead.
func Blocked(ctx context.Context, s Store, key string, l Limit, now time.Time) (time.Duration, error) {
	_, wait, err := check(ctx, s, key, l, 0, now)
	return wait, err
}

func check(ctx context.Context, s Store, key string, l Limit, n int, now time.Time) (int, time.Duration, error) {
	if l.Max <= 0 || l.Window <= 0 {
		return 0, 0, nil
	}
	count, ends, err := s.Add(ctx, key, n, l.Window)
	if err != nil {
		return 0, 0, err
	}
	// With n == 0 the question is whether one more hit would fit.
	if count+1-n <= l.Max {
		return count, 0, nil
	}
	// A window never lasts longer than l.Window; a shared store's clock
	// (ends) may run a little ahead of now.
	wait := min(ends.Sub(now), l.Window)
	if wait < time.Second {
		// Retry-After counts whole seconds; never tell a client "now".
		wait = time.Second
	}
	return count, wait, nil
}

package auth

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/ratelimit"
)

// Scopes of per-identity attempt limits: one per family of credential
// endpoints. The limits of a scope are the rate-limit rules labelled
// "identity:<scope>" in the settings (all of them apply: say, 5 a minute
// and 20 an hour), or else those labelled "identity:*"; with rate limits
// disabled, or no such rule, attempts are not limited per identity.
const (
	ScopePassword = "auth-with-password"
)

// identityLabelPrefix marks the rate-limit rules that limit attempts per
// identity rather than requests per client IP.
const identityLabelPrefix = "identity:"

// msgTooManyRequests is PocketBase's message for 429.
const msgTooManyRequests = "Too many requests."

// UseLimiter makes a count attempts in s instead of its own memory, so that
// several nodes share the counts. Call it before serving requests.
func (a *Service) UseLimiter(s ratelimit.Store) { a.limiter = s }

// newLimiter returns the in-process counter store of a.
func (a *Service) newLimiter() ratelimit.Store {
	return ratelimit.NewMemory(0, func() time.Time { return a.now() })
}

// attemptKey is the key of an identity's attempts: the collection id and
// the identity as typed, lower-cased, so that "Bob@x.io" and "bob@x.io"
// share their count.
func attemptKey(c *underhood.Collection, identity string) string {
	return c.ID + ":" + strings.ToLower(strings.TrimSpace(identity))
}

// limitAttempt counts one attempt of key (an attemptKey) in scope and
// returns a 429 error carrying the wait when the identity has used up its
// attempts. A flow that counts only failures calls clearAttempts after a
// success.
func (a *Service) limitAttempt(ctx context.Context, scope, key string) error {
	var longest time.Duration
	for _, l := range a.identityLimits(scope) {
		wait, err := ratelimit.Allow(ctx, a.limiter, limitKey(scope, key, l), l, a.now())
		if err != nil {
			// Fail closed: without its counts the limit cannot be enforced.
			return underhood.Internal(fmt.Errorf("count %s attempt: %w", scope, err))
		}
		longest = max(longest, wait)
	}
	if longest > 0 {
		return TooManyRequests(longest)
	}
	return nil
}

// limitKey is the counter of key's attempts in scope under l.
func limitKey(scope, key string, l ratelimit.Limit) string {
	return identityLabelPrefix + scope + "\x00" + l.Window.String() + "\x00" + key
}

// clearAttempts forgets the attempts of key in scope, after it proved who
// it is, so that only failed attempts add up to the limit.
func (a *Service) clearAttempts(ctx context.Context, scope, key string) {
	for _, l := range a.identityLimits(scope) {
		if err := a.limiter.Reset(ctx, limitKey(scope, key, l)); err != nil {
			a.log.Warn("clear attempt count", "scope", scope, "err", err)
		}
	}
}

// identityLimits returns the per-identity limits of scope from the current
// settings.
func (a *Service) identityLimits(scope string) []ratelimit.Limit {
	rl := a.records.Settings().RateLimits
	if !rl.Enabled {
		return nil
	}
	var own, fallback []ratelimit.Limit
	for _, r := range rl.Rules {
		l := ratelimit.Limit{Max: r.MaxRequests, Window: time.Duration(r.Duration) * time.Second}
		switch strings.TrimSpace(r.Label) {
		case identityLabelPrefix + scope:
			own = append(own, l)
		case identityLabelPrefix + "*":
			fallback = append(fallback, l)
		}
	}
	if len(own) > 0 {
		return own
	}
	return fallback
}

// TooManyRequests returns the 429 error that tells a client to wait.
func TooManyRequests(wait time.Duration) *underhood.Error {
	return &underhood.Error{Code: underhood.ETooManyRequests, Message: msgTooManyRequests, RetryAfter: wait}
}

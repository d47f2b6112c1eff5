package auth

import (
	"context"
	"fmt"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/ratelimit"
)

// ScopeIPFailures limits the failed logins of one client address, across
// every account: the defence against trying one password on many
// accounts, which the per-account limits cannot see. Only failures count,
// so a busy address (an office behind one NAT, a load test) logging in
// successfully is never held up. Its rules are labelled
// "identity:ip-failures".
const ScopeIPFailures = "ip-failures"

type clientIPKey struct{}

// WithClientIP returns a copy of ctx carrying the client's address, as the
// server determined it (trusted proxy headers included).
func WithClientIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, clientIPKey{}, ip)
}

// ClientIPFrom returns the address stored by WithClientIP, or "".
func ClientIPFrom(ctx context.Context) string {
	ip, _ := ctx.Value(clientIPKey{}).(string)
	return ip
}

// maxInFlight bounds the password checks of one identity running at the
// same moment: failures are counted when they are known, so without it a
// burst of concurrent guesses would all pass the check before the first
// failure is counted.
const maxInFlight = 32

// enterAttempt admits one more concurrent attempt of key in scope, or
// returns a 429 error; the caller calls leave when its attempt is over.
func (a *Service) enterAttempt(ctx context.Context, scope, key string) (leave func(), err error) {
	if key == "" || len(a.identityLimits(scope)) == 0 {
		return func() {}, nil
	}
	k := "inflight\x00" + scope + "\x00" + key
	n, _, err := a.limiter.Add(ctx, k, 1, time.Minute)
	leave = func() {
		if _, _, err := a.limiter.Add(context.WithoutCancel(ctx), k, -1, time.Minute); err != nil {
			a.log.Warn("count attempts in flight", "scope", scope, "err", err)
		}
	}
	if err != nil {
		return nil, underhood.Internal(fmt.Errorf("count %s attempts in flight: %w", scope, err))
	}
	if n > maxInFlight {
		leave()
		return nil, TooManyRequests(time.Second)
	}
	return leave, nil
}

// checkFailures returns a 429 error when key has used up its failed
// attempts in scope, without counting anything. Only failures count, so
// a login that succeeds never holds up the next one.
func (a *Service) checkFailures(ctx context.Context, scope, key string) error {
	if key == "" {
		return nil
	}
	var longest time.Duration
	for _, l := range a.identityLimits(scope) {
		wait, err := ratelimit.Blocked(ctx, a.limiter, limitKey(scope, key, l), l, a.now())
		if err != nil {
			// Fail closed: without its counts the limit cannot be enforced.
			return underhood.Internal(fmt.Errorf("read failed %s attempts: %w", scope, err))
		}
		longest = max(longest, wait)
	}
	if longest > 0 {
		return TooManyRequests(longest)
	}
	return nil
}

// countFailure counts one failed attempt of key in scope.
func (a *Service) countFailure(ctx context.Context, scope, key string) {
	if key == "" {
		return
	}
	for _, l := range a.identityLimits(scope) {
		if _, err := ratelimit.Allow(ctx, a.limiter, limitKey(scope, key, l), l, a.now()); err != nil {
			a.log.Warn("count failed attempt", "scope", scope, "err", err)
		}
	}
}

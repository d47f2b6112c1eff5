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

// checkIPFailures returns a 429 error when the client's address has used
// up its failed logins, without counting anything.
func (a *Service) checkIPFailures(ctx context.Context) error {
	ip := ClientIPFrom(ctx)
	if ip == "" {
		return nil
	}
	var longest time.Duration
	for _, l := range a.identityLimits(ScopeIPFailures) {
		wait, err := ratelimit.Blocked(ctx, a.limiter, limitKey(ScopeIPFailures, ip, l), l, a.now())
		if err != nil {
			return underhood.Internal(fmt.Errorf("read failed logins of the client address: %w", err))
		}
		longest = max(longest, wait)
	}
	if longest > 0 {
		return TooManyRequests(longest)
	}
	return nil
}

// countIPFailure counts one failed login of the client's address.
func (a *Service) countIPFailure(ctx context.Context) {
	ip := ClientIPFrom(ctx)
	if ip == "" {
		return
	}
	for _, l := range a.identityLimits(ScopeIPFailures) {
		if _, err := ratelimit.Allow(ctx, a.limiter, limitKey(ScopeIPFailures, ip, l), l, a.now()); err != nil {
			a.log.Warn("count failed login of the client address", "err", err)
		}
	}
}

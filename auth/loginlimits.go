package auth

import (
	"context"
	"fmt"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/ratelimit"
)

// Failed password logins are limited three ways, each counted before the
// password is checked (so a burst of concurrent guesses cannot all pass a
// check made before the first failure is known) and given back when the
// login succeeds (so only failures add up):
//
//   - per account and client address (ScopePassword): the limit that
//     refuses. An attacker's failures count against the attacker's
//     address only, never against the owner's, so no one can lock an
//     account out by failing on purpose.
//   - per client address, across accounts (ScopeIPFailures): one address
//     trying one password on many accounts.
//   - per account, across addresses (ScopeAccountFailures): many
//     addresses guessing one account. Past it an address may still make
//     its first attempt of the minute, but no more, so a botnet gets one
//     guess per address while the owner, who types the right password,
//     is not held up.

// ScopeIPFailures limits the failed logins of one client address, across
// every account. Its rules are labelled "identity:ip-failures".
const ScopeIPFailures = "ip-failures"

// ScopeAccountFailures limits the failed logins of one account, across
// every client address; past it only an address's first attempt of the
// minute is evaluated. Its rules are labelled "identity:account-failures".
const ScopeAccountFailures = "account-failures"

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

// reservation is one attempt counted against the limits of one scope
// before it is evaluated.
type reservation struct {
	scope, key string
	limits     []ratelimit.Limit
	// wait is how long the caller must wait when the attempt is over a
	// limit (0 when within every one).
	wait time.Duration
	// first reports that no other attempt was counted in the shortest
	// window.
	first bool
}

// reserve counts one attempt of key in scope against each of the scope's
// limits. An empty key, or a scope without limits, reserves nothing.
func (a *Service) reserve(ctx context.Context, scope, key string) (*reservation, error) {
	res := &reservation{scope: scope, key: key, first: true}
	if key == "" {
		return res, nil
	}
	shortest := time.Duration(0)
	for _, l := range a.identityLimits(scope) {
		n, wait, err := ratelimit.Reserve(ctx, a.limiter, limitKey(scope, key, l), l, a.now())
		if err != nil {
			a.refund(ctx, res)
			// Fail closed: without its counts the limit cannot be enforced.
			return nil, underhood.Internal(fmt.Errorf("count %s attempt: %w", scope, err))
		}
		res.limits = append(res.limits, l)
		res.wait = max(res.wait, wait)
		if shortest == 0 || l.Window < shortest {
			shortest, res.first = l.Window, n <= 1
		}
	}
	return res, nil
}

// refund gives back the attempts res counted.
func (a *Service) refund(ctx context.Context, res *reservation) {
	if res == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	for _, l := range res.limits {
		if err := ratelimit.Refund(ctx, a.limiter, limitKey(res.scope, res.key, l), l); err != nil {
			a.log.Warn("give back attempt", "scope", res.scope, "err", err)
		}
	}
}

// passwordCheck is a password login admitted by the failure limits.
type passwordCheck struct {
	byIP, byPair, byAccount *reservation
}

// admitPasswordCheck counts a password login for account (an attemptKey)
// from the client address ip ("" when unknown) against the failure limits
// before the password is checked, and returns a 429 error when it must not
// be evaluated. The caller reports the outcome with succeeded; a failed
// attempt keeps its counts.
func (a *Service) admitPasswordCheck(ctx context.Context, account, ip string) (*passwordCheck, error) {
	pc := &passwordCheck{}
	var err error
	if pc.byIP, err = a.reserve(ctx, ScopeIPFailures, ip); err != nil {
		return nil, err
	}
	if pc.byPair, err = a.reserve(ctx, ScopePassword, account+"\x00"+ip); err != nil {
		a.refund(ctx, pc.byIP)
		return nil, err
	}
	if pc.byAccount, err = a.reserve(ctx, ScopeAccountFailures, account); err != nil {
		a.refund(ctx, pc.byIP)
		a.refund(ctx, pc.byPair)
		return nil, err
	}
	wait := max(pc.byIP.wait, pc.byPair.wait)
	if !pc.byPair.first {
		// Past the account's own limit only an address's first attempt
		// of the minute goes ahead.
		wait = max(wait, pc.byAccount.wait)
	}
	if wait > 0 {
		pc.refundAll(ctx, a)
		return nil, TooManyRequests(wait)
	}
	return pc, nil
}

// succeeded gives back the attempt of a login that proved the password,
// and forgets the earlier failures of its account from its address.
func (pc *passwordCheck) succeeded(ctx context.Context, a *Service) {
	a.refund(ctx, pc.byIP)
	a.refund(ctx, pc.byAccount)
	a.clearAttempts(ctx, ScopePassword, pc.byPair.key)
}

func (pc *passwordCheck) refundAll(ctx context.Context, a *Service) {
	a.refund(ctx, pc.byIP)
	a.refund(ctx, pc.byPair)
	a.refund(ctx, pc.byAccount)
}

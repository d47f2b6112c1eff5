package auth

import (
	"context"
	"fmt"
	"sync"
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
	ip                      string
}

// admitPasswordCheck counts a password login for account (an attemptKey)
// from the client address ip ("" when unknown) against the failure limits
// before the password is checked, and returns a 429 error when it must not
// be evaluated. An attempt over a limit only because other checks from
// the same address are still being evaluated on this node waits for them
// (up to maxCheckWait): they may succeed and give their counts back, so
// concurrent logins with the right password all go through while
// concurrent guesses are evaluated no more often than the limit allows.
// The caller reports the outcome with succeeded, and calls finished when
// the check is over; a failed attempt keeps its counts.
func (a *Service) admitPasswordCheck(ctx context.Context, account, ip string) (*passwordCheck, error) {
	// Logins that wait go in turn, in the order they came: woken all at
	// once, they would race for each freed slot and the unlucky ones wait
	// many times as long as the rest (the shared benchmark's concurrent
	// logins saw a p99 of 4.2 s against 1.6 s before they waited).
	var ticket uint64
	defer func() {
		if ticket != 0 {
			a.checks.leave(ip, ticket)
		}
	}()
	var timeout <-chan time.Time
	lastWait := time.Second // what a login refused before it tried is told
	for {
		settled := a.checks.watch()
		if ticket == 0 || a.checks.first(ip, ticket) {
			if ticket == 0 && a.checks.queued(ip) {
				ticket = a.checks.enqueue(ip) // others wait already: after them
			} else {
				pc, wait, err := a.tryAdmit(ctx, account, ip)
				if err != nil {
					return nil, err
				}
				if wait == 0 {
					a.checks.add(ip)
					pc.ip = ip
					return pc, nil
				}
				lastWait = wait
				if !a.checks.busy(ip) {
					select {
					case <-settled: // a check ended since: try again
						continue
					default:
						return nil, TooManyRequests(wait)
					}
				}
				if ticket == 0 {
					ticket = a.checks.enqueue(ip)
				}
			}
		}
		if timeout == nil {
			t := time.NewTimer(maxCheckWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-settled:
		case <-ctx.Done():
			return nil, TooManyRequests(lastWait)
		case <-timeout:
			return nil, TooManyRequests(lastWait)
		}
	}
}

// maxCheckWait bounds how long a login waits for the checks in flight
// from its address before it is refused.
const maxCheckWait = 10 * time.Second

// tryAdmit reserves an attempt in the three scopes and returns how long
// the caller must wait when one is over its limit (0: admitted).
func (a *Service) tryAdmit(ctx context.Context, account, ip string) (*passwordCheck, time.Duration, error) {
	pc := &passwordCheck{}
	var err error
	if pc.byIP, err = a.reserve(ctx, ScopeIPFailures, ip); err != nil {
		return nil, 0, err
	}
	if pc.byPair, err = a.reserve(ctx, ScopePassword, account+"\x00"+ip); err != nil {
		a.refund(ctx, pc.byIP)
		return nil, 0, err
	}
	if pc.byAccount, err = a.reserve(ctx, ScopeAccountFailures, account); err != nil {
		a.refund(ctx, pc.byIP)
		a.refund(ctx, pc.byPair)
		return nil, 0, err
	}
	wait := max(pc.byIP.wait, pc.byPair.wait)
	if !pc.byPair.first {
		// Past the account's own limit only an address's first attempt
		// of the minute goes ahead.
		wait = max(wait, pc.byAccount.wait)
	}
	if wait > 0 {
		pc.refundAll(ctx, a)
		return nil, wait, nil
	}
	return pc, 0, nil
}

// checksInFlight counts, per client address, the password checks this
// node has admitted and not finished, keeps the logins waiting for them in
// order, and tells waiters when one ends or leaves.
type checksInFlight struct {
	mu      sync.Mutex
	n       map[string]int
	waiting map[string][]uint64 // tickets of the waiting logins, in order
	ticket  uint64
	settled chan struct{} // closed when a check ends or a waiter leaves
}

// watch returns a channel closed when the next check ends.
func (f *checksInFlight) watch() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.settled == nil {
		f.settled = make(chan struct{})
	}
	return f.settled
}

// enqueue puts a login from ip at the end of its address's line and
// returns its ticket.
func (f *checksInFlight) enqueue(ip string) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.waiting == nil {
		f.waiting = map[string][]uint64{}
	}
	f.ticket++
	f.waiting[ip] = append(f.waiting[ip], f.ticket)
	return f.ticket
}

// queued reports whether logins from ip are waiting.
func (f *checksInFlight) queued(ip string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.waiting[ip]) > 0
}

// first reports whether ticket is next in ip's line.
func (f *checksInFlight) first(ip string, ticket uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := f.waiting[ip]
	return len(q) > 0 && q[0] == ticket
}

// leave takes ticket out of ip's line and wakes the others, one of which
// may now be first.
func (f *checksInFlight) leave(ip string, ticket uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := f.waiting[ip]
	for i, t := range q {
		if t == ticket {
			q = append(q[:i:i], q[i+1:]...)
			break
		}
	}
	if len(q) == 0 {
		delete(f.waiting, ip)
	} else {
		f.waiting[ip] = q
	}
	f.wake()
}

// wake closes settled; f.mu is held.
func (f *checksInFlight) wake() {
	if f.settled != nil {
		close(f.settled)
		f.settled = nil
	}
}

// busy reports whether a check from ip is being evaluated.
func (f *checksInFlight) busy(ip string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n[ip] > 0
}

func (f *checksInFlight) add(ip string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == nil {
		f.n = map[string]int{}
	}
	f.n[ip]++
}

func (f *checksInFlight) done(ip string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n[ip]--; f.n[ip] <= 0 {
		delete(f.n, ip)
	}
	f.wake()
}

// finished ends the check: logins from the same address waiting for it
// try again.
func (pc *passwordCheck) finished(a *Service) { a.checks.done(pc.ip) }

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

package realtime

import (
	"context"
	"errors"
	"runtime"
	"time"

	"github.com/underhood/underhood"
)

// Checking events against subscriptions, so that no client's cost delays
// or drops another's events.
//
// Each group has a queue of its own: dispatch only appends an event to
// the queue of every group it concerns, and checkers (goroutines, at most
// Limits.Checks) take the groups whose queue is not empty and check their
// events in order, each event against each group with a budget of its
// own (Limits.CheckTime). A group is checked by one checker at a time, so
// its messages keep the order of the events; different groups are checked
// at once. A client with several groups still takes its messages in the
// order of the events: Take holds back a message while another of the
// client's groups has an earlier event still unchecked (horizon).
//
// Groups are fast or slow by what their checks have cost (slowCheck).
// Fast groups are checked first and by every checker; slow ones by at
// most half of them, so the other half is always free for the fast ones.
// A group never checked yet is checked in a goroutine of its own, which
// its checker waits for no longer than slowCheck: if it takes longer,
// the group is slow and its check goes on while the checker moves on, so
// a guest who subscribes with a costly filter costs the others at most
// slowCheck, once. (A group that was fast and turns slow, because the
// records its filter reads grew, holds up the few fast groups its checker
// took with it for that one check.)
//
// A group loses its events only by its own cost: when one check exceeds
// the budget, or more than Limits.Backlog events wait for it, its clients
// are disconnected, as clients too slow to keep up are (an SSE or
// WebSocket client then reconnects and subscribes again, and knows that
// it may have missed events).

// Limits bounds the work of checking events against subscriptions. A
// zero field takes its default.
type Limits struct {
	// CheckTime is how long the check of one event for one group (its
	// rule, its filter and its expansion) may take.
	CheckTime time.Duration
	// Checks is how many checkers check groups at once. First checks
	// that outlast slowCheck go on beside them, no more than Checks of
	// them and of the slow checks together.
	Checks int
	// Backlog is how many events may wait for one group's check.
	Backlog int
}

// Default limits.
const (
	DefaultCheckTime = 5 * time.Second
	DefaultBacklog   = 1024
)

// DefaultChecks is the default of Limits.Checks: two per processor, at
// least four (checks wait for the database as much as they compute).
func DefaultChecks() int { return max(4, 2*runtime.GOMAXPROCS(0)) }

func (l Limits) withDefaults() Limits {
	if l.CheckTime <= 0 {
		l.CheckTime = DefaultCheckTime
	}
	if l.Checks <= 0 {
		l.Checks = DefaultChecks()
	}
	if l.Backlog <= 0 {
		l.Backlog = DefaultBacklog
	}
	return l
}

// SetLimits replaces the limits of the checks (zero fields take their
// defaults). Call it before serving.
func (b *Broker) SetLimits(l Limits) {
	b.smu.Lock()
	b.limits = l.withDefaults()
	b.smu.Unlock()
}

const (
	// slowCheck is the cost from which a group is slow.
	slowCheck = 20 * time.Millisecond
	// groupBatch is how many fast groups a checker takes at once, and
	// fastBatch how many events of each: the fewer times the checkers
	// take the lock, the less they wait for each other.
	groupBatch = 8
	fastBatch  = 64
)

// job is one event waiting for a group's check. Its record is shared by
// the groups and not changed.
type job struct {
	seq    uint64
	action string
	rec    *underhood.Record
}

// How a checker takes groups.
type checkMode int

const (
	checkFast  checkMode = iota // a batch of groups, in the checker
	checkProbe                  // one group never checked: in a goroutine it waits for up to slowCheck
	checkSlow                   // one group, one event, in the checker
)

// slowLane is how many slow checks may run at once: half the checkers.
// b.smu is held.
func (b *Broker) slowLane() int { return max(1, b.limits.Checks/2) }

// isSlow reports whether g's checks have been costly. b.smu is held.
func (g *group) isSlow() bool { return g.checked && g.cost >= slowCheck }

// setHorizon keeps g.horizon the position of g's first waiting event (0:
// none). b.smu is held.
func (g *group) setHorizon() {
	var h uint64
	if len(g.jobs) > 0 {
		h = g.jobs[0].seq
	}
	g.horizon.Store(h)
}

// fanOut queues the event j for each group of matched, all at once as
// far as Take can tell, and returns the groups whose backlog was full.
func (b *Broker) fanOut(j job, matched []*group) (overflow []*group) {
	b.smu.Lock()
	defer b.smu.Unlock()
	queued := 0
	for _, g := range matched {
		if g.gone {
			continue
		}
		if len(g.jobs) >= b.limits.Backlog {
			g.gone = true
			b.dropJobs(g)
			overflow = append(overflow, g)
			continue
		}
		g.jobs = append(g.jobs, j)
		if len(g.jobs) == 1 {
			g.setHorizon()
		}
		if b.queueGroup(g) {
			queued++
		}
	}
	b.fanned.Store(j.seq)
	b.kick(queued)
	return overflow
}

// dropJobs drops the events waiting for g, but those being checked.
// b.smu is held.
func (b *Broker) dropJobs(g *group) {
	n := len(g.inflight)
	clear(g.jobs[n:])
	g.jobs = g.jobs[:n]
	g.setHorizon()
}

// queueGroup queues g for a checker when it has events and none has it, and
// reports whether it did. b.smu is held.
func (b *Broker) queueGroup(g *group) bool {
	if g.running || g.queued || g.gone || len(g.jobs) == 0 {
		return false
	}
	g.queued = true
	if g.isSlow() {
		b.slowQueue = append(b.slowQueue, g)
	} else {
		b.fastQueue = append(b.fastQueue, g)
	}
	return true
}

// kick wakes or starts checkers for n newly queued groups: one for each
// batch of them, as far as there are checkers. b.smu is held.
func (b *Broker) kick(n int) {
	for k := (n + groupBatch - 1) / groupBatch; k > 0 && !b.closing; k-- {
		switch {
		case b.idle > 0:
			b.idle--
			b.work.Signal()
		case b.checkers < b.limits.Checks:
			b.checkers++
			b.wg.Add(1)
			go b.checker()
		default:
			return
		}
	}
}

// checker checks groups until the broker closes.
func (b *Broker) checker() {
	defer b.wg.Done()
	// A context of its own, under which each check's: the checks of
	// different checkers do not share the lock of one parent.
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	var budgets checkBudget
	defer budgets.stop()
	var batch []*group
	b.smu.Lock()
	for {
		var mode checkMode
		var ok bool
		batch, mode, ok = b.next(batch[:0])
		if !ok {
			b.checkers--
			b.smu.Unlock()
			return
		}
		if len(batch) == 0 {
			b.idle++
			b.work.Wait()
			continue
		}
		budget := b.limits.CheckTime
		b.smu.Unlock()
		switch mode {
		case checkFast:
			for _, g := range batch {
				b.checkEvents(ctx, &budgets, g, budget)
			}
			b.finish(batch, false)
		case checkProbe:
			b.probe(ctx, batch[0], budget)
		case checkSlow:
			b.checkEvents(ctx, &budgets, batch[0], budget)
			b.finish(batch, true)
		}
		clear(batch)
		b.smu.Lock()
	}
}

// next appends to batch the groups a checker is to check, and says how:
// fast groups first, several at once, then slow ones while the slow lane
// has room. It returns no group when there is nothing to do, and false
// when the broker closes. b.smu is held.
func (b *Broker) next(batch []*group) ([]*group, checkMode, bool) {
	if b.closing {
		return batch, 0, false
	}
	for len(b.fastQueue) > 0 && len(batch) < groupBatch {
		g := b.fastQueue[0]
		if !g.checked && len(batch) > 0 {
			break // a probe goes alone
		}
		b.fastQueue[0] = nil
		b.fastQueue = b.fastQueue[1:]
		g.queued = false
		if g.gone || len(g.jobs) == 0 {
			continue
		}
		if g.checked {
			b.take(g, fastBatch)
			batch = append(batch, g)
			continue
		}
		if b.slowRunning < b.limits.Checks {
			b.slowRunning++
			b.take(g, 1)
			return append(batch, g), checkProbe, true
		}
		// Too many checks of unknown or high cost run already: this one
		// waits with the slow groups.
		g.checked, g.cost = true, slowCheck
		b.queueGroup(g)
	}
	if len(batch) > 0 {
		return batch, checkFast, true
	}
	for len(b.slowQueue) > 0 && b.slowRunning < b.slowLane() {
		g := b.slowQueue[0]
		b.slowQueue[0] = nil
		b.slowQueue = b.slowQueue[1:]
		g.queued = false
		if g.gone || len(g.jobs) == 0 {
			continue
		}
		b.slowRunning++
		b.take(g, 1)
		return append(batch, g), checkSlow, true
	}
	return batch, 0, true
}

// take gives g's first n events (or fewer) to a checker. b.smu is held.
func (b *Broker) take(g *group, n int) {
	g.running = true
	n = min(n, len(g.jobs))
	g.inflight = g.jobs[:n:n]
}

// probe checks the first event of g, a group never checked, in a
// goroutine of its own, and waits for it no longer than slowCheck: a
// costly group goes on being checked without its checker.
func (b *Broker) probe(ctx context.Context, g *group, budget time.Duration) {
	done := make(chan struct{})
	b.wg.Add(1) // the checker is counted: Close waits for both
	go func() {
		defer b.wg.Done()
		defer close(done)
		var budgets checkBudget
		defer budgets.stop()
		b.checkEvents(ctx, &budgets, g, budget)
		b.finish([]*group{g}, true)
	}()
	t := time.NewTimer(slowCheck)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// checkEvents checks the events a checker took of g, each with a budget
// of its own, and publishes their messages. It stops after a check that
// was slow: the events left wait for g's next turn.
func (b *Broker) checkEvents(ctx context.Context, budgets *checkBudget, g *group, budget time.Duration) {
	g.checkedNow, g.costNow, g.overBudget = 0, 0, false
	for _, j := range g.inflight {
		start := time.Now()
		cctx := budgets.context(ctx, start, budget)
		m := b.evaluate(cctx, g, j.action, j.rec)
		cost := time.Since(start)
		over := errors.Is(cctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
		g.checkedNow++
		g.costNow = max(g.costNow, cost)
		if m != nil {
			m.seq = j.seq
			// The message is in the feed before the horizon passes its
			// event (finish): Take never misses it.
			wake, lagging := g.feed.publish(m)
			for _, c := range wake {
				if c.asleep.CompareAndSwap(true, false) {
					c.wake()
				}
			}
			for _, c := range lagging {
				b.log.Warn("realtime: client too slow, disconnecting", "client", c.ID)
				b.Disconnect(c)
			}
		}
		if over {
			g.overBudget = true
			b.log.Warn("realtime: a subscription's check took longer than its budget; disconnecting its clients",
				"collection", j.rec.Collection.Name, "topic", g.sub.Topic, "budget", budget)
			return
		}
		if cost >= slowCheck {
			return
		}
	}
}

// checkBudget gives the checks of one goroutine their budget: a context
// whose deadline is the budget away from the check's start, give or take
// a sixteenth. The cheap checks that follow each other share one, which
// costs far less than a context and a timer each.
type checkBudget struct {
	ctx      context.Context
	cancel   context.CancelFunc
	deadline time.Time
}

// context returns the context of a check that starts now.
func (cb *checkBudget) context(parent context.Context, now time.Time, budget time.Duration) context.Context {
	if cb.ctx != nil && cb.deadline.Sub(now) >= budget-budget/16 {
		return cb.ctx
	}
	cb.stop()
	cb.deadline = now.Add(budget)
	cb.ctx, cb.cancel = context.WithDeadline(parent, cb.deadline)
	return cb.ctx
}

func (cb *checkBudget) stop() {
	if cb.cancel != nil {
		cb.cancel()
	}
	cb.ctx, cb.cancel = nil, nil
}

// finish ends the checks of batch: the events checked leave their
// groups, whose horizons move on (waking the clients that waited for
// them), and the groups are queued again when events wait for them. A
// group over budget is dropped and its clients disconnected. slow says
// that the batch was a slow lane's check.
func (b *Broker) finish(batch []*group, slow bool) {
	var waiters []*Client
	var dropped []*group
	b.smu.Lock()
	queued := 0
	for _, g := range batch {
		n := g.checkedNow
		clear(g.jobs[:n])
		g.jobs = g.jobs[n:]
		g.inflight = nil
		g.running = false
		if g.overBudget {
			g.gone = true
			dropped = append(dropped, g)
		}
		if g.gone {
			b.dropJobs(g)
		}
		g.setHorizon()
		for _, c := range g.waiters {
			c.waitingOn = nil
		}
		waiters = append(waiters, g.waiters...)
		g.waiters = nil
		if !g.checked || g.costNow >= slowCheck {
			g.cost = g.costNow
		} else {
			g.cost = (3*g.cost + g.costNow) / 4
		}
		g.checked = true
		if b.queueGroup(g) {
			queued++
		}
	}
	if slow {
		b.slowRunning--
		if len(b.slowQueue) > 0 {
			queued++ // a slow group may start
		}
	}
	b.kick(queued)
	b.smu.Unlock()

	for _, c := range waiters {
		if c.asleep.CompareAndSwap(true, false) {
			c.wake()
		}
	}
	for _, g := range dropped {
		b.disconnectGroup(g)
	}
}

// disconnectGroup disconnects every client of g.
func (b *Broker) disconnectGroup(g *group) {
	for _, c := range g.feed.clients() {
		b.Disconnect(c)
	}
}

// waitFor registers c to be woken when g's horizon passes h, and reports
// false when it has passed already. c.mu is held.
func (b *Broker) waitFor(c *Client, g *group, h uint64) bool {
	b.smu.Lock()
	defer b.smu.Unlock()
	if g.horizon.Load() != h {
		return false
	}
	if c.waitingOn != g {
		c.waitingOn = g
		g.waiters = append(g.waiters, c)
	}
	return true
}

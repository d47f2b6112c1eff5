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
// slowCheck, once.
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
	// Checks is how many groups may be checked at once.
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
	// fastBatch is how many events of a fast group a checker checks
	// before it lets the other groups go first.
	fastBatch = 64
)

// job is one event waiting for a group's check. Its record is shared by
// the groups and not changed.
type job struct {
	seq    uint64
	action string
	rec    *underhood.Record
}

// How a checker takes a group.
type checkMode int

const (
	checkFast  checkMode = iota // in the checker, a batch of events
	checkProbe                  // never checked: in a goroutine it waits for up to slowCheck
	checkSlow                   // in the checker, one event
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
		b.ready(g)
	}
	b.fanned.Store(j.seq)
	return overflow
}

// dropJobs drops the events waiting for g, but the one being checked.
// b.smu is held.
func (b *Broker) dropJobs(g *group) {
	n := 0
	if g.running && len(g.jobs) > 0 {
		n = 1
	}
	clear(g.jobs[n:])
	g.jobs = g.jobs[:n]
	g.setHorizon()
}

// ready queues g for a checker when it has events and none has it.
// b.smu is held.
func (b *Broker) ready(g *group) {
	if g.running || g.queued || g.gone || len(g.jobs) == 0 {
		return
	}
	g.queued = true
	if g.isSlow() {
		b.slowQueue = append(b.slowQueue, g)
	} else {
		b.fastQueue = append(b.fastQueue, g)
	}
	b.kick()
}

// kick wakes a waiting checker, or starts one when all are busy and there
// is room. b.smu is held.
func (b *Broker) kick() {
	switch {
	case b.closing:
	case b.idle > 0:
		b.idle--
		b.work.Signal()
	case b.checkers < b.limits.Checks:
		b.checkers++
		b.wg.Add(1)
		go b.checker()
	}
}

// checker checks groups until the broker closes.
func (b *Broker) checker() {
	defer b.wg.Done()
	b.smu.Lock()
	for {
		g, mode, ok := b.next()
		if !ok {
			b.checkers--
			b.smu.Unlock()
			return
		}
		if g == nil {
			b.idle++
			b.work.Wait()
			continue
		}
		b.smu.Unlock()
		switch mode {
		case checkFast:
			b.checkFast(g)
		case checkProbe:
			b.probe(g)
		case checkSlow:
			b.checkOne(g)
			b.smu.Lock()
			b.slowRunning--
			b.release(g)
			b.smu.Unlock()
		}
		b.smu.Lock()
	}
}

// next takes the group a checker is to check, and how: fast groups
// first, then slow ones while the slow lane has room. It returns no group
// when there is nothing to do, and false when the broker closes. b.smu is
// held.
func (b *Broker) next() (*group, checkMode, bool) {
	if b.closing {
		return nil, 0, false
	}
	for len(b.fastQueue) > 0 {
		g := b.fastQueue[0]
		b.fastQueue[0] = nil
		b.fastQueue = b.fastQueue[1:]
		g.queued = false
		if g.gone || len(g.jobs) == 0 {
			continue
		}
		if g.checked {
			g.running = true
			return g, checkFast, true
		}
		if b.slowRunning < b.limits.Checks {
			b.slowRunning++
			g.running = true
			return g, checkProbe, true
		}
		// Too many checks of unknown cost run already: this one waits
		// with the slow groups.
		g.checked, g.cost = true, slowCheck
		g.queued = true
		b.slowQueue = append(b.slowQueue, g)
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
		g.running = true
		return g, checkSlow, true
	}
	return nil, 0, true
}

// release hands g back after a check: queued again when events wait for
// it. A slow check ended, so a slow group may start. b.smu is held.
func (b *Broker) release(g *group) {
	g.running = false
	b.ready(g)
	if len(b.slowQueue) > 0 {
		b.kick()
	}
}

// checkFast checks events of g in the checker until g has none left,
// turns out slow, or has had a batch.
func (b *Broker) checkFast(g *group) {
	for range fastBatch {
		cost, more := b.checkOne(g)
		if !more || cost >= slowCheck {
			break
		}
	}
	b.smu.Lock()
	b.release(g)
	b.smu.Unlock()
}

// probe checks the first event of g, a group never checked, in a
// goroutine of its own, and waits for it no longer than slowCheck: a
// costly group goes on being checked without its checker.
func (b *Broker) probe(g *group) {
	done := make(chan struct{})
	b.wg.Add(1) // the checker is counted: Close waits for both
	go func() {
		defer b.wg.Done()
		defer close(done)
		b.checkOne(g)
		b.smu.Lock()
		b.slowRunning--
		b.release(g)
		b.smu.Unlock()
	}()
	t := time.NewTimer(slowCheck)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// checkOne checks g's first waiting event with the budget of one check
// and publishes the message; it returns what the check cost and whether
// more events wait. A check over budget disconnects g's clients.
func (b *Broker) checkOne(g *group) (cost time.Duration, more bool) {
	b.smu.Lock()
	if g.gone || len(g.jobs) == 0 {
		clear(g.jobs)
		g.jobs = g.jobs[:0]
		g.setHorizon()
		b.smu.Unlock()
		return 0, false
	}
	j := g.jobs[0]
	budget := b.limits.CheckTime
	b.smu.Unlock()

	ctx, cancel := context.WithTimeout(b.ctx, budget)
	start := time.Now()
	m := b.evaluate(ctx, g, j.action, j.rec)
	cost = time.Since(start)
	overBudget := errors.Is(ctx.Err(), context.DeadlineExceeded) && b.ctx.Err() == nil
	cancel()
	var wake, lagging []*Client
	if m != nil {
		m.seq = j.seq
		// The message is in the feed before the horizon passes its
		// event: Take never misses it.
		wake, lagging = g.feed.publish(m)
	}

	b.smu.Lock()
	g.jobs[0] = job{}
	g.jobs = g.jobs[1:]
	if g.gone || overBudget {
		g.gone = true
		b.dropJobs(g)
	}
	g.setHorizon()
	waiters := g.waiters
	g.waiters = nil
	for _, c := range waiters {
		c.waitingOn = nil
	}
	if !g.checked || cost >= slowCheck {
		g.cost = cost
	} else {
		g.cost = (3*g.cost + cost) / 4
	}
	g.checked = true
	more = len(g.jobs) > 0
	b.smu.Unlock()

	for _, c := range wake {
		if c.asleep.CompareAndSwap(true, false) {
			c.wake()
		}
	}
	for _, c := range waiters {
		if c.asleep.CompareAndSwap(true, false) {
			c.wake()
		}
	}
	if overBudget {
		b.log.Warn("realtime: a subscription's check took longer than its budget; disconnecting its clients",
			"collection", j.rec.Collection.Name, "topic", g.sub.Topic, "budget", budget)
		b.disconnectGroup(g)
	}
	for _, c := range lagging {
		b.log.Warn("realtime: client too slow, disconnecting", "client", c.ID)
		b.Disconnect(c)
	}
	return cost, more
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

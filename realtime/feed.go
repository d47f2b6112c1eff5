package realtime

import (
	"cmp"
	"slices"
	"sync"
)

// A feed holds a group's recent messages for the clients that take them
// (ConnectFunc) rather than being sent each one. The broker appends a
// message once, whatever the number of readers; each reader keeps its
// place and takes everything since, when its adapter is ready to write.
// Fanning an event out to N such clients costs the broker one append,
// not N: the work per client is done once per write, by the adapter.
//
// A message is dropped once every reader has taken it. A reader that
// falls more than feedMax messages behind is reported as too slow.

// feedMax is how many messages a reader may be behind before it is
// disconnected.
const feedMax = 1024

type feed struct {
	mu sync.Mutex
	// msgs[i] is the message at position base+i.
	msgs []*Message
	base uint64
	// readers is every reader, each at its index in it.
	readers []*reader
	// atBase counts the readers whose next message is msgs[0]: when it
	// falls to 0, the front of msgs can go.
	atBase int
	// sleepers are the readers that found nothing new: the next message
	// wakes their clients. waking is the list publish hands back, reused.
	sleepers []*reader
	waking   []*Client
	// stale counts the sleepers that have left since the last publish.
	stale int
}

// reader is one client's place in one feed.
type reader struct {
	client *Client
	feed   *feed
	next   uint64 // position of the next message to take
	listed bool   // in feed.sleepers
	gone   bool   // left the feed
	index  int    // in feed.readers
}

// head is the position the next message will have. f.mu is held.
func (f *feed) head() uint64 { return f.base + uint64(len(f.msgs)) }

// join adds a reader for c, placed after every message already there;
// asleep lists it among the sleepers.
func (f *feed) join(c *Client, asleep bool) *reader {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := &reader{client: c, feed: f, next: f.head(), index: len(f.readers)}
	f.readers = append(f.readers, r)
	if r.next == f.base {
		f.atBase++
	}
	if asleep {
		f.sleepers = append(f.sleepers, r)
		r.listed = true
	}
	return r
}

// leave removes r.
func (f *feed) leave(r *reader) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.gone {
		return
	}
	last := f.readers[len(f.readers)-1]
	f.readers[r.index], last.index = last, r.index
	f.readers[len(f.readers)-1] = nil
	f.readers = f.readers[:len(f.readers)-1]
	r.gone = true // a stale entry in sleepers wakes nobody
	if r.listed {
		f.stale++
		if f.stale > 64 && f.stale > len(f.sleepers)/2 {
			f.sleepers = slices.DeleteFunc(f.sleepers, func(r *reader) bool { return r.gone })
			f.stale = 0
		}
	}
	if r.next == f.base {
		f.atBase--
		f.trim()
	}
}

// clients returns the clients of the readers.
func (f *feed) clients() []*Client {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*Client, len(f.readers))
	for i, r := range f.readers {
		out[i] = r.client
	}
	return out
}

// publish appends m for the readers and returns the clients to wake
// (valid until the next publish) and those too far behind.
func (f *feed) publish(m *Message) (wake, slow []*Client) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.readers) == 0 {
		return nil, nil
	}
	f.msgs = append(f.msgs, m)
	clear(f.waking)
	f.waking = f.waking[:0]
	for _, r := range f.sleepers {
		r.listed = false
		if !r.gone {
			f.waking = append(f.waking, r.client)
		}
	}
	clear(f.sleepers)
	f.sleepers = f.sleepers[:0]
	f.stale = 0
	if len(f.msgs) > feedMax {
		for _, r := range f.readers {
			if r.next == f.base {
				slow = append(slow, r.client)
			}
		}
	}
	return f.waking, slow
}

// take appends to dst what r has not taken yet of the messages of
// events before limit (a position in the broker's sequence), and reports
// whether it left some for being after it. When there is nothing at all,
// r is listed among the sleepers.
func (r *reader) take(dst []*Message, limit uint64) ([]*Message, bool) {
	f := r.feed
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.gone {
		return dst, false
	}
	head := f.head()
	if r.next == head {
		if !r.listed {
			f.sleepers = append(f.sleepers, r)
			r.listed = true
		}
		return dst, false
	}
	// The messages are in the order of their events: those before limit
	// come first.
	msgs := f.msgs[r.next-f.base:]
	n := len(msgs)
	if msgs[n-1].seq >= limit {
		n, _ = slices.BinarySearchFunc(msgs, limit, func(m *Message, limit uint64) int { return cmp.Compare(m.seq, limit) })
	}
	if n == 0 {
		return dst, true
	}
	dst = append(dst, msgs[:n]...)
	wasAtBase := r.next == f.base
	r.next += uint64(n)
	if wasAtBase {
		f.atBase--
		f.trim()
	}
	return dst, n < len(msgs)
}

// trim drops the messages every reader has taken, once no reader waits
// for the first one. f.mu is held.
func (f *feed) trim() {
	if f.atBase > 0 {
		return
	}
	first := f.head()
	for _, r := range f.readers {
		first = min(first, r.next)
	}
	n := copy(f.msgs, f.msgs[first-f.base:])
	clear(f.msgs[n:])
	f.msgs = f.msgs[:n]
	f.base = first
	for _, r := range f.readers {
		if r.next == first {
			f.atBase++
		}
	}
}

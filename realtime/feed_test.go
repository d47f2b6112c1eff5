package realtime

import (
	"slices"
	"testing"
)

// takeAll takes every message r has to take.
func (r *reader) takeAll() []*Message {
	msgs, _ := r.take(nil, noLimit)
	return msgs
}

// The feed keeps a message only until every reader has taken it, wakes
// the readers that found nothing, and reports the ones too far behind.
func TestFeed(t *testing.T) {
	var f feed
	a, b := &Client{ID: "a"}, &Client{ID: "b"}
	ra, rb := f.join(a, true), f.join(b, false)
	m1, m2, m3 := &Message{Topic: "1"}, &Message{Topic: "2"}, &Message{Topic: "3"}

	wake, slow := f.publish(m1)
	if !slices.Equal(wake, []*Client{a}) || slow != nil {
		t.Fatalf("publish(m1) woke %v, slow %v; want a, the only sleeper", wake, slow)
	}
	if got := ra.takeAll(); !slices.Equal(got, []*Message{m1}) {
		t.Fatalf("a took %v, want m1", got)
	}
	if len(f.msgs) != 1 {
		t.Errorf("after a took m1 the feed holds %d messages, want 1 (b has not taken it)", len(f.msgs))
	}
	f.publish(m2)
	if got := rb.takeAll(); !slices.Equal(got, []*Message{m1, m2}) {
		t.Fatalf("b took %v, want m1 m2", got)
	}
	if len(f.msgs) != 1 || f.msgs[0] != m2 {
		t.Errorf("after both took m1 the feed holds %v, want m2 only", f.msgs)
	}
	if got := rb.takeAll(); len(got) != 0 || !rb.listed {
		t.Errorf("b took %v with nothing new, want nothing and b listed as a sleeper", got)
	}
	f.leave(ra) // a never took m2
	if len(f.msgs) != 0 {
		t.Errorf("after a left the feed holds %d messages, want 0", len(f.msgs))
	}
	wake, _ = f.publish(m3)
	if !slices.Equal(wake, []*Client{b}) {
		t.Errorf("publish(m3) woke %v, want b", wake)
	}

	// A reader that stops taking is reported once it is feedMax behind.
	for range feedMax {
		_, slow = f.publish(m3)
	}
	if !slices.Equal(slow, []*Client{b}) {
		t.Errorf("publish with b %d messages behind reported %v as slow, want b", feedMax+1, slow)
	}
	f.leave(rb)
	if len(f.msgs) != 0 || len(f.readers) != 0 {
		t.Errorf("the feed holds %d messages and %d readers after all left, want none", len(f.msgs), len(f.readers))
	}
}

// A reader takes the messages of events before a limit and reports the
// ones it leaves.
func TestFeedTakeBefore(t *testing.T) {
	var f feed
	r := f.join(&Client{ID: "a"}, false)
	for seq := uint64(1); seq <= 4; seq++ {
		f.publish(&Message{seq: seq})
	}
	tests := []struct {
		limit    uint64
		want     []uint64
		wantHeld bool
	}{
		{1, nil, true},
		{3, []uint64{1, 2}, true},
		{3, nil, true},
		{noLimit, []uint64{3, 4}, false},
		{noLimit, nil, false},
	}
	for _, tt := range tests {
		msgs, held := r.take(nil, tt.limit)
		var got []uint64
		for _, m := range msgs {
			got = append(got, m.seq)
		}
		if !slices.Equal(got, tt.want) || held != tt.wantHeld {
			t.Errorf("take(limit %d) = %v, held %v; want %v, held %v", tt.limit, got, held, tt.want, tt.wantHeld)
		}
	}
	if len(f.msgs) != 0 {
		t.Errorf("the feed holds %d messages after its only reader took them all, want 0", len(f.msgs))
	}
}

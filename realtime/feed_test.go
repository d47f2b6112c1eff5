package realtime

import (
	"slices"
	"testing"
)

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
	if got := ra.take(nil); !slices.Equal(got, []*Message{m1}) {
		t.Fatalf("a took %v, want m1", got)
	}
	if len(f.msgs) != 1 {
		t.Errorf("after a took m1 the feed holds %d messages, want 1 (b has not taken it)", len(f.msgs))
	}
	f.publish(m2)
	if got := rb.take(nil); !slices.Equal(got, []*Message{m1, m2}) {
		t.Fatalf("b took %v, want m1 m2", got)
	}
	if len(f.msgs) != 1 || f.msgs[0] != m2 {
		t.Errorf("after both took m1 the feed holds %v, want m2 only", f.msgs)
	}
	if got := rb.take(nil); len(got) != 0 || !rb.listed {
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

package ratelimit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestAllow(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	m := NewMemory(0, clk.now)
	l := Limit{Max: 3, Window: 10 * time.Second}
	steps := []struct {
		advance  time.Duration
		key      string
		wantWait time.Duration
	}{
		{0, "a", 0},
		{time.Second, "a", 0},
		{time.Second, "a", 0},
		{time.Second, "a", 7 * time.Second},         // fourth hit in the window that ends at 10s
		{0, "b", 0},                                 // another key has its own count
		{6500 * time.Millisecond, "a", time.Second}, // never less than a second
		{500 * time.Millisecond, "a", 0},            // the window has ended
	}
	for i, s := range steps {
		clk.advance(s.advance)
		got, err := Allow(ctx, m, s.key, l, clk.now())
		if err != nil {
			t.Fatal(err)
		}
		if got != s.wantWait {
			t.Errorf("step %d: Allow(%q) = %v, want %v", i, s.key, got, s.wantWait)
		}
	}
}

func TestBlockedDoesNotCount(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Unix(0, 0)}
	m := NewMemory(0, clk.now)
	l := Limit{Max: 2, Window: time.Minute}
	for range 10 {
		if w, _ := Blocked(ctx, m, "k", l, clk.now()); w != 0 {
			t.Fatalf("Blocked(fresh key) = %v, want 0", w)
		}
	}
	Allow(ctx, m, "k", l, clk.now())
	if w, _ := Blocked(ctx, m, "k", l, clk.now()); w != 0 {
		t.Fatalf("Blocked(after 1 of 2) = %v, want 0", w)
	}
	Allow(ctx, m, "k", l, clk.now())
	if w, _ := Blocked(ctx, m, "k", l, clk.now()); w != time.Minute {
		t.Fatalf("Blocked(after 2 of 2) = %v, want 1m", w)
	}
	if err := m.Reset(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if w, _ := Allow(ctx, m, "k", l, clk.now()); w != 0 {
		t.Fatalf("Allow(after Reset) = %v, want 0", w)
	}
}

func TestMemoryIsBounded(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Unix(0, 0)}
	const maxKeys = 1024
	m := NewMemory(maxKeys, clk.now)
	l := Limit{Max: 1, Window: time.Hour}
	for i := range 20 * maxKeys {
		Allow(ctx, m, fmt.Sprint("flood", i), Limit{Max: 1, Window: 2 * time.Hour}, clk.now())
	}
	if n := m.Len(); n > maxKeys {
		t.Errorf("Len() = %d after a flood, want at most %d", n, maxKeys)
	}
	// Ended windows are dropped first.
	clk.advance(3 * time.Hour)
	for i := range maxKeys {
		Allow(ctx, m, fmt.Sprint("late", i), l, clk.now())
	}
	if n := m.Len(); n > maxKeys {
		t.Errorf("Len() = %d, want at most %d", n, maxKeys)
	}
}

func TestMemoryConcurrent(t *testing.T) {
	m := NewMemory(0, nil)
	if allowed := hitConcurrently(t, "shared", 100, m); allowed != 100 {
		t.Errorf("%d of 400 concurrent hits allowed, want exactly 100", allowed)
	}
}

// hitConcurrently sends 400 hits of key from 8 goroutines, spread over
// stores (nodes sharing one count), against a limit of max an hour, and
// returns how many were allowed.
func hitConcurrently(t *testing.T, key string, max int, stores ...Store) int {
	t.Helper()
	ctx := context.Background()
	l := Limit{Max: max, Window: time.Hour}
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for i := range 8 {
		s := stores[i%len(stores)]
		wg.Go(func() {
			for range 50 {
				w, err := Allow(ctx, s, key, l, time.Now())
				if err != nil {
					t.Error(err)
					return
				}
				if w == 0 {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return allowed
}

// TestReserveAndRefund: a reservation counts at once and tells the count;
// a refund gives back one hit of a live window, never more than were
// counted and never credit for a window that has not begun.
func TestReserveAndRefund(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Unix(0, 0)}
	stores := map[string]Store{"memory": NewMemory(0, clk.now)}
	if url := os.Getenv("REDIS_URL"); url != "" {
		r, err := NewRedis(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Close)
		stores["redis"] = r
	}
	for name, s := range stores {
		t.Run(name, func(t *testing.T) {
			p := fmt.Sprintf("test:%d:", rand.Int64())
			l := Limit{Max: 2, Window: time.Minute}
			// A refund of a key never counted gives no credit.
			if err := Refund(ctx, s, p+"k", l); err != nil {
				t.Fatal(err)
			}
			for i, want := range []int{1, 2, 3} {
				n, wait, err := Reserve(ctx, s, p+"k", l, clk.now())
				if err != nil {
					t.Fatal(err)
				}
				if n != want || (wait > 0) != (want > 2) {
					t.Fatalf("Reserve %d = %d, %v; want count %d, refused %v", i+1, n, wait, want, want > 2)
				}
			}
			// Giving back the refused hit and one allowed one makes room for one.
			for range 2 {
				if err := Refund(ctx, s, p+"k", l); err != nil {
					t.Fatal(err)
				}
			}
			if n, wait, _ := Reserve(ctx, s, p+"k", l, clk.now()); n != 2 || wait != 0 {
				t.Errorf("Reserve after two refunds = %d, %v; want 2, allowed", n, wait)
			}
			// Refunds past zero do not go negative.
			for range 5 {
				Refund(ctx, s, p+"k", l)
			}
			if n, _, _ := Reserve(ctx, s, p+"k", l, clk.now()); n != 1 {
				t.Errorf("Reserve after refunding more than was counted = %d, want 1", n)
			}
		})
	}
}

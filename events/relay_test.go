package events_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/underhood/underhood/events"
	"github.com/underhood/underhood/record"
	"github.com/underhood/underhood/sqlstore"
)

// collector is a consumer that keeps the record ids it consumed; it fails
// while failures > 0, and its commit fails while commitFailures > 0.
type collector struct {
	name           string
	mu             sync.Mutex
	got            []string
	failures       int
	commitFailures int
}

func (c *collector) Name() string { return c.name }

func (c *collector) Consume(ctx context.Context, list []record.OutboxEvent) (events.Commit, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failures > 0 {
		c.failures--
		return nil, errors.New("consumer down")
	}
	var ids []string
	for _, e := range list {
		ids = append(ids, e.RecordID)
	}
	return func(ctx context.Context, q sqlstore.Querier) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.commitFailures > 0 {
			c.commitFailures--
			return errors.New("commit refused")
		}
		c.got = append(c.got, ids...)
		return nil
	}, nil
}

func (c *collector) wait(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		got := append([]string(nil), c.got...)
		c.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s consumed %d events within 10s, want %d", c.name, len(got), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRelayDeliversInOrderThroughFailures(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	early := e.create("notes", map[string]any{"text": "before the consumer existed"})
	healthy := &collector{name: "healthy"}
	flaky := &collector{name: "flaky", failures: 2, commitFailures: 2}
	relay, err := events.NewRelay(ctx, e.store, e.records, quiet, events.RelayOptions{Poll: 20 * time.Millisecond, Batch: 3}, healthy, flaky)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	var wg sync.WaitGroup
	var mu sync.Mutex
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				r := e.create("notes", map[string]any{"text": "n"})
				mu.Lock()
				want = append(want, r.ID())
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	// Commit order is the outbox's order.
	list, err := e.records.ReadOutbox(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, ev := range list {
		if ev.RecordID != early.ID() {
			order = append(order, ev.RecordID)
		}
	}
	for _, c := range []*collector{healthy, flaky} {
		c.wait(t, len(want))
		time.Sleep(100 * time.Millisecond)
		c.mu.Lock()
		got := append([]string(nil), c.got...)
		c.mu.Unlock()
		if strings.Join(got, ",") != strings.Join(order, ",") {
			t.Errorf("%s consumed %v, want every event once in commit order %v", c.name, got, order)
		}
	}
	relay.Close()

	// A new relay resumes each consumer where it stopped.
	e.create("notes", map[string]any{"text": "later"})
	relay, err = events.NewRelay(ctx, e.store, e.records, quiet, events.RelayOptions{Poll: 20 * time.Millisecond}, healthy)
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	if got := healthy.wait(t, len(want)+1); len(got) != len(want)+1 {
		t.Errorf("after a restart the consumer has %d events, want %d", len(got), len(want)+1)
	}
}

func TestRelayRetentionKeepsWhatAConsumerStillNeeds(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	stuck := &collector{name: "stuck", failures: 1 << 30}
	relay, err := events.NewRelay(ctx, e.store, e.records, quiet, events.RelayOptions{Poll: 20 * time.Millisecond, Retention: time.Nanosecond, TrimEvery: 20 * time.Millisecond}, stuck)
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	for i := 0; i < 5; i++ {
		e.create("notes", map[string]any{"text": "n"})
	}
	time.Sleep(200 * time.Millisecond)
	if list, _ := e.records.ReadOutbox(ctx, 0, 100); len(list) != 5 {
		t.Fatalf("outbox holds %d events while a consumer has not passed them, want 5", len(list))
	}
	stuck.mu.Lock()
	stuck.failures = 0
	stuck.mu.Unlock()
	stuck.wait(t, 5)
	deadline := time.Now().Add(5 * time.Second)
	for {
		list, _ := e.records.ReadOutbox(ctx, 0, 100)
		if len(list) == 1 { // each collection's newest is kept
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox holds %d events after every consumer passed them, want 1", len(list))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

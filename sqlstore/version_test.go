package sqlstore

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestVersionPollsFresh checks the promise Version's callers cache under:
// every answer comes from a query sent after the caller asked, so a write
// answered before the caller began is counted. Concurrent callers still
// share queries.
func TestVersionPollsFresh(t *testing.T) {
	var p versionPolls
	var sent atomic.Uint64 // queries sent so far; a query answers its own number
	query := func() (uint64, error) {
		n := sent.Add(1)
		time.Sleep(2 * time.Millisecond) // a round trip
		return n, nil
	}
	const callers, rounds = 32, 20
	var wg sync.WaitGroup
	var stale atomic.Int64
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				before := sent.Load()
				v, err := p.read(query)
				if err != nil {
					t.Errorf("read: %v", err)
					return
				}
				if v <= before {
					stale.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := stale.Load(); n > 0 {
		t.Errorf("%d answers came from queries sent before their caller asked", n)
	}
	if got, max := sent.Load(), uint64(callers*rounds); got >= max {
		t.Errorf("%d callers made %d queries; want them to share (fewer than %d)", callers*rounds, got, max)
	}
}

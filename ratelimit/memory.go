package ratelimit

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// shards spreads keys over independently locked maps.
const shards = 32

// DefaultMaxKeys is the capacity of a Memory store made with max 0: about
// 10 MiB of counters.
const DefaultMaxKeys = 100_000

// Memory is a Store in this process's memory. It holds at most a fixed
// number of keys: when a shard is full, it first drops windows that have
// ended, then the windows closest to their end, so an attacker who floods
// it with new keys can shorten, but never lift, the limits of the keys it
// pushes out.
type Memory struct {
	now      func() time.Time
	seed     maphash.Seed
	perShard int
	shard    [shards]memShard
}

type memShard struct {
	mu      sync.Mutex
	windows map[string]window
}

type window struct {
	count int
	ends  time.Time
}

// NewMemory returns a Memory store of at most maxKeys keys (DefaultMaxKeys
// when 0) measuring time with now (time.Now when nil).
func NewMemory(maxKeys int, now func() time.Time) *Memory {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	if now == nil {
		now = time.Now
	}
	m := &Memory{now: now, seed: maphash.MakeSeed(), perShard: max(1, maxKeys/shards)}
	for i := range m.shard {
		m.shard[i].windows = map[string]window{}
	}
	return m
}

func (m *Memory) shardOf(key string) *memShard {
	return &m.shard[maphash.String(m.seed, key)%shards]
}

// Add implements Store.
func (m *Memory) Add(_ context.Context, key string, n int, length time.Duration) (int, time.Time, error) {
	now := m.now()
	s := m.shardOf(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.windows[key]
	if !ok || !now.Before(w.ends) {
		if n <= 0 {
			return 0, now.Add(length), nil
		}
		if !ok && len(s.windows) >= m.perShard {
			s.evict(now)
		}
		w = window{ends: now.Add(length)}
	}
	if n == 0 {
		return w.count, w.ends, nil
	}
	w.count = max(w.count+n, 0)
	s.windows[key] = w
	return w.count, w.ends, nil
}

// Reset implements Store.
func (m *Memory) Reset(_ context.Context, key string) error {
	s := m.shardOf(key)
	s.mu.Lock()
	delete(s.windows, key)
	s.mu.Unlock()
	return nil
}

// Len returns the number of keys held.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shard {
		s := &m.shard[i]
		s.mu.Lock()
		n += len(s.windows)
		s.mu.Unlock()
	}
	return n
}

// evict makes room for one key in a full shard: it drops every ended
// window, and when none has ended, the one of a few sampled that ends
// first. The caller holds s.mu.
func (s *memShard) evict(now time.Time) {
	for k, w := range s.windows {
		if !now.Before(w.ends) {
			delete(s.windows, k)
		}
	}
	if len(s.windows) == 0 {
		return
	}
	var victim string
	var first time.Time
	sampled := 0
	for k, w := range s.windows { // map order is random: a cheap sample
		if sampled == 0 || w.ends.Before(first) {
			victim, first = k, w.ends
		}
		if sampled++; sampled == 8 {
			break
		}
	}
	delete(s.windows, victim)
}

package record

import (
	"encoding/json"
	"sync"
)

// countCache remembers the totals of list queries until the next write.
// A total costs a scan of every matching row, while the page itself is a
// short index walk, so a read-mostly app would otherwise pay for the same
// count on every request. An entry is keyed by the collection, the exact
// SQL condition and its arguments (the caller's rule included), and is
// valid only for the store version it was computed at: any committed write
// makes every entry stale. The store's version only counts this process's
// writes, so a store shared by several processes must not use the cache.
type countCache struct {
	mu sync.Mutex
	m  map[string]countEntry
}

type countEntry struct {
	version uint64
	n       int
}

// maxCounts bounds the cache; when full it starts over.
const maxCounts = 2048

func newCountCache() *countCache { return &countCache{m: make(map[string]countEntry)} }

// countKey builds the key of a count query; ok is false when an argument
// cannot be encoded.
func countKey(collID, where string, args []any) (string, bool) {
	b, err := json.Marshal(args)
	if err != nil {
		return "", false
	}
	return collID + "\x00" + where + "\x00" + string(b), true
}

func (c *countCache) get(key string, version uint64) (int, bool) {
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if !ok || e.version != version {
		return 0, false
	}
	return e.n, true
}

func (c *countCache) put(key string, version uint64, n int) {
	c.mu.Lock()
	if len(c.m) >= maxCounts {
		clear(c.m)
	}
	if e, ok := c.m[key]; !ok || e.version <= version {
		c.m[key] = countEntry{version: version, n: n}
	}
	c.mu.Unlock()
}

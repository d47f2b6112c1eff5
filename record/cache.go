package record

import (
	"encoding/json"
	"strings"
	"sync"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/sqlstore"
)

// resultCache remembers the results of reads (records and list totals)
// until the next write. A total costs a scan of every matching row and a
// record read costs a round through the database; a read-mostly app asks
// the same questions again and again. An entry is keyed by the exact SQL
// condition and arguments (the caller's rule and identity included) and is
// valid only for the store version it was computed at: any committed write
// makes every entry stale. The store's version counts the writes of every
// process sharing the database (sqlstore.Store.Version).
type resultCache struct {
	mu    sync.Mutex
	m     map[string]cacheEntry
	bytes int // estimated memory held by all entries
}

type cacheEntry struct {
	version uint64
	recs    []*underhood.Record // presented for the caller in the key
	n       int                 // a total
	size    int                 // estimated memory held
}

// Bounds of the cache. When either is reached, a random eighth of the
// entries is dropped (Go's map order is random), which keeps the hot
// entries of a large working set more often than starting over would.
const (
	maxCacheEntries = 65536
	maxCacheBytes   = 32 << 20
)

func newResultCache() *resultCache { return &resultCache{m: make(map[string]cacheEntry)} }

// cacheKey is the key of the result of qq for kind, presented as extra
// says; ok is false when qq cannot be keyed (then it is not cached).
func (s *Service) cacheKey(kind string, qq sqlstore.Query, extra ...string) (key string, ok bool) {
	k, ok := s.store.Key(qq)
	if !ok {
		return "", false
	}
	return strings.Join(append([]string{kind, qq.Collection.ID, k}, extra...), "\x00"), true
}

// callerKey names who a result was presented for: hidden fields and
// emails depend on it.
func callerKey(req *Request) string {
	if req == nil || req.Auth == nil || req.Auth.Collection == nil {
		return ""
	}
	return req.Auth.Collection.ID + "/" + req.Auth.ID()
}

func (c *resultCache) get(key string, version uint64) (cacheEntry, bool) {
	if c == nil {
		return cacheEntry{}, false
	}
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if !ok || e.version != version {
		return cacheEntry{}, false
	}
	return e, true
}

func (c *resultCache) put(key string, version uint64, e cacheEntry) {
	if c == nil {
		return
	}
	e.version = version
	e.size = len(key) + 64
	for _, r := range e.recs {
		e.size += recordSize(r)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[key]; ok {
		if old.version > version {
			return
		}
		c.bytes -= old.size
		delete(c.m, key)
	}
	if e.size > maxCacheBytes/8 {
		return
	}
	if len(c.m) >= maxCacheEntries || c.bytes+e.size > maxCacheBytes {
		drop := len(c.m)/8 + 1
		for k, old := range c.m {
			if drop == 0 {
				break
			}
			c.bytes -= old.size
			delete(c.m, k)
			drop--
		}
	}
	c.m[key] = e
	c.bytes += e.size
}

// recordSize estimates the memory a cached record holds.
func recordSize(r *underhood.Record) int {
	n := 64
	for k, v := range r.Data {
		n += len(k) + 32
		switch x := v.(type) {
		case string:
			n += len(x)
		case []string:
			for _, s := range x {
				n += len(s) + 16
			}
		case json.RawMessage:
			n += len(x)
		}
	}
	return n
}

// cloneRecords returns copies a caller may change without touching the
// cached ones.
func cloneRecords(list []*underhood.Record) []*underhood.Record {
	out := make([]*underhood.Record, len(list))
	for i, r := range list {
		out[i] = r.Clone()
	}
	return out
}

package record

import (
	"strconv"
	"strings"
	"testing"

	"github.com/underhood/underhood"
)

func TestResultCacheStaysBounded(t *testing.T) {
	c := newResultCache()
	body := strings.Repeat("x", 4096)
	for i := range 20000 {
		r := &underhood.Record{Data: map[string]any{"id": strconv.Itoa(i), "body": body}}
		c.put("k"+strconv.Itoa(i), 1, cacheEntry{recs: []*underhood.Record{r}})
	}
	if c.bytes > maxCacheBytes || len(c.m) > maxCacheEntries {
		t.Fatalf("cache holds %d entries, %d bytes; want at most %d, %d", len(c.m), c.bytes, maxCacheEntries, maxCacheBytes)
	}
	if _, ok := c.get("k19999", 1); !ok {
		t.Fatalf("the latest entry was evicted")
	}
	if _, ok := c.get("k19999", 2); ok {
		t.Fatalf("an entry of version 1 was returned for version 2")
	}
}

package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/sqlstore"
)

// This file tests ClientRead: the time limit of the reads clients shape,
// and their pool, apart from Read's (H3).

// numbers creates the collection "nums" of n records whose field n runs
// from 1 to n.
func numbers(t testing.TB, s *sqlstore.Store, n int) *underhood.Collection {
	t.Helper()
	c := newCollection("nums", field("f1", "n", "number"))
	saveCollection(t, s, nil, c)
	rows := make([]map[string]any, n)
	for i := range rows {
		rows[i] = map[string]any{"id": fmt.Sprintf("n%04d", i+1), "n": float64(i + 1)}
	}
	insert(t, s, c, rows...)
	return c
}

// pairsEqual is a condition on the row r of nums that costs a scan of
// every pair of rows: billions of steps for all rows of a few thousand.
const pairsEqual = `(SELECT COUNT(*) FROM "nums" AS a, "nums" AS b WHERE a."n" + b."n" = r."n")`

// slow is pairsEqual compared by cmp, a condition that costs seconds.
func slow(cmp string) sqlstore.Cond {
	return sqlstore.Raw(func(func(any) string) string { return pairsEqual + cmp })
}

// checkQueryTimeError checks that err is the 400 of a ClientRead past
// its limit, and that it came within bound.
func checkQueryTimeError(t *testing.T, what string, err error, limit string, took, bound time.Duration) {
	t.Helper()
	var ue *underhood.Error
	if !errors.As(err, &ue) || ue.Code != underhood.EInvalid {
		t.Fatalf("%s = %v (after %v), want an EInvalid *underhood.Error", what, err, took)
	}
	for _, want := range []string{"longer than " + limit, "--max-query-time"} {
		if !strings.Contains(ue.Message, want) {
			t.Errorf("%s: message %q does not contain %q", what, ue.Message, want)
		}
	}
	if took > bound {
		t.Errorf("%s ended after %v, want within %v", what, took, bound)
	}
}

// testClientReadTimeLimit runs client reads that would take minutes: a
// count, and a Find whose first row comes at once and each next one
// after a long scan (SQLite interrupts a statement only until its first
// row unless the store makes it compute them all first). Both end soon
// after the limit with a 400 naming it, and every connection of the pool
// serves reads afterwards.
func testClientReadTimeLimit(t *testing.T, newDB NewDB) {
	s := newDB(t)(t, func(c *sqlstore.Config) { c.MaxQueryTime = 300 * time.Millisecond })
	c := numbers(t, s, 2000)
	ctx := context.Background()
	tests := []struct {
		name string
		read func(q sqlstore.Querier) error
	}{
		{"count", func(q sqlstore.Querier) error {
			_, err := s.Count(ctx, q, sqlstore.Query{Collection: c, Where: slow(` >= 0`)})
			return err
		}},
		{"find, first row at once", func(q sqlstore.Querier) error {
			_, err := s.Find(ctx, q, sqlstore.Query{Collection: c, Where: sqlstore.Or(sqlstore.Eq("n", 1), slow(` < 0`)), Limit: 30})
			return err
		}},
		{"find, sorted", func(q sqlstore.Querier) error {
			_, err := s.Find(ctx, q, sqlstore.Query{Collection: c, Where: sqlstore.Or(sqlstore.Eq("n", 1), slow(` < 0`)), Order: []sqlstore.Order{{Field: "n"}}, Limit: 30})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			err := s.ClientRead(ctx, tt.read)
			checkQueryTimeError(t, "ClientRead("+tt.name+")", err, "300ms", time.Since(start), 5*time.Second)
		})
	}
	// More reads than the pool has connections: each connection, those
	// that were interrupted among them, answers.
	for i := range 100 {
		var n int
		err := s.ClientRead(ctx, func(q sqlstore.Querier) error {
			var err error
			n, err = s.Count(ctx, q, sqlstore.Query{Collection: c, Where: sqlstore.Compare("n", sqlstore.OpGt, 1000)})
			return err
		})
		if err != nil || n != 1000 {
			t.Fatalf("ClientRead %d after the time limits: Count = %d, %v; want 1000", i, n, err)
		}
	}
}

// testClientReadsLeaveReadFree keeps eight costly client reads running
// and expects Read (the caller's identity, the system's reads) and a
// cheap ClientRead to answer at once all the same.
func testClientReadsLeaveReadFree(t *testing.T, newDB NewDB) {
	// The limit ends what the cancellation leaves running on a server.
	s := newDB(t)(t, func(c *sqlstore.Config) { c.MaxQueryTime = 5 * time.Second })
	c := numbers(t, s, 2000)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	started := make(chan struct{}, 8)
	for range 8 {
		wg.Go(func() {
			err := s.ClientRead(ctx, func(q sqlstore.Querier) error {
				started <- struct{}{}
				_, err := s.Count(ctx, q, sqlstore.Query{Collection: c, Where: slow(` >= 0`)})
				return err
			})
			if err == nil {
				t.Errorf("a costly ClientRead ended without an error before it was cancelled")
			}
		})
	}
	defer func() {
		cancel()
		wg.Wait()
	}()
	for range 8 {
		<-started
	}
	time.Sleep(100 * time.Millisecond) // for their statements to start
	tests := []struct {
		name string
		read func(ctx context.Context, fn func(q sqlstore.Querier) error) error
	}{
		{"Read", s.Read},
		{"ClientRead", s.ClientRead},
	}
	for _, tt := range tests {
		start := time.Now()
		var got []*underhood.Record
		rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := tt.read(rctx, func(q sqlstore.Querier) error {
			var err error
			got, err = s.Find(rctx, q, sqlstore.Query{Collection: c, Where: sqlstore.Eq("id", "n0007")})
			return err
		})
		rcancel()
		took := time.Since(start)
		if err != nil || len(got) != 1 {
			t.Fatalf("%s of one record while 8 costly client reads run = %d records, %v (after %v)", tt.name, len(got), err, took)
		}
		if took > 3*time.Second {
			t.Errorf("%s of one record while 8 costly client reads run took %v, want under 3s", tt.name, took)
		}
	}
}

// testClientReadKeepsOrder checks that a client read's rows come in the
// order its query asks, though the store may compute them all first
// (Dialect.Materialize), as a Read's do.
func testClientReadKeepsOrder(t *testing.T, newDB NewDB) {
	s := openStore(t, newDB)
	c := newCollection("posts", field("f1", "title", "text"), field("f2", "views", "number"))
	saveCollection(t, s, nil, c)
	titles := []string{"m", "b", "x", "b", "a", "z", "q", "b", "c", "m"}
	for i, title := range titles {
		insert(t, s, c, map[string]any{"id": fmt.Sprintf("p%02d", 10-i), "title": title, "views": float64((i * 7) % 4)})
	}
	ctx := context.Background()
	for _, qq := range []sqlstore.Query{
		{},
		{Order: []sqlstore.Order{sqlstore.RawOrder(s.Dialect().RowID(`"r"`) + " DESC")}},
		{Order: []sqlstore.Order{{Field: "title"}, {Field: "id", Desc: true}}},
		{Order: []sqlstore.Order{{Field: "views", Desc: true}, {Field: "title"}}, Limit: 4},
		{Order: []sqlstore.Order{{Field: "views"}, {Field: "id"}}, Limit: 3, Offset: 2},
		{Where: sqlstore.Compare("title", sqlstore.OpNe, "b"), Order: []sqlstore.Order{{Field: "title", Desc: true}, {Field: "id"}}},
	} {
		qq.Collection = c
		want := column(find(t, s, qq), "id")
		var got []*underhood.Record
		err := s.ClientRead(ctx, func(q sqlstore.Querier) error {
			var err error
			got, err = s.Find(ctx, q, qq)
			return err
		})
		if err != nil {
			t.Fatalf("ClientRead Find(order %v) = %v", qq.Order, err)
		}
		if diff := cmp.Diff(want, column(got, "id")); diff != "" {
			t.Errorf("Find(order %v): ClientRead order differs from Read's (-Read +ClientRead):\n%s", qq.Order, diff)
		}
	}
}

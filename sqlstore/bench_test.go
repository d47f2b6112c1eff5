package sqlstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/sqlstore"
	"github.com/underhood/underhood/sqlstore/sqlite"
)

func benchStore(b *testing.B, sync string) (*sqlstore.Store, *underhood.Collection) {
	b.Helper()
	s, err := sqlstore.Open(context.Background(), sqlstore.Config{Dialect: sqlite.Dialect{}, Dir: b.TempDir(), Synchronous: sync})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	c := newCollection("posts", field("f1", "title", "text"), field("f2", "views", "number"),
		field("f3", "published", "bool"), relation("f4", "tags", 5))
	saveCollection(b, s, nil, c)
	return s, c
}

// BenchmarkWriteParallel measures one-record writes from many goroutines:
// each op is a Write (its own savepoint) that group commit batches with
// the others. Run with -cpu to vary the number of writers (×16 goroutines).
func BenchmarkWriteParallel(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		b.Run("sync="+sync, func(b *testing.B) {
			s, c := benchStore(b, sync)
			ctx := context.Background()
			b.SetParallelism(16)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					err := s.Write(ctx, func(q sqlstore.Querier) error {
						return s.InsertRecord(ctx, q, &underhood.Record{Collection: c, Data: map[string]any{
							"title": "hello", "views": 3.0, "published": true, "tags": []string{"a", "b"},
						}})
					})
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkWriteSerial is the same write from one goroutine: every op pays
// a whole commit (and fsync), the cost group commit spreads.
func BenchmarkWriteSerial(b *testing.B) {
	s, c := benchStore(b, "FULL")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		err := s.Write(ctx, func(q sqlstore.Querier) error {
			return s.InsertRecord(ctx, q, &underhood.Record{Collection: c, Data: map[string]any{"title": "hello"}})
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFindByIDParallel reads one record by id from many goroutines.
func BenchmarkFindByIDParallel(b *testing.B) {
	s, c := benchStore(b, "FULL")
	ctx := context.Background()
	const n = 1000
	write(b, s, func(q sqlstore.Querier) error {
		for i := range n {
			r := &underhood.Record{Collection: c, Data: map[string]any{"id": fmt.Sprintf("id%d", i), "title": "t"}}
			if err := s.InsertRecord(ctx, q, r); err != nil {
				return err
			}
		}
		return nil
	})
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			err := s.Read(ctx, func(q sqlstore.Querier) error {
				list, err := s.Find(ctx, q, sqlstore.Query{Collection: c, Where: sqlstore.Eq("id", fmt.Sprintf("id%d", i%n)), Limit: 1})
				if err == nil && len(list) != 1 {
					err = fmt.Errorf("found %d records", len(list))
				}
				return err
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}

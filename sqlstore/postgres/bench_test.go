package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/sqlstore"
	"github.com/underhood/underhood/sqlstore/postgres"
	"github.com/underhood/underhood/sqlstore/storetest"
)

// BenchmarkStore measures the store's three paths on PostgreSQL, where each
// statement is a round trip: a one-statement Read (find by id), Version
// (one query, for the result cache) and a one-record Write from 16
// goroutines (group commit). Each round trip counts: compare with
// sqlstore's SQLite benchmarks.
func BenchmarkStore(b *testing.B) {
	s, err := sqlstore.Open(context.Background(), sqlstore.Config{Dialect: postgres.Dialect{}, DSN: storetest.PostgresDSN(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c := &underhood.Collection{ID: "pbc_posts", Name: "posts", Type: underhood.TypeBase, Fields: []*underhood.Field{
		{ID: "x", Name: "id", Type: underhood.FieldText, PrimaryKey: true}, {ID: "t", Name: "title", Type: underhood.FieldText}}}
	ctx := context.Background()
	if err := s.Write(ctx, func(q sqlstore.Querier) error {
		if err := s.SaveCollection(ctx, q, nil, c); err != nil {
			return err
		}
		for i := range 1000 {
			if err := s.InsertRecord(ctx, q, &underhood.Record{Collection: c, Data: map[string]any{"id": fmt.Sprintf("id%013d", i), "title": "t"}}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	b.Run("read", func(b *testing.B) {
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				i++
				err := s.Read(ctx, func(q sqlstore.Querier) error {
					_, err := s.Find(ctx, q, sqlstore.Query{Collection: c, Where: sqlstore.Eq("id", fmt.Sprintf("id%013d", i%1000)), Limit: 1})
					return err
				})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("version", func(b *testing.B) {
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				s.Version()
			}
		})
	})
	b.Run("write", func(b *testing.B) {
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				err := s.Write(ctx, func(q sqlstore.Querier) error {
					return s.InsertRecord(ctx, q, &underhood.Record{Collection: c, Data: map[string]any{"title": "x"}})
				})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

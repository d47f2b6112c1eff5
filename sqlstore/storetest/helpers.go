package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/sqlstore"
)

// openStore creates a database and opens a Store on it.
func openStore(t testing.TB, newDB NewDB) *sqlstore.Store {
	t.Helper()
	return newDB(t)(t)
}

// ph is the n-th placeholder of s's dialect.
func ph(s *sqlstore.Store, n int) string { return s.Dialect().Placeholder(n) }

// write runs fn in a Write and fails the test on error.
func write(t testing.TB, s *sqlstore.Store, fn func(q sqlstore.Querier) error) {
	t.Helper()
	if err := s.Write(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

// read runs fn in a Read and fails the test on error.
func read(t testing.TB, s *sqlstore.Store, fn func(q sqlstore.Querier) error) {
	t.Helper()
	if err := s.Read(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

// mustExec runs statements in one Write.
func mustExec(t testing.TB, s *sqlstore.Store, stmts ...string) {
	t.Helper()
	write(t, s, func(q sqlstore.Querier) error {
		for _, st := range stmts {
			if _, err := q.ExecContext(context.Background(), st); err != nil {
				return fmt.Errorf("%s: %w", st, err)
			}
		}
		return nil
	})
}

// countRows runs a query of one number.
func countRows(t testing.TB, s *sqlstore.Store, query string) int {
	t.Helper()
	var n int
	err := s.Read(context.Background(), func(q sqlstore.Querier) error {
		return q.QueryRowContext(context.Background(), query).Scan(&n)
	})
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func idField() *underhood.Field {
	return &underhood.Field{ID: "text3208210256", Name: "id", Type: underhood.FieldText, System: true, PrimaryKey: true, Required: true}
}

// newCollection returns a base collection with an id field and fields.
func newCollection(name string, fields ...*underhood.Field) *underhood.Collection {
	return &underhood.Collection{
		ID:     "pbc_" + name,
		Name:   name,
		Type:   underhood.TypeBase,
		Fields: append([]*underhood.Field{idField()}, fields...),
	}
}

func field(id, name, typ string) *underhood.Field {
	return &underhood.Field{ID: id, Name: name, Type: typ}
}

func relation(id, name string, maxSelect int) *underhood.Field {
	return &underhood.Field{ID: id, Name: name, Type: underhood.FieldRelation, CollectionID: "pbc_x", MaxSelect: maxSelect}
}

func saveCollection(t testing.TB, s *sqlstore.Store, old, c *underhood.Collection) {
	t.Helper()
	write(t, s, func(q sqlstore.Querier) error {
		return s.SaveCollection(context.Background(), q, old, c)
	})
}

func insert(t testing.TB, s *sqlstore.Store, c *underhood.Collection, data ...map[string]any) {
	t.Helper()
	write(t, s, func(q sqlstore.Querier) error {
		for _, d := range data {
			if err := s.InsertRecord(context.Background(), q, &underhood.Record{Collection: c, Data: d}); err != nil {
				return err
			}
		}
		return nil
	})
}

func find(t testing.TB, s *sqlstore.Store, qq sqlstore.Query) []*underhood.Record {
	t.Helper()
	var list []*underhood.Record
	read(t, s, func(q sqlstore.Querier) error {
		var err error
		list, err = s.Find(context.Background(), q, qq)
		return err
	})
	return list
}

// column returns the values of one field of records, in order.
func column(list []*underhood.Record, name string) []any {
	out := make([]any, len(list))
	for i, r := range list {
		out[i] = r.Data[name]
	}
	return out
}

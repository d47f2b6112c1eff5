package sqlstore_test

import (
	"context"
	"testing"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/sqlstore"
	"github.com/underhood/underhood/sqlstore/sqlite"
)

func openStore(t testing.TB, dir string) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), sqlstore.Config{Dialect: sqlite.Dialect{}, Dir: dir})
	if err != nil {
		t.Fatalf("Open(%q) = %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

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

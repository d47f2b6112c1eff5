package sqlstore_test

import (
	"context"
	"testing"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/sqlstore"
)

// The conformance tests of the store are in sqlstore/storetest, run by
// each dialect; these helpers serve the benchmarks.

// write runs fn in a Write and fails the test on error.
func write(t testing.TB, s *sqlstore.Store, fn func(q sqlstore.Querier) error) {
	t.Helper()
	if err := s.Write(context.Background(), fn); err != nil {
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

func relation(id, name string, maxSelect int) *underhood.Field {
	return &underhood.Field{ID: id, Name: name, Type: underhood.FieldRelation, CollectionID: "pbc_x", MaxSelect: maxSelect}
}

func saveCollection(t testing.TB, s *sqlstore.Store, old, c *underhood.Collection) {
	t.Helper()
	write(t, s, func(q sqlstore.Querier) error {
		return s.SaveCollection(context.Background(), q, old, c)
	})
}

package record_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
	"github.com/underhood/underhood/sqlstore"
	"github.com/underhood/underhood/sqlstore/postgres"
	"github.com/underhood/underhood/sqlstore/storetest"
)

// TestNodesStartTogether starts several services on one new PostgreSQL
// database at the same moment, as nodes of a cluster do: the database is
// bootstrapped once and every node sees the same collections.
func TestNodesStartTogether(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	const n = 4
	services := make([]*record.Service, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			store, err := sqlstore.Open(ctx, sqlstore.Config{Dialect: postgres.Dialect{}, DSN: dsn})
			if err != nil {
				errs[i] = err
				return
			}
			t.Cleanup(func() { store.Close() })
			services[i], errs[i] = record.New(ctx, store, slog.New(slog.NewTextHandler(io.Discard, nil)))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	names := func(s *record.Service) []string {
		var out []string
		for _, c := range s.Collections() {
			out = append(out, c.Name)
		}
		return out
	}
	want := names(services[0])
	seen := map[string]bool{}
	for _, name := range want {
		if seen[name] {
			t.Errorf("collection %s exists twice", name)
		}
		seen[name] = true
	}
	if !seen["users"] || !seen["_superusers"] {
		t.Errorf("collections = %v, want the defaults", want)
	}
	for i, s := range services[1:] {
		if got := names(s); len(got) != len(want) {
			t.Errorf("node %d sees %v, node 0 %v", i+1, got, want)
		}
	}
}

// TestNodeFindsCollectionBeforeItsNotice creates a collection through one
// node and asks another for it before the change notice reached it, as a
// client that round-robins between nodes does: the second node finds it in
// the shared database instead of answering 404.
func TestNodeFindsCollectionBeforeItsNotice(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	open := func() (*record.Service, *sqlstore.Store) {
		store, err := sqlstore.Open(ctx, sqlstore.Config{Dialect: postgres.Dialect{}, DSN: dsn})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		s, err := record.New(ctx, store, log)
		if err != nil {
			t.Fatal(err)
		}
		return s, store
	}
	a, _ := open()
	b, storeB := open()
	storeB.OnChange(func(string) {}) // B's notices are late: it hears none

	c := &underhood.Collection{Name: "Late", Type: underhood.TypeBase, Fields: []*underhood.Field{{Name: "n", Type: underhood.FieldNumber}}}
	created, err := a.SaveCollection(ctx, a.SystemRequest().Auth, "", c)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Late", "late", created.ID} {
		got, err := b.Collection(name)
		if err != nil {
			t.Fatalf("node B: Collection(%q) = %v", name, err)
		}
		if got.ID != created.ID {
			t.Errorf("node B: Collection(%q).ID = %s, want %s", name, got.ID, created.ID)
		}
	}
	if _, err := b.Collection("never_created"); err == nil {
		t.Error("node B found a collection nobody created")
	}
}

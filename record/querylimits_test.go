package record_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
)

// This file tests what keeps one client's costly queries from holding up
// the others (H3): the relation depth of filters and sorts, the time limit
// of client queries (sqlstore.DefaultMaxQueryTime, 5 s) and the pool of
// connections they use, apart from the one of identity lookups.

// tangle creates the public collection "nodes" of 30 records whose kids
// are all 30, and the public collection "notes" with one record: a filter
// through kids.kids… costs 30 rows to the power of its depth.
func tangle(t *testing.T, s *record.Service) (note *underhood.Record) {
	t.Helper()
	anyone := underhood.RuleOf("")
	nodes := mustCollection(t, s, &underhood.Collection{Name: "nodes", Type: underhood.TypeBase,
		ListRule: anyone, ViewRule: anyone,
		Fields: []*underhood.Field{{Name: "label", Type: underhood.FieldText}}})
	// The relations point to the collection itself, so they come once it
	// has an id; the saved collection is the service's, and stays as it is.
	withKids := nodes.Clone()
	withKids.Fields = append(withKids.Fields, relation("kids", nodes.ID, 30, false), relation("parent", nodes.ID, 1, false))
	if _, err := s.SaveCollection(context.Background(), s.SystemRequest().Auth, nodes.ID, withKids); err != nil {
		t.Fatalf("SaveCollection(nodes with kids) = %v", err)
	}
	var ids []string
	for i := range 30 {
		ids = append(ids, mustCreate(t, s, "nodes", map[string]any{"label": fmt.Sprintf("n%d", i)}).ID())
	}
	for _, id := range ids {
		if _, err := s.Update(context.Background(), s.SystemRequest(), "nodes", id, map[string]any{"kids": ids, "parent": ids[0]}, ""); err != nil {
			t.Fatalf("Update(nodes %s) = %v", id, err)
		}
	}
	mustCollection(t, s, &underhood.Collection{Name: "notes", Type: underhood.TypeBase,
		ListRule: anyone, ViewRule: anyone,
		Fields: []*underhood.Field{{Name: "text", Type: underhood.FieldText}}})
	return mustCreate(t, s, "notes", map[string]any{"text": "hello"})
}

// costly is a guest's filter on nodes that no record matches (no id holds
// a label's "n") and that compares each of 30⁴ labels with each of 30⁴
// ids, per record: it would run for hours on either engine.
var costly = record.ListParams{Filter: "kids.kids.kids.kids.label ?~ kids.kids.kids.kids.id", SkipTotal: true}

var guest = &record.Request{Method: "GET"}

// TestRelationDepthOfClientQueries lists records with filters and sorts
// through more relations than allowed: a 400 that names the path.
func TestRelationDepthOfClientQueries(t *testing.T) {
	s := newService(t)
	tangle(t, s)
	tests := []struct {
		name string
		p    record.ListParams
	}{
		{"filter through 8", record.ListParams{Filter: strings.Repeat("kids.", 8) + "label ?= 'x'"}},
		{"filter through 7", record.ListParams{Filter: "label = 'x' || " + strings.Repeat("kids.", 7) + "label ?= 'x'"}},
		{"sort through 8", record.ListParams{Sort: "-" + strings.Repeat("parent.", 8) + "label"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, err := s.List(ctx, guest, "nodes", tt.p)
			if code := underhood.ErrorCode(err); code != underhood.EInvalid {
				t.Fatalf("List(%+v) = %v (code %q), want %q (400)", tt.p, err, code, underhood.EInvalid)
			}
			if msg := underhood.ErrorMessage(err); !strings.Contains(msg, "more than 6 relations") {
				t.Errorf("List(%+v): message %q does not name the limit of 6 relations", tt.p, msg)
			}
		})
	}
	if _, err := s.List(context.Background(), guest, "nodes", record.ListParams{Sort: "-" + strings.Repeat("parent.", 6) + "label"}); err != nil {
		t.Errorf("List sorted through 6 relations = %v, want it accepted", err)
	}
}

// TestClientQueryTimeLimit runs a guest's list whose filter would take
// hours: it ends after the time limit with a 400 naming it, and the
// service answers lists as before afterwards.
func TestClientQueryTimeLimit(t *testing.T) {
	s := newService(t)
	tangle(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, p := range []record.ListParams{costly, {Filter: costly.Filter}} {
		start := time.Now()
		_, err := s.List(ctx, guest, "nodes", p)
		took := time.Since(start)
		if code := underhood.ErrorCode(err); code != underhood.EInvalid {
			t.Fatalf("List(%+v) = %v (code %q) after %v, want %q (400)", p, err, code, took, underhood.EInvalid)
		}
		if msg := underhood.ErrorMessage(err); !strings.Contains(msg, "longer than 5s") || !strings.Contains(msg, "--max-query-time") {
			t.Errorf("List(%+v): message %q does not name the limit (5s, --max-query-time)", p, msg)
		}
		if took > 10*time.Second {
			t.Errorf("List(%+v) ended after %v, want soon after the 5s limit", p, took)
		}
	}
	res, err := s.List(ctx, guest, "nodes", record.ListParams{Filter: "kids.label ?= 'n3'"})
	if err != nil || res.TotalItems != 30 {
		t.Fatalf("List(kids.label ?= 'n3') after the time limit = %+v, %v; want 30 records", res, err)
	}
}

// TestCostlyQueriesLeaveOthersServed keeps eight guests' costly lists
// running and expects, meanwhile, a view of another collection, an
// identity lookup (what every authenticated request does) and a view by
// an authenticated caller to answer at once.
func TestCostlyQueriesLeaveOthersServed(t *testing.T) {
	s := newService(t)
	note := tangle(t, s)
	user := mustCreate(t, s, "users", map[string]any{"email": "ann@example.com", "password": "12345678", "passwordConfirm": "12345678"})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	var wg sync.WaitGroup
	var ended atomic.Int32
	for range 8 {
		wg.Go(func() {
			_, err := s.List(ctx, guest, "nodes", costly)
			ended.Add(1)
			if err == nil {
				t.Errorf("a costly List ended without an error")
			}
		})
	}
	defer func() {
		cancel()
		wg.Wait()
	}()
	// Give the eight lists the moment they need to take their
	// connections (they then hold them until their time limit).
	time.Sleep(500 * time.Millisecond)

	var auth *underhood.Record
	tests := []struct {
		name string
		run  func(ctx context.Context) error
	}{
		{"guest views a note", func(ctx context.Context) error {
			_, err := s.View(ctx, guest, "notes", note.ID(), "")
			return err
		}},
		{"identity lookup", func(ctx context.Context) error {
			var err error
			auth, err = s.FindRecord(ctx, user.Collection, user.ID())
			return err
		}},
		{"user views a note", func(ctx context.Context) error {
			_, err := s.View(ctx, &record.Request{Method: "GET", Auth: auth}, "notes", note.ID(), "")
			return err
		}},
		{"guest lists notes", func(ctx context.Context) error {
			_, err := s.List(ctx, guest, "notes", record.ListParams{})
			return err
		}},
	}
	for _, tt := range tests {
		rctx, rcancel := context.WithTimeout(context.Background(), 15*time.Second)
		start := time.Now()
		err := tt.run(rctx)
		took := time.Since(start)
		rcancel()
		t.Logf("%s while 8 costly lists run: %v", tt.name, took)
		if err != nil {
			t.Fatalf("%s while 8 costly lists run = %v (after %v)", tt.name, err, took)
		}
		if took > 3*time.Second {
			t.Errorf("%s while 8 costly lists run took %v, want under 3s", tt.name, took)
		}
	}
	if n := ended.Load(); n > 0 {
		t.Errorf("%d of the 8 costly lists had ended before the others were served, want all still running", n)
	}
}

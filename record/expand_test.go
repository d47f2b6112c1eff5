package record_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
)

// nodeGraph creates the collection "nodes", readable by anyone, whose
// multi relation kids points back at nodes, and n records whose kids are
// all n records: every expand level multiplies the references by n.
func nodeGraph(t *testing.T, s *record.Service, n int) []string {
	t.Helper()
	ctx := context.Background()
	anyone := underhood.RuleOf("")
	nodes := mustCollection(t, s, &underhood.Collection{Name: "nodes", Type: underhood.TypeBase,
		ListRule: anyone, ViewRule: anyone, CreateRule: anyone, UpdateRule: anyone,
		Fields: []*underhood.Field{{Name: "label", Type: underhood.FieldText}}})
	withKids := nodes.Clone()
	withKids.Fields = append(withKids.Fields, relation("kids", nodes.ID, n, false))
	if _, err := s.SaveCollection(ctx, s.SystemRequest().Auth, nodes.ID, withKids); err != nil {
		t.Fatalf("add kids to nodes: %v", err)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = mustCreate(t, s, "nodes", map[string]any{"label": fmt.Sprint("node ", i)}).ID()
	}
	kids := make([]any, n)
	for i, id := range ids {
		kids[i] = id
	}
	for _, id := range ids {
		if _, err := s.Update(ctx, s.SystemRequest(), "nodes", id, map[string]any{"kids": kids}, ""); err != nil {
			t.Fatalf("set kids of %s: %v", id, err)
		}
	}
	return ids
}

// expandedRefs counts the expanded records under recs as their JSON
// repeats them: once per reference.
func expandedRefs(recs []*underhood.Record) int {
	n := 0
	for _, r := range recs {
		for _, v := range r.Expand {
			switch e := v.(type) {
			case *underhood.Record:
				n += 1 + expandedRefs([]*underhood.Record{e})
			case []*underhood.Record:
				n += len(e) + expandedRefs(e)
			}
		}
	}
	return n
}

// expandError returns the data.expand field error of err, or fails.
func expandError(t *testing.T, err error) underhood.FieldError {
	t.Helper()
	var ue *underhood.Error
	if !errors.As(err, &ue) || ue.Code != underhood.EInvalid {
		t.Fatalf("err = %v, want a 400", err)
	}
	fe, ok := ue.Data["expand"].(underhood.FieldError)
	if !ok {
		t.Fatalf("err data = %v, want an expand field error", ue.Data)
	}
	return fe
}

const tooLarge5000 = "The expand would return more than 5000 related records (limit --max-expand-records); expand fewer relations or request fewer records."

func TestExpandIsBounded(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	ids := nodeGraph(t, s, 30)
	guest := &record.Request{Context: "default", Method: "GET"}

	tests := []struct {
		name   string
		view   bool   // view ids[0], else list the first page of 30
		expand string // the expand parameter
		refs   int    // expanded references wanted; -1: refused as too large
	}{
		{"list, one level", false, "kids", 900},
		{"list, two levels", false, "kids.kids", -1},
		{"list, three levels", false, "kids.kids.kids", -1},
		{"list, six levels", false, "kids.kids.kids.kids.kids.kids", -1},
		{"list, back-relation", false, "nodes_via_kids", 900},
		{"list, back-relation then forward", false, "nodes_via_kids.kids", -1},
		{"list, two relations of 900 each", false, "kids,nodes_via_kids", 1800},
		{"view, one level", true, "kids", 30},
		{"view, two levels", true, "kids.kids", 930},
		{"view, three levels", true, "kids.kids.kids", -1},
		{"view, shared level counted per reference", true, "kids.kids,nodes_via_kids.kids", 1860},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var recs []*underhood.Record
			var err error
			if tt.view {
				var r *underhood.Record
				r, err = s.View(ctx, guest, "nodes", ids[0], tt.expand)
				recs = []*underhood.Record{r}
			} else {
				var res *record.ListResult
				res, err = s.List(ctx, guest, "nodes", record.ListParams{Expand: tt.expand, SkipTotal: true})
				if res != nil {
					recs = res.Items
				}
			}
			if tt.refs < 0 {
				if err == nil {
					t.Fatalf("expand %q returned %d expanded records, want a 400", tt.expand, expandedRefs(recs))
				}
				if msg := underhood.ErrorMessage(err); msg != tooLarge5000 {
					t.Errorf("message = %q, want %q", msg, tooLarge5000)
				}
				if fe := expandError(t, err); fe.Code != "validation_expand_too_large" || fe.Params["limit"] != 5000 {
					t.Errorf("data.expand = %+v, want code validation_expand_too_large with limit 5000", fe)
				}
				return
			}
			if err != nil {
				t.Fatalf("expand %q = %v, want it served", tt.expand, err)
			}
			if got := expandedRefs(recs); got != tt.refs {
				t.Errorf("expand %q gave %d expanded records, want %d", tt.expand, got, tt.refs)
			}
		})
	}
}

func TestExpandLimitIsConfigurable(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	ids := nodeGraph(t, s, 30)
	s.UseExpandLimits(record.ExpandLimits{Response: 100, Realtime: 40})
	guest := &record.Request{Context: "default", Method: "GET"}

	if _, err := s.View(ctx, guest, "nodes", ids[0], "kids"); err != nil {
		t.Errorf("view with 30 expanded = %v, want it served under a limit of 100", err)
	}
	_, err := s.List(ctx, guest, "nodes", record.ListParams{Expand: "kids"})
	want := "The expand would return more than 100 related records (limit --max-expand-records); expand fewer relations or request fewer records."
	if msg := underhood.ErrorMessage(err); msg != want {
		t.Errorf("list with 900 expanded: message %q, want %q", msg, want)
	}
	// A superuser is bounded too: the response would be just as large.
	if _, err := s.List(ctx, s.SystemRequest(), "nodes", record.ListParams{Expand: "kids"}); underhood.ErrorCode(err) != underhood.EInvalid {
		t.Errorf("superuser list with 900 expanded = %v, want a 400", err)
	}

	// Realtime messages have a limit of their own.
	rec, err := s.FindRecord(ctx, mustNodes(t, s), ids[0])
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.ExpandRecord(ctx, guest, rec, "kids")
	if err != nil || expandedRefs([]*underhood.Record{out}) != 30 {
		t.Errorf("ExpandRecord(kids) = %v, want 30 expanded records under a realtime limit of 40", err)
	}
	_, err = s.ExpandRecord(ctx, guest, rec, "kids,nodes_via_kids")
	fe := record.ExpandTooLarge(err)
	if fe == nil || fe.Code != "validation_expand_too_large" || fe.Params["limit"] != 40 {
		t.Fatalf("ExpandRecord(60 expanded) = %v, want too large with limit 40", err)
	}
	want = "The expand would send more than 40 related records in one realtime message (limit --max-realtime-expand-records); subscribe with fewer relations."
	if msg := underhood.ErrorMessage(err); msg != want {
		t.Errorf("realtime message %q, want %q", msg, want)
	}
}

func mustNodes(t *testing.T, s *record.Service) *underhood.Collection {
	t.Helper()
	c, err := s.Collection("nodes")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestExpandTooLargeWritesNothing: a create or update whose expand is
// refused is refused as a whole, so the client never sees a 400 for a
// change that was made.
func TestExpandTooLargeWritesNothing(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	ids := nodeGraph(t, s, 30)
	guest := &record.Request{Context: "default", Method: "POST"}
	kids := make([]any, len(ids))
	for i, id := range ids {
		kids[i] = id
	}

	_, err := s.Create(ctx, guest, "nodes", map[string]any{"label": "new", "kids": kids}, "kids.kids.kids")
	expandError(t, err)
	_, err = s.Update(ctx, guest, "nodes", ids[0], map[string]any{"label": "changed"}, "kids.kids.kids")
	expandError(t, err)
	res, err := s.List(ctx, guest, "nodes", record.ListParams{Filter: `label = "new" || label = "changed"`})
	if err != nil {
		t.Fatal(err)
	}
	if res.TotalItems != 0 {
		t.Errorf("records written by refused requests = %d, want 0", res.TotalItems)
	}

	// The operations of one batch share one budget, as they share one
	// response: 930 expanded records each, the sixth passes 5000.
	err = s.Batch(ctx, 6, func(tx *record.Tx) error {
		for range 6 {
			if _, err := tx.Update(guest, "nodes", ids[0], map[string]any{"label": "batched"}, "kids.kids"); err != nil {
				return err
			}
		}
		return nil
	})
	expandError(t, err)
}

func TestExpandDepth(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	ids := nodeGraph(t, s, 2)
	guest := &record.Request{Context: "default", Method: "GET"}

	six := "kids.kids.kids.kids.kids.kids"
	r, err := s.View(ctx, guest, "nodes", ids[0], six)
	if err != nil {
		t.Fatalf("six levels = %v, want them served", err)
	}
	if got := expandedRefs([]*underhood.Record{r}); got != 2+4+8+16+32+64 {
		t.Errorf("six levels gave %d expanded records, want 126", got)
	}
	_, err = s.View(ctx, guest, "nodes", ids[0], "label,"+six+".kids")
	want := `Expand path "kids.kids.kids.kids.kids.kids.kids" follows 7 relations; at most 6 are allowed.`
	if msg := underhood.ErrorMessage(err); msg != want {
		t.Errorf("seven levels: message %q, want %q", msg, want)
	}
	if fe := expandError(t, err); fe.Code != "validation_expand_too_deep" || fe.Params["max"] != 6 {
		t.Errorf("seven levels: data.expand = %+v, want code validation_expand_too_deep with max 6", fe)
	}
}

// TestExpandHiddenRelation: only a superuser may expand a hidden relation
// field or a back-relation through one; anyone else's expand of it is
// ignored, like an expand of a field that does not exist.
func TestExpandHiddenRelation(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	anyone := underhood.RuleOf("")
	people := mustCollection(t, s, &underhood.Collection{Name: "people", Type: underhood.TypeBase,
		ListRule: anyone, ViewRule: anyone, Fields: []*underhood.Field{{Name: "name", Type: underhood.FieldText}}})
	secretRel := relation("informant", people.ID, 1, false)
	secretRel.Hidden = true
	mustCollection(t, s, &underhood.Collection{Name: "cases", Type: underhood.TypeBase,
		ListRule: anyone, ViewRule: anyone,
		Fields: []*underhood.Field{{Name: "title", Type: underhood.FieldText}, relation("detective", people.ID, 1, false), secretRel}})
	det := mustCreate(t, s, "people", map[string]any{"name": "Holmes"})
	inf := mustCreate(t, s, "people", map[string]any{"name": "Wiggins"})
	c := mustCreate(t, s, "cases", map[string]any{"title": "A case", "detective": det.ID(), "informant": inf.ID()})

	guest := &record.Request{Context: "default", Method: "GET"}
	tests := []struct {
		name   string
		req    *record.Request
		coll   string
		id     string
		expand string
		want   []string // expand keys wanted
	}{
		{"guest, hidden field", guest, "cases", c.ID(), "detective,informant", []string{"detective"}},
		{"guest, hidden field nested", guest, "people", det.ID(), "cases_via_detective.informant", []string{"cases_via_detective"}},
		{"guest, back-relation through hidden field", guest, "people", inf.ID(), "cases_via_informant,cases_via_detective", nil},
		{"superuser, hidden field", s.SystemRequest(), "cases", c.ID(), "detective,informant", []string{"detective", "informant"}},
		{"superuser, back-relation through hidden field", s.SystemRequest(), "people", inf.ID(), "cases_via_informant", []string{"cases_via_informant"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := s.View(ctx, tt.req, tt.coll, tt.id, tt.expand)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, k := range []string{"detective", "informant", "cases_via_detective", "cases_via_informant"} {
				if r.Expand[k] != nil {
					got = append(got, k)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("View(%s, expand=%s) expanded %v, want %v", tt.coll, tt.expand, got, tt.want)
			}
			if tt.name == "guest, hidden field nested" {
				cs, _ := r.Expand["cases_via_detective"].([]*underhood.Record)
				if len(cs) != 1 || cs[0].Expand["informant"] != nil {
					t.Errorf("nested expand of a hidden field = %v, want it ignored", cs)
				}
			}
		})
	}
}

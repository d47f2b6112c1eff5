package filter_test

import (
	"context"
	"strings"
	"testing"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/filter"
	"github.com/underhood/underhood/sqlstore/sqlite"
)

// nodesSchema is the test schema with a collection of nodes in a tree:
// each has a label, a parent and kids, both relations to nodes.
func nodesSchema() testSchema {
	nodes := &underhood.Collection{ID: "pbc_nodes", Name: "nodes", Type: underhood.TypeBase, ListRule: underhood.RuleOf(""), Fields: []*underhood.Field{
		idField(),
		newField("label", underhood.FieldText),
		newField("parent", underhood.FieldRelation, relTo("pbc_nodes", 1)),
		newField("kids", underhood.FieldRelation, relTo("pbc_nodes", 30)),
	}}
	return append(newSchema(), nodes)
}

// hops is a path through n relations named rel, ending at label.
func hops(rel string, n int) string {
	return strings.Repeat(rel+".", n) + "label"
}

// TestRelationDepth checks that filters, sorts and rules follow at most
// filter.MaxRelationDepth relations (H3): a path through 7 or 8 is refused
// with a 400 that names the path and the limit, one through 6 is accepted,
// for a client's filter and sort and for a rule alike.
func TestRelationDepth(t *testing.T) {
	s := nodesSchema()
	nodes := s.mustCollection(t, "nodes")
	auth := &underhood.Record{Collection: s.mustCollection(t, "users"), Data: map[string]any{"id": "u01", "team": "t1"}}
	fromAuth6 := "@request.auth.team.users_via_team.posts_via_author.author.posts_via_author.author.name"
	fromAuth7 := "@request.auth.team.users_via_team.posts_via_author.author.posts_via_author.author.posts_via_author.title"
	tests := []struct {
		name   string
		client bool
		filter string // a filter or rule; "" when sort is set
		sort   string
		path   string // the path the error must name; "" when accepted
	}{
		{name: "filter 6", client: true, filter: hops("kids", 6) + " ?= 'x'"},
		{name: "filter 7", client: true, filter: hops("kids", 7) + " ?= 'x'", path: hops("kids", 7)},
		{name: "filter 8", client: true, filter: hops("kids", 8) + " ?= 'x'", path: hops("kids", 8)},
		{name: "filter 8 on the right", client: true, filter: "label = '' || 'x' ?= " + hops("kids", 8), path: hops("kids", 8)},
		{name: "filter 8 with modifier", client: true, filter: hops("kids", 8) + ":lower ?= 'x'", path: hops("kids", 8)},
		{name: "filter 8 back-relations", client: true, filter: strings.Repeat("nodes_via_parent.", 8) + "id ?= 'x'", path: strings.Repeat("nodes_via_parent.", 8) + "id"},
		{name: "filter 6 mixed", client: true, filter: "parent.kids.nodes_via_kids.parent.nodes_via_parent.kids.label ?= 'x'"},
		{name: "sort 6", client: true, sort: "-" + hops("parent", 6) + ",label"},
		{name: "sort 8", client: true, sort: "label,-" + hops("parent", 8), path: hops("parent", 8)},
		{name: "sort 7 lower", client: true, sort: hops("parent", 7) + ":lower", path: hops("parent", 7)},
		{name: "superuser filter 8", client: true, filter: hops("kids", 8) + " ?= 'x'", path: hops("kids", 8)},
		{name: "rule 6", filter: hops("kids", 6) + " ?= @request.auth.id"},
		{name: "rule 8", filter: hops("kids", 8) + " ?= @request.auth.id", path: hops("kids", 8)},
		// The relation @request.auth.team starts from counts as one.
		{name: "rule from auth 6", filter: fromAuth6 + " ?= label"},
		{name: "rule from auth 7", filter: fromAuth7 + " ?= label", path: fromAuth7},
		{name: "rule through @collection 6", filter: "@collection.nodes." + hops("parent", 6) + " = label"},
		{name: "rule through @collection 8", filter: "@collection.nodes." + hops("parent", 8) + " = label", path: "@collection.nodes." + hops("parent", 8)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := filter.Options{
				Schema: s, Collection: nodes, Dialect: sqlite.Dialect{}, Now: testNow,
				Client: tt.client, Superuser: strings.HasPrefix(tt.name, "superuser"), Request: &filter.Request{Auth: auth},
			}
			var err error
			src := tt.filter
			if tt.sort != "" {
				src = tt.sort
				_, err = filter.CompileSort(tt.sort, o)
			} else {
				e, perr := filter.Parse(tt.filter)
				if perr != nil {
					t.Fatalf("Parse(%q) = %v", tt.filter, perr)
				}
				_, err = filter.Compile(e, o)
				_, merr := filter.Match(context.Background(), e, o, &underhood.Record{Collection: nodes, Data: map[string]any{"id": "n1"}}, emptyLoader{})
				if (err == nil) != (merr == nil) {
					t.Errorf("Compile(%q) = %v but Match = %v: they must agree", src, err, merr)
				}
			}
			if tt.path == "" {
				if err != nil {
					t.Fatalf("compile %q = %v, want it accepted", src, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("compile %q succeeded, want an error naming the limit of %d relations", src, filter.MaxRelationDepth)
			}
			if code := errorCode(t, err); code != underhood.EInvalid {
				t.Errorf("compile %q = %v (code %s), want code %s (400)", src, err, code, underhood.EInvalid)
			}
			msg := underhood.ErrorMessage(err)
			for _, want := range []string{`"` + tt.path + `"`, "more than 6 relations"} {
				if !strings.Contains(msg, want) {
					t.Errorf("compile %q: message %q does not contain %q", src, msg, want)
				}
			}
		})
	}
}

// emptyLoader is a filter.Loader over no records.
type emptyLoader struct{}

func (emptyLoader) Get(context.Context, *underhood.Collection, []string) ([]*underhood.Record, error) {
	return nil, nil
}

func (emptyLoader) Via(context.Context, *underhood.Collection, *underhood.Field, string) ([]*underhood.Record, error) {
	return nil, nil
}

func (emptyLoader) All(context.Context, *underhood.Collection) ([]*underhood.Record, error) {
	return nil, nil
}

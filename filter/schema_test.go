package filter_test

import (
	"errors"
	"testing"

	"github.com/underhood/underhood"
)

// This file is the small schema the filter tests share: posts written by
// users (an auth collection) of teams, with comments on posts.

// testSchema implements filter.Schema over a fixed list of collections.
type testSchema []*underhood.Collection

func (s testSchema) FindCollection(nameOrID string) *underhood.Collection {
	for _, c := range s {
		if c.Name == nameOrID || c.ID == nameOrID {
			return c
		}
	}
	return nil
}

// mustCollection returns the collection name of s.
func (s testSchema) mustCollection(t testing.TB, name string) *underhood.Collection {
	t.Helper()
	c := s.FindCollection(name)
	if c == nil {
		t.Fatalf("no collection %q in the test schema", name)
	}
	return c
}

func newField(name, typ string, opts ...func(*underhood.Field)) *underhood.Field {
	f := &underhood.Field{ID: "f_" + name, Name: name, Type: typ}
	for _, o := range opts {
		o(f)
	}
	return f
}

func hidden(f *underhood.Field) { f.Hidden = true }

// relTo makes a relation to the collection with id id, holding up to max ids.
func relTo(id string, max int) func(*underhood.Field) {
	return func(f *underhood.Field) { f.CollectionID, f.MaxSelect = id, max }
}

func maxSelect(n int) func(*underhood.Field) {
	return func(f *underhood.Field) { f.MaxSelect = n }
}

func idField() *underhood.Field {
	return &underhood.Field{ID: "f_id", Name: "id", Type: underhood.FieldText, System: true, PrimaryKey: true, Required: true}
}

// newSchema returns fresh collections (tests may change them) that anyone
// may list.
func newSchema() testSchema {
	teams := &underhood.Collection{ID: "pbc_teams", Name: "teams", Type: underhood.TypeBase, Fields: []*underhood.Field{
		idField(),
		newField("name", underhood.FieldText),
	}}
	users := &underhood.Collection{ID: "pbc_users", Name: "users", Type: underhood.TypeAuth, Fields: []*underhood.Field{
		idField(),
		newField("password", underhood.FieldPassword, hidden),
		newField("tokenKey", underhood.FieldText, hidden),
		newField("email", underhood.FieldEmail),
		newField("emailVisibility", underhood.FieldBool),
		newField("name", underhood.FieldText),
		newField("team", underhood.FieldRelation, relTo("pbc_teams", 1)),
	}}
	posts := &underhood.Collection{ID: "pbc_posts", Name: "posts", Type: underhood.TypeBase, Fields: []*underhood.Field{
		idField(),
		newField("title", underhood.FieldText),
		newField("views", underhood.FieldNumber),
		newField("published", underhood.FieldBool),
		newField("tags", underhood.FieldSelect, maxSelect(5)),
		newField("author", underhood.FieldRelation, relTo("pbc_users", 1)),
		newField("coauthors", underhood.FieldRelation, relTo("pbc_users", 5)),
		newField("data", underhood.FieldJSON),
		newField("loc", underhood.FieldGeoPoint),
		newField("secret", underhood.FieldText, hidden),
		newField("created", underhood.FieldDate),
	}}
	comments := &underhood.Collection{ID: "pbc_comments", Name: "comments", Type: underhood.TypeBase, Fields: []*underhood.Field{
		idField(),
		newField("post", underhood.FieldRelation, relTo("pbc_posts", 1)),
		newField("body", underhood.FieldText),
	}}
	s := testSchema{teams, users, posts, comments}
	for _, c := range s {
		c.ListRule = underhood.RuleOf("") // anyone may list, so client filters may go anywhere
	}
	return s
}

// errorCode returns the code of err, which must be an *underhood.Error.
func errorCode(t testing.TB, err error) string {
	t.Helper()
	var e *underhood.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *underhood.Error", err, err)
	}
	return e.Code
}

package record_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
	"github.com/underhood/underhood/record/recordtest"
	"github.com/underhood/underhood/sqlstore/postgres"
	"github.com/underhood/underhood/sqlstore/sqlite"
	"github.com/underhood/underhood/sqlstore/storetest"
)

// TestHiddenEmailNotRevealedByIDCollision checks that the guard on hidden
// emails recognises the caller by collection and id (M1): ids are chosen
// by clients, so an attacker can sign up in users with the id of a
// member whose email is hidden, and must not then be taken for that
// member when filtering members by email.
func TestHiddenEmailNotRevealedByIDCollision(t *testing.T) {
	s := recordtest.Open(t, storetest.Config(t, sqlite.Dialect{}, postgres.Dialect{}), nil)
	ctx := context.Background()
	anyone := underhood.RuleOf("")
	members := saveCollection(t, s, &underhood.Collection{Name: "members", Type: underhood.TypeAuth,
		ListRule: anyone, ViewRule: anyone, CreateRule: anyone})
	const id = "victim000000001"
	account := func(coll, email string) *underhood.Record {
		t.Helper()
		r, err := s.Create(ctx, s.SystemRequest(), coll, map[string]any{"id": id, "email": email,
			"password": "password1", "passwordConfirm": "password1"}, "")
		if err != nil {
			t.Fatalf("create %s in %s: %v", email, coll, err)
		}
		r, err = s.FindRecord(ctx, r.Collection, r.ID())
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	victim := account(members.Name, "alice@example.com")
	attacker := account("users", "eve@example.com")

	// found lists members matching filter as the caller, and asks the
	// in-memory check (realtime's) whether the victim matches it.
	found := func(caller *underhood.Record, filter string) []string {
		t.Helper()
		req := &record.Request{Context: "default", Method: "GET", Auth: caller}
		res, err := s.List(ctx, req, members.Name, record.ListParams{Filter: filter})
		if err != nil {
			t.Fatalf("List(members, %q) = %v", filter, err)
		}
		var out []string
		for _, r := range res.Items {
			out = append(out, "list "+r.ID())
		}
		ok, err := s.CanSee(ctx, req, victim, members.ListRule, filter)
		if err != nil {
			t.Fatalf("CanSee(victim, %q) = %v", filter, err)
		}
		if ok {
			out = append(out, "match "+victim.ID())
		}
		return out
	}
	tests := []struct {
		name   string
		caller *underhood.Record
		filter string
		want   []string
	}{
		{"attacker right guess", attacker, `email ~ "a%"`, nil},
		{"attacker exact guess", attacker, `email = "alice@example.com"`, nil},
		{"attacker wrong guess", attacker, `email ~ "z%"`, nil},
		{"victim itself", victim, `email ~ "a%"`, []string{"list " + id, "match " + id}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, found(tt.caller, tt.filter)); diff != "" {
				t.Errorf("members found by %q (-want +got):\n%s", tt.filter, diff)
			}
		})
	}
	// The list itself does not show the email either.
	res, err := s.List(ctx, &record.Request{Auth: attacker}, members.Name, record.ListParams{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Items {
		if _, ok := r.Data["email"]; ok {
			t.Errorf("List(members) as the attacker shows the email of %s", r.ID())
		}
	}
}

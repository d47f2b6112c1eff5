package record_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
	"github.com/underhood/underhood/record/recordtest"
	"github.com/underhood/underhood/sqlstore/postgres"
	"github.com/underhood/underhood/sqlstore/sqlite"
	"github.com/underhood/underhood/sqlstore/storetest"
)

// accountsEnv is a service with a user, two labels and an "accounts"
// collection whose rules each test case sets: the fields a rule protects
// are credits (number), roles (multi select), labels (multi relation) and
// files (multi file).
type accountsEnv struct {
	s      *record.Service
	user   *underhood.Record // the caller, with its hidden fields
	labels []string          // ids of the two labels: label0000000001 and label0000000002
}

func newAccountsEnv(t testing.TB) *accountsEnv {
	t.Helper()
	s := recordtest.Open(t, storetest.Config(t, sqlite.Dialect{}, postgres.Dialect{}), nil)
	ctx := context.Background()
	users, err := s.Collection("users")
	if err != nil {
		t.Fatal(err)
	}
	users = users.Clone()
	users.Field("password").Cost = 4
	saveCollection(t, s, users)
	u, err := s.Create(ctx, s.SystemRequest(), "users", map[string]any{"email": "u@example.com", "password": "password1", "passwordConfirm": "password1"}, "")
	if err != nil {
		t.Fatal(err)
	}
	user, err := s.FindRecord(ctx, u.Collection, u.ID())
	if err != nil {
		t.Fatal(err)
	}
	labels := saveCollection(t, s, &underhood.Collection{Name: "labels", Type: underhood.TypeBase,
		ListRule: underhood.RuleOf(""), ViewRule: underhood.RuleOf(""),
		Fields: []*underhood.Field{{Name: "name", Type: underhood.FieldText}}})
	e := &accountsEnv{s: s, user: user}
	for i, n := range []string{"l1", "l2"} {
		id := fmt.Sprintf("label%010d", i+1)
		l, err := s.Create(ctx, s.SystemRequest(), "labels", map[string]any{"id": id, "name": n}, "")
		if err != nil {
			t.Fatal(err)
		}
		e.labels = append(e.labels, l.ID())
	}
	saveCollection(t, s, &underhood.Collection{Name: "accounts", Type: underhood.TypeBase,
		ListRule: underhood.RuleOf(""), ViewRule: underhood.RuleOf(""),
		Fields: []*underhood.Field{
			{Name: "title", Type: underhood.FieldText},
			relation("owner", underhood.UsersID, 1, false),
			{Name: "credits", Type: underhood.FieldNumber},
			{Name: "roles", Type: underhood.FieldSelect, MaxSelect: 3, Values: []string{"admin", "editor", "viewer"}},
			relation("labels", labels.ID, 5, false),
			{Name: "files", Type: underhood.FieldFile, MaxSelect: 5},
		}})
	return e
}

func saveCollection(t testing.TB, s *record.Service, c *underhood.Collection) *underhood.Collection {
	t.Helper()
	saved, err := s.SaveCollection(context.Background(), s.SystemRequest().Auth, c.ID, c)
	if err != nil {
		t.Fatalf("SaveCollection(%s) = %v", c.Name, err)
	}
	return saved
}

// setRules sets the create and update rules of accounts.
func (e *accountsEnv) setRules(t testing.TB, create, update string) {
	t.Helper()
	c, err := e.s.Collection("accounts")
	if err != nil {
		t.Fatal(err)
	}
	c = c.Clone()
	c.CreateRule, c.UpdateRule = underhood.RuleOf(create), underhood.RuleOf(update)
	saveCollection(t, e.s, c)
}

// seed creates, as a superuser, the account every update case starts
// from: 30 credits, the viewer role, label l1 and files a.txt and b.txt.
func (e *accountsEnv) seed(t testing.TB) *underhood.Record {
	t.Helper()
	req := e.s.SystemRequest()
	req.Uploads = []string{"a.txt", "b.txt"}
	r, err := e.s.Create(context.Background(), req, "accounts", map[string]any{
		"title": "acc", "owner": e.user.ID(), "credits": 30, "roles": []any{"viewer"},
		"labels": []any{e.labels[0]}, "files": []any{"a.txt", "b.txt"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// stored returns what is stored of the protected fields of account id.
func (e *accountsEnv) stored(t testing.TB, id string) map[string]any {
	t.Helper()
	c, _ := e.s.Collection("accounts")
	r, err := e.s.FindRecord(context.Background(), c, id)
	if err != nil {
		t.Fatalf("FindRecord(accounts, %s) = %v", id, err)
	}
	return protected(r)
}

func protected(r *underhood.Record) map[string]any {
	return map[string]any{"title": r.String("title"), "credits": r.Data["credits"], "roles": r.Strings("roles"),
		"labels": r.Strings("labels"), "files": r.Strings("files")}
}

// request is the user's request carrying body and the files uploaded with
// it, as the REST adapter makes it.
func (e *accountsEnv) request(method string, body map[string]any, uploads []string) *record.Request {
	return &record.Request{Context: "default", Method: method, Body: body, Auth: e.user, Uploads: uploads}
}

// writePaths are the ways a client's write reaches the service: on its
// own and inside a batch, where an upsert is an update when the id exists.
var writePaths = []string{"single", "batch", "upsert"}

// update sends body, with the files uploaded with it, as an update of
// account id by the user, through path.
func (e *accountsEnv) update(ctx context.Context, path, id string, body map[string]any, uploads []string) error {
	switch path {
	case "single":
		_, err := e.s.Update(ctx, e.request("PATCH", body, uploads), "accounts", id, body, "")
		return err
	case "batch":
		return e.s.Batch(ctx, 1, func(tx *record.Tx) error {
			_, err := tx.Update(e.request("PATCH", body, uploads), "accounts", id, body, "")
			return err
		})
	}
	withID := map[string]any{"id": id}
	for k, v := range body {
		withID[k] = v
	}
	return e.s.Batch(ctx, 1, func(tx *record.Tx) error {
		_, err := tx.Upsert(e.request("PUT", withID, uploads), "accounts", withID, "")
		return err
	})
}

// create sends body, with the files uploaded with it, as a new account of
// the user, through path.
func (e *accountsEnv) create(ctx context.Context, path string, body map[string]any, uploads []string) (*underhood.Record, error) {
	var r *underhood.Record
	var err error
	switch path {
	case "single":
		r, err = e.s.Create(ctx, e.request("POST", body, uploads), "accounts", body, "")
	case "batch":
		err = e.s.Batch(ctx, 1, func(tx *record.Tx) error {
			r, err = tx.Create(e.request("POST", body, uploads), "accounts", body, "")
			return err
		})
	default:
		err = e.s.Batch(ctx, 1, func(tx *record.Tx) error {
			r, err = tx.Upsert(e.request("PUT", body, uploads), "accounts", body, "")
			return err
		})
	}
	return r, err
}

// TestRulesSeeModifiedBody checks that an update rule reading
// @request.body.X sees X as it will be written, whatever modifier sets it
// ("X+", "+X", "X-") and whatever the rule does with it (C1): a user the
// rule forbids to touch a field cannot change it with a modifier, and a
// modifier the rule allows is judged by its result.
func TestRulesSeeModifiedBody(t *testing.T) {
	e := newAccountsEnv(t)
	l1, l2 := e.labels[0], e.labels[1]
	const (
		noCredits = "@request.body.credits:isset = false"
		noRoles   = "@request.body.roles:isset = false"
		noLabels  = "@request.body.labels:isset = false"
		noFiles   = "@request.body.files:isset = false"
	)
	start := map[string]any{"title": "acc", "credits": 30.0, "roles": []string{"viewer"}, "labels": []string{l1}, "files": []string{"a.txt", "b.txt"}}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for sk, sv := range start {
			m[sk] = sv
		}
		m[k] = v
		return m
	}
	tests := []struct {
		name    string
		rule    string
		body    map[string]any
		uploads []string
		want    map[string]any // nil: refused, nothing changes
	}{
		{"number + isset", noCredits, map[string]any{"credits+": 1000}, nil, nil},
		{"number - isset", noCredits, map[string]any{"credits-": 5}, nil, nil},
		{"select + isset", noRoles, map[string]any{"roles+": "admin"}, nil, nil},
		{"select +prefix isset", noRoles, map[string]any{"+roles": "admin"}, nil, nil},
		{"select - isset", noRoles, map[string]any{"roles-": "viewer"}, nil, nil},
		{"relation + isset", noLabels, map[string]any{"labels+": l2}, nil, nil},
		{"relation +prefix isset", noLabels, map[string]any{"+labels": []any{l2}}, nil, nil},
		{"relation - isset", noLabels, map[string]any{"labels-": l1}, nil, nil},
		{"file + isset", noFiles, map[string]any{"files+": "new.txt"}, []string{"new.txt"}, nil},
		{"file - isset", noFiles, map[string]any{"files-": "a.txt"}, nil, nil},
		{"other field isset", noRoles + " && " + noCredits, map[string]any{"title": "renamed"}, nil, with("title", "renamed")},

		{"select + changed", "@request.body.roles:changed = false", map[string]any{"roles+": "admin"}, nil, nil},
		{"select - changed", "@request.body.roles:changed = false", map[string]any{"roles-": "viewer"}, nil, nil},
		{"select - absent value unchanged", "@request.body.roles:changed = false", map[string]any{"roles-": "editor"}, nil, start},
		{"number + changed", "@request.body.credits:changed = false", map[string]any{"credits+": 1}, nil, nil},
		{"number + 0 unchanged", "@request.body.credits:changed = false", map[string]any{"credits+": 0}, nil, start},
		{"relation + changed", "@request.body.labels:changed = false", map[string]any{"labels+": l2}, nil, nil},

		{"select + not like", `@request.body.roles !~ "admin"`, map[string]any{"roles+": "admin"}, nil, nil},
		{"select +prefix not like", `@request.body.roles !~ "admin"`, map[string]any{"+roles": "admin"}, nil, nil},
		{"select plain and + not like", `@request.body.roles !~ "admin"`, map[string]any{"roles": []any{"editor"}, "roles+": "admin"}, nil, nil},
		{"select + not like allowed", `@request.body.roles !~ "admin"`, map[string]any{"roles+": "editor"}, nil, with("roles", []string{"viewer", "editor"})},

		{"select + length", "@request.body.roles:length <= 1", map[string]any{"roles+": "editor"}, nil, nil},
		{"select - length allowed", "@request.body.roles:length <= 1", map[string]any{"roles-": "viewer"}, nil, with("roles", []string{})},
		{"select + each", `@request.body.roles:each != "admin"`, map[string]any{"roles+": "admin"}, nil, nil},
		{"select + each allowed", `@request.body.roles:each != "admin"`, map[string]any{"roles+": "editor"}, nil, with("roles", []string{"viewer", "editor"})},
		{"relation + each", `@request.body.labels:each != "` + l2 + `"`, map[string]any{"labels+": l2}, nil, nil},
		{"file + each", `@request.body.files:each != "new.txt"`, map[string]any{"files+": "new.txt"}, []string{"new.txt"}, nil},

		{"number + equal", noCredits + " || @request.body.credits = 40", map[string]any{"credits+": 11}, nil, nil},
		{"number + equal allowed", noCredits + " || @request.body.credits = 40", map[string]any{"credits+": 10}, nil, with("credits", 40.0)},
		{"number + at most", noCredits + " || @request.body.credits <= 100", map[string]any{"credits+": 80}, nil, nil},
		{"number + at most allowed", noCredits + " || @request.body.credits <= 100", map[string]any{"credits+": 50}, nil, with("credits", 80.0)},
		{"number - at least", noCredits + " || @request.body.credits >= 0", map[string]any{"credits-": 31}, nil, nil},
	}
	for _, path := range writePaths {
		for _, tt := range tests {
			t.Run(path+"/"+tt.name, func(t *testing.T) {
				e.setRules(t, "", "owner = @request.auth.id && ("+tt.rule+")")
				acc := e.seed(t)
				err := e.update(context.Background(), path, acc.ID(), tt.body, tt.uploads)
				want := tt.want
				if want == nil {
					if underhood.ErrorCode(err) != underhood.ENotFound {
						t.Errorf("update %v under %q = %v, want 404", tt.body, tt.rule, err)
					}
					want = start
				} else if err != nil {
					t.Errorf("update %v under %q = %v, want success", tt.body, tt.rule, err)
				}
				if diff := cmp.Diff(want, e.stored(t, acc.ID())); diff != "" {
					t.Errorf("stored after update %v under %q (-want +got):\n%s", tt.body, tt.rule, diff)
				}
			})
		}
	}
}

// TestCreateRuleSeesModifiedBody is TestRulesSeeModifiedBody for the
// create rule: a new record's modifiers apply to its empty fields. (A
// create rule compares :changed with the new record itself, so it guards
// nothing there, with or without modifiers.)
func TestCreateRuleSeesModifiedBody(t *testing.T) {
	e := newAccountsEnv(t)
	tests := []struct {
		name    string
		rule    string
		body    map[string]any
		uploads []string
		allowed bool
	}{
		{"number +", "@request.body.credits:isset = false", map[string]any{"credits+": 1000}, nil, false},
		{"select +", "@request.body.roles:isset = false", map[string]any{"roles+": "admin"}, nil, false},
		{"select +prefix", `@request.body.roles !~ "admin"`, map[string]any{"+roles": "admin"}, nil, false},
		{"select + length", "@request.body.roles:length = 0", map[string]any{"roles+": "admin"}, nil, false},
		{"relation +", "@request.body.labels:isset = false", map[string]any{"labels+": e.labels[1]}, nil, false},
		{"file +", "@request.body.files:isset = false", map[string]any{"files+": "new.txt"}, []string{"new.txt"}, false},
		{"number + at most allowed", "@request.body.credits <= 100", map[string]any{"credits+": 100}, nil, true},
		{"plain field allowed", "@request.body.roles:isset = false", map[string]any{"title": "fine"}, nil, true},
	}
	for _, path := range writePaths {
		for i, tt := range tests {
			t.Run(path+"/"+tt.name, func(t *testing.T) {
				e.setRules(t, "owner = @request.auth.id && ("+tt.rule+")", "")
				title := fmt.Sprintf("new-%s-%d", path, i)
				body := map[string]any{"title": title, "owner": e.user.ID()}
				for k, v := range tt.body {
					if k != "title" {
						body[k] = v
					}
				}
				_, err := e.create(context.Background(), path, body, tt.uploads)
				res, lerr := e.s.List(context.Background(), e.s.SystemRequest(), "accounts", record.ListParams{Filter: fmt.Sprintf("title = %q", title)})
				if lerr != nil {
					t.Fatal(lerr)
				}
				switch {
				case tt.allowed && err != nil:
					t.Errorf("create %v under %q = %v, want success", body, tt.rule, err)
				case !tt.allowed && underhood.ErrorCode(err) != underhood.EInvalid:
					t.Errorf("create %v under %q = %v, want 400", body, tt.rule, err)
				case !tt.allowed && len(res.Items) != 0:
					t.Errorf("create %v under %q stored %v, want nothing", body, tt.rule, protected(res.Items[0]))
				}
			})
		}
	}
}

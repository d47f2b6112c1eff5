package record_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzModifiedBodyRules sends random bodies, modifiers included, as an
// update and a create that rules allow only when they leave credits,
// roles, labels and files unset (@request.body.X:isset = false): whatever
// the body, none of them may change (C1).
func FuzzModifiedBodyRules(f *testing.F) {
	for _, seed := range []string{
		`{"credits+":1000}`, `{"credits-":5}`, `{"credits":1,"credits+":1}`,
		`{"roles+":"admin"}`, `{"+roles":["admin"]}`, `{"roles-":"viewer"}`, `{"roles":[],"roles+":["admin","editor"]}`,
		`{"labels+":"label0000000002"}`, `{"+labels":["label0000000002"]}`, `{"labels-":"label0000000001"}`,
		`{"files+":"new.txt"}`, `{"+files":["new.txt"]}`, `{"files-":["a.txt"]}`,
		`{"title":"t","roles+":"admin","credits-":-100}`, `{"+credits":3}`, `{"roles+-":"admin"}`, `{"title+":"x"}`,
	} {
		f.Add([]byte(seed))
	}
	e := newAccountsEnv(f)
	const protect = "@request.body.credits:isset = false && @request.body.roles:isset = false && " +
		"@request.body.labels:isset = false && @request.body.files:isset = false"
	e.setRules(f, "owner = @request.auth.id && "+protect, "owner = @request.auth.id && "+protect)
	acc := e.seed(f)
	before := e.stored(f, acc.ID())
	delete(before, "title")

	f.Fuzz(func(t *testing.T, raw []byte) {
		var body map[string]any
		if json.Unmarshal(raw, &body) != nil || body == nil {
			t.Skip()
		}
		ctx, uploads := context.Background(), []string{"new.txt"}
		if err := e.update(ctx, "single", acc.ID(), body, uploads); err == nil {
			after := e.stored(t, acc.ID())
			delete(after, "title")
			if diff := cmp.Diff(before, after); diff != "" {
				t.Fatalf("update %s passed a rule that forbids setting them and changed (-before +after):\n%s", raw, diff)
			}
		}
		if _, ok := body["owner"]; !ok {
			body["owner"] = e.user.ID()
		}
		r, err := e.create(ctx, "single", body, uploads)
		if err != nil {
			return
		}
		got := e.stored(t, r.ID())
		want := map[string]any{"credits": 0.0, "roles": []string{}, "labels": []string{}, "files": []string{}}
		delete(got, "title")
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("create %s passed a rule that forbids setting them and stored (-zero +stored):\n%s", raw, diff)
		}
	})
}

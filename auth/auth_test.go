package auth

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/bcrypt"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
	"github.com/underhood/underhood/record/recordtest"
	"github.com/underhood/underhood/sqlstore"
	"github.com/underhood/underhood/sqlstore/postgres"
	"github.com/underhood/underhood/sqlstore/sqlite"
	"github.com/underhood/underhood/sqlstore/storetest"
)

// env is an auth service over a fresh SQLite database with a superuser and
// two users; the users collection also accepts a username as identity.
type env struct {
	records *record.Service
	auth    *Service
	ids     map[string]string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	records := recordtest.Open(t, storetest.Config(t, sqlite.Dialect{}, postgres.Dialect{}), log)
	e := &env{records: records, auth: New(records, log), ids: map[string]string{}}

	// The cheapest bcrypt keeps the tests fast under the race detector.
	e.updateCollection(t, underhood.SuperusersName, func(c *underhood.Collection) { c.Field("password").Cost = bcrypt.MinCost })

	e.updateCollection(t, "users", func(c *underhood.Collection) {
		c.Fields = append(c.Fields, &underhood.Field{Name: "username", Type: underhood.FieldText})
		c.Indexes = append(c.Indexes, "CREATE UNIQUE INDEX idx_users_username ON users (username)")
		c.Auth.PasswordAuth.IdentityFields = []string{"email", "username"}
		c.Field("password").Cost = bcrypt.MinCost
	})
	sys := records.SystemRequest()
	for _, u := range []struct{ coll, name, email, password string }{
		{underhood.SuperusersName, "root", "root@example.com", "root-password"},
		{"users", "alice", "alice@example.com", "alice-password"},
		{"users", "bob", "bob@example.com", "bob-password"},
	} {
		data := map[string]any{"email": u.email, "password": u.password, "passwordConfirm": u.password}
		if u.coll == "users" {
			data["username"] = u.name
		}
		rec, err := records.Create(ctx, sys, u.coll, data, "")
		if err != nil {
			t.Fatalf("create %s: %v", u.name, err)
		}
		e.ids[u.name] = rec.ID()
	}
	return e
}

// updateCollection applies change to a copy of collection name and saves it.
func (e *env) updateCollection(t *testing.T, name string, change func(c *underhood.Collection)) {
	t.Helper()
	c, err := e.records.Collection(name)
	if err != nil {
		t.Fatal(err)
	}
	c = c.Clone()
	change(c)
	if _, err := e.records.SaveCollection(context.Background(), e.records.SystemRequest().Auth, c.ID, c); err != nil {
		t.Fatalf("save collection %s: %v", name, err)
	}
}

func (e *env) login(t *testing.T, coll, identity, password string) string {
	t.Helper()
	res, err := e.auth.AuthWithPassword(context.Background(), coll, identity, password, "", "")
	if err != nil {
		t.Fatalf("AuthWithPassword(%s, %s) = %v", coll, identity, err)
	}
	return res.Token
}

// errorOf reduces an error to what a client sees of it.
type errorOf struct {
	Code, Message string
	Fields        []string
}

func describe(err error) errorOf {
	if err == nil {
		return errorOf{}
	}
	var ue *underhood.Error
	if !errors.As(err, &ue) {
		return errorOf{Code: "not an *underhood.Error: " + err.Error()}
	}
	var fields []string
	for k := range ue.Data {
		fields = append(fields, k)
	}
	return errorOf{Code: ue.Code, Message: ue.Message, Fields: fields}
}

func TestAuthWithPassword(t *testing.T) {
	e := newEnv(t)
	failed := errorOf{Code: underhood.EInvalid, Message: "Failed to authenticate."}
	tests := []struct {
		name                            string
		coll, identity, password, field string
		wantID                          string // "" when an error is expected
		wantErr                         errorOf
	}{
		{"email", "users", "alice@example.com", "alice-password", "", "alice", errorOf{}},
		{"email in another case", "users", "ALICE@Example.com", "alice-password", "", "alice", errorOf{}},
		{"username", "users", "bob", "bob-password", "", "bob", errorOf{}},
		{"explicit identity field", "users", "bob", "bob-password", "username", "bob", errorOf{}},
		{"collection by id", "_pb_users_auth_", "alice@example.com", "alice-password", "", "alice", errorOf{}},
		{"superuser", underhood.SuperusersName, "root@example.com", "root-password", "", "root", errorOf{}},
		{"wrong password", "users", "alice@example.com", "bob-password", "", "", failed},
		{"unknown account", "users", "carol@example.com", "alice-password", "", "", failed},
		{"identity matched against the wrong field", "users", "alice", "alice-password", "email", "", failed},
		{"another collection's account", underhood.SuperusersName, "alice@example.com", "alice-password", "", "", failed},
		{"blank identity", "users", "", "x", "", "", errorOf{underhood.EInvalid, "An error occurred while loading the submitted data.", []string{"identity"}}},
		{"blank password", "users", "alice@example.com", "", "", "", errorOf{underhood.EInvalid, "An error occurred while loading the submitted data.", []string{"password"}}},
		{"identity too long", "users", strings.Repeat("a", 256), "x", "", "", errorOf{underhood.EInvalid, "An error occurred while loading the submitted data.", []string{"identity"}}},
		{"identity field not allowed", "users", "alice", "alice-password", "name", "", errorOf{underhood.EInvalid, "An error occurred while loading the submitted data.", []string{"identityField"}}},
		{"missing collection", "nope", "alice@example.com", "alice-password", "", "", errorOf{underhood.ENotFound, "Missing or invalid auth collection context.", nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := e.auth.AuthWithPassword(context.Background(), tt.coll, tt.identity, tt.password, tt.field, "")
			if diff := cmp.Diff(tt.wantErr, describe(err)); diff != "" {
				t.Fatalf("AuthWithPassword(%q, %q) error mismatch (-want +got):\n%s", tt.coll, tt.identity, diff)
			}
			if tt.wantID == "" {
				if res != nil {
					t.Errorf("AuthWithPassword() = %+v with an error, want no result", res)
				}
				return
			}
			token, rec := res.Token, res.Record
			if rec.ID() != e.ids[tt.wantID] {
				t.Errorf("AuthWithPassword() record id = %q, want %s's %q", rec.ID(), tt.wantID, e.ids[tt.wantID])
			}
			// The caller sees their own email, never a hash or token key.
			if rec.String("email") == "" || rec.Data["password"] != nil || rec.Data["tokenKey"] != nil {
				t.Errorf("AuthWithPassword() record = %v, want email and no password or tokenKey", rec.Data)
			}
			who, err := e.auth.Identify(context.Background(), token)
			if err != nil || who.ID() != rec.ID() {
				t.Errorf("Identify(issued token) = %v, %v, want record %s", who, err, rec.ID())
			}
		})
	}
}

func TestAuthWithPasswordCollectionSettings(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	if _, err := e.records.SaveCollection(ctx, e.records.SystemRequest().Auth, "", &underhood.Collection{
		Name: "posts", Type: underhood.TypeBase, Fields: []*underhood.Field{{Name: "title", Type: underhood.FieldText}},
	}); err != nil {
		t.Fatal(err)
	}
	_, err := e.auth.AuthWithPassword(ctx, "posts", "alice@example.com", "alice-password", "", "")
	if got := underhood.ErrorCode(err); got != underhood.ENotFound {
		t.Errorf("AuthWithPassword(base collection) code = %q, want %q", got, underhood.ENotFound)
	}

	e.updateCollection(t, "users", func(c *underhood.Collection) { c.Auth.AuthRule = nil })
	_, err = e.auth.AuthWithPassword(ctx, "users", "alice@example.com", "alice-password", "", "")
	if got := describe(err); got.Code != underhood.EForbidden || !strings.Contains(got.Message, "requirements to authenticate") {
		t.Errorf("AuthWithPassword(authRule null) = %+v, want 403 about the collection requirements", got)
	}
	// The rule of one collection does not touch another.
	if _, err := e.auth.AuthWithPassword(ctx, underhood.SuperusersName, "root@example.com", "root-password", "", ""); err != nil {
		t.Errorf("AuthWithPassword(superuser, users authRule null) = %v, want nil", err)
	}

	e.updateCollection(t, "users", func(c *underhood.Collection) { c.Auth.AuthRule = underhood.RuleOf("verified = true") })
	_, err = e.auth.AuthWithPassword(ctx, "users", "alice@example.com", "alice-password", "", "")
	if got := underhood.ErrorCode(err); got != underhood.EForbidden {
		t.Errorf("AuthWithPassword(unverified, authRule verified = true) code = %q, want %q", got, underhood.EForbidden)
	}
	if _, err := e.records.Update(ctx, e.records.SystemRequest(), "users", e.ids["alice"], map[string]any{"verified": true}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.auth.AuthWithPassword(ctx, "users", "alice@example.com", "alice-password", "", ""); err != nil {
		t.Errorf("AuthWithPassword(verified, authRule verified = true) = %v, want nil", err)
	}

	e.updateCollection(t, "users", func(c *underhood.Collection) { c.Auth.PasswordAuth.Enabled = false })
	_, err = e.auth.AuthWithPassword(ctx, "users", "alice@example.com", "alice-password", "", "")
	if got := underhood.ErrorCode(err); got != underhood.EForbidden {
		t.Errorf("AuthWithPassword(password auth disabled) code = %q, want %q", got, underhood.EForbidden)
	}
}

func TestIdentify(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	alice := e.login(t, "users", "alice@example.com", "alice-password")
	root := e.login(t, underhood.SuperusersName, "root@example.com", "root-password")
	aliceRec, err := e.records.FindRecord(ctx, mustCollection(t, e, "users"), e.ids["alice"])
	if err != nil {
		t.Fatal(err)
	}
	fileToken, err := e.auth.NewToken(aliceRec, KindFile)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims{
		RecordID: e.ids["alice"], Type: KindAuth, CollectionID: underhood.UsersID,
		RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))},
	}).SignedString([]byte("a guess"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, token string
		wantID      string // "" = guest or error
		wantErr     bool
	}{
		{"no token is a guest", "", "", false},
		{"blank token is a guest", "  ", "", false},
		{"raw token", alice, e.ids["alice"], false},
		{"bearer token", "Bearer " + alice, e.ids["alice"], false},
		{"superuser", root, e.ids["root"], false},
		{"garbage", "not-a-token", "", true},
		{"forged signature", forged, "", true},
		{"file token", fileToken, "", true},
		{"tampered record id", tamper(t, alice, "id", e.ids["bob"]), "", true},
		{"tampered collection", tamper(t, root, "collectionId", underhood.UsersID), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := e.auth.Identify(ctx, tt.token)
			if tt.wantErr {
				if got := underhood.ErrorCode(err); got != underhood.EUnauthorized || rec != nil {
					t.Errorf("Identify(%s) = %v, %v, want nil and an %s error", tt.name, rec, err, underhood.EUnauthorized)
				}
				return
			}
			if err != nil {
				t.Fatalf("Identify(%s) error = %v", tt.name, err)
			}
			if rec == nil && tt.wantID != "" || rec != nil && rec.ID() != tt.wantID {
				t.Errorf("Identify(%s) = %v, want record %q", tt.name, rec, tt.wantID)
			}
			if rec != nil && rec.String("tokenKey") == "" {
				t.Errorf("Identify(%s) returned a record without its tokenKey; callers need the full record", tt.name)
			}
		})
	}
}

func TestIdentifyRevocation(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	bob := e.login(t, "users", "bob@example.com", "bob-password")
	// Cases run in order on one database; the collection-wide one is last.
	tests := []struct {
		name       string
		revoke     func(t *testing.T, id string) *Service // returns the service to identify with
		hitsOthers bool
	}{
		{"expired", func(t *testing.T, id string) *Service {
			later := New(e.records, nil)
			later.now = func() time.Time { return time.Now().Add(7*24*time.Hour + time.Minute) }
			return later
		}, true},
		{"password changed", func(t *testing.T, id string) *Service {
			if _, err := e.records.Update(ctx, e.records.SystemRequest(), "users", id,
				map[string]any{"password": "new-password-1", "passwordConfirm": "new-password-1"}, ""); err != nil {
				t.Fatal(err)
			}
			return e.auth
		}, false},
		{"tokenKey rotated", func(t *testing.T, id string) *Service {
			n, err := e.records.UpdateWhere(ctx, "users", map[string]any{"tokenKey": underhood.RandomString(50)}, sqlstore.Eq("id", id))
			if err != nil || n != 1 {
				t.Fatalf("rotate tokenKey = %d, %v", n, err)
			}
			return e.auth
		}, false},
		{"record deleted", func(t *testing.T, id string) *Service {
			if err := e.records.Delete(ctx, e.records.SystemRequest(), "users", id); err != nil {
				t.Fatal(err)
			}
			return e.auth
		}, false},
		{"collection secret rotated", func(t *testing.T, id string) *Service {
			e.updateCollection(t, "users", func(c *underhood.Collection) {
				c.Auth.AuthToken.Secret = strings.Repeat("s", 50)
			})
			return e.auth
		}, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			email := "victim" + strconv.Itoa(i) + "@example.com"
			victim, err := e.records.Create(ctx, e.records.SystemRequest(), "users",
				map[string]any{"email": email, "username": "victim" + strconv.Itoa(i), "password": "victim-password", "passwordConfirm": "victim-password"}, "")
			if err != nil {
				t.Fatal(err)
			}
			token := e.login(t, "users", email, "victim-password")
			if _, err := e.auth.Identify(ctx, token); err != nil {
				t.Fatalf("Identify(fresh token) = %v", err)
			}
			a := tt.revoke(t, victim.ID())
			if rec, err := a.Identify(ctx, token); underhood.ErrorCode(err) != underhood.EUnauthorized {
				t.Errorf("Identify(after %s) = %v, %v, want %s", tt.name, rec, err, underhood.EUnauthorized)
			}
			bobRec, err := a.Identify(ctx, bob)
			if stillValid := err == nil && bobRec != nil; stillValid == tt.hitsOthers {
				t.Errorf("Identify(another user's token after %s) = %v, %v, want still valid = %v", tt.name, bobRec, err, !tt.hitsOthers)
			}
		})
	}
}

func TestRefresh(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	aliceToken := e.login(t, "users", "alice@example.com", "alice-password")
	alice, err := e.auth.Identify(ctx, aliceToken)
	if err != nil {
		t.Fatal(err)
	}
	rootToken := e.login(t, underhood.SuperusersName, "root@example.com", "root-password")
	root, err := e.auth.Identify(ctx, rootToken)
	if err != nil {
		t.Fatal(err)
	}
	// An impersonation token identifies its record but is not refreshable.
	impersonated, _, err := e.auth.Impersonate(ctx, root, "users", alice.ID(), 0)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		caller  *underhood.Record
		token   string
		coll    string
		wantErr string
	}{
		{"own collection", alice, aliceToken, "users", ""},
		{"own collection by id", alice, aliceToken, underhood.UsersID, ""},
		{"bearer token", alice, "Bearer " + aliceToken, "users", ""},
		{"superuser", root, rootToken, underhood.SuperusersName, ""},
		{"guest", nil, "", "users", underhood.EUnauthorized},
		{"another collection", alice, aliceToken, underhood.SuperusersName, underhood.EForbidden},
		{"superuser for users", root, rootToken, "users", underhood.EForbidden},
		{"missing collection", alice, aliceToken, "nope", underhood.EForbidden},
		{"impersonation token", alice, impersonated, "users", underhood.EForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token, rec, err := e.auth.Refresh(ctx, tt.caller, tt.token, tt.coll)
			if got := underhood.ErrorCode(err); got != tt.wantErr {
				t.Fatalf("Refresh(%s) error = %v, want code %q", tt.name, err, tt.wantErr)
			}
			if tt.wantErr != "" {
				return
			}
			if rec.ID() != tt.caller.ID() || rec.Data["tokenKey"] != nil || rec.Data["password"] != nil {
				t.Errorf("Refresh(%s) record = %v, want the caller without secrets", tt.name, rec.Data)
			}
			if who, err := e.auth.Identify(ctx, token); err != nil || who.ID() != tt.caller.ID() {
				t.Errorf("Identify(refreshed token) = %v, %v, want the caller", who, err)
			}
		})
	}
	// A caller deleted since its token was checked cannot refresh.
	if err := e.records.Delete(ctx, e.records.SystemRequest(), "users", alice.ID()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.auth.Refresh(ctx, alice, aliceToken, "users"); underhood.ErrorCode(err) != underhood.EUnauthorized {
		t.Errorf("Refresh(deleted caller) = %v, want %s", err, underhood.EUnauthorized)
	}
}

func mustCollection(t *testing.T, e *env, name string) *underhood.Collection {
	t.Helper()
	c, err := e.records.Collection(name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

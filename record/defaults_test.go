package record

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/underhood/underhood"
)

func TestDefaultCollections(t *testing.T) {
	cols := DefaultCollections()
	if len(cols) != 2 {
		t.Fatalf("DefaultCollections() = %d collections, want 2", len(cols))
	}
	su, users := cols[0], cols[1]

	tests := []struct {
		c          *underhood.Collection
		id, name   string
		system     bool
		fields     []string
		fieldIDs   []string
		rules      [5]string // list, view, create, update, delete; "<nil>" = superusers only
		authTokens int
	}{
		{
			c: su, id: underhood.SuperusersID, name: underhood.SuperusersName, system: true,
			fields:     []string{"id", "password", "tokenKey", "email", "emailVisibility", "verified", "created", "updated"},
			fieldIDs:   []string{"text3208210256", "password901924565", "text2504183744", "email3885137012", "bool1547992806", "bool256245529", "autodate2990389176", "autodate3332085495"},
			rules:      [5]string{"<nil>", "<nil>", "<nil>", "<nil>", "<nil>"},
			authTokens: 86400,
		},
		{
			c: users, id: underhood.UsersID, name: underhood.UsersName,
			fields: []string{"id", "password", "tokenKey", "email", "emailVisibility", "verified", "name", "avatar", "created", "updated"},
			fieldIDs: []string{"text3208210256", "password901924565", "text2504183744", "email3885137012", "bool1547992806", "bool256245529",
				"text1579384326", "file376926767", "autodate2990389176", "autodate3332085495"},
			rules:      [5]string{"id = @request.auth.id", "id = @request.auth.id", "", "id = @request.auth.id", "id = @request.auth.id"},
			authTokens: 604800,
		},
	}
	ruleText := func(r underhood.Rule) string {
		if r == nil {
			return "<nil>"
		}
		return *r
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.c
			if c.ID != tt.id || c.Name != tt.name || c.Type != underhood.TypeAuth || c.System != tt.system {
				t.Errorf("collection = %s/%s/%s system %v, want %s/%s/auth system %v", c.ID, c.Name, c.Type, c.System, tt.id, tt.name, tt.system)
			}
			var names, ids []string
			for _, f := range c.Fields {
				names, ids = append(names, f.Name), append(ids, f.ID)
			}
			if diff := cmp.Diff(tt.fields, names); diff != "" {
				t.Errorf("fields mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.fieldIDs, ids); diff != "" {
				t.Errorf("field ids mismatch (-want +got):\n%s", diff)
			}
			got := [5]string{ruleText(c.ListRule), ruleText(c.ViewRule), ruleText(c.CreateRule), ruleText(c.UpdateRule), ruleText(c.DeleteRule)}
			if got != tt.rules {
				t.Errorf("rules = %q, want %q", got, tt.rules)
			}
			if c.Auth == nil {
				t.Fatal("Auth = nil")
			}
			if c.Auth.AuthToken.Duration != tt.authTokens {
				t.Errorf("auth token duration = %d, want %d", c.Auth.AuthToken.Duration, tt.authTokens)
			}
			if c.Auth.AuthRule == nil || *c.Auth.AuthRule != "" {
				t.Errorf("authRule = %v, want \"\"", c.Auth.AuthRule)
			}
			if len(c.Auth.AuthToken.Secret) != 50 {
				t.Errorf("auth token secret = %q, want 50 characters", c.Auth.AuthToken.Secret)
			}
			wantIdx := []string{
				"CREATE UNIQUE INDEX idx_tokenKey_" + tt.id + " ON " + tt.name + " (tokenKey)",
				"CREATE UNIQUE INDEX idx_email_" + tt.id + " ON " + tt.name + " (email COLLATE NOCASE) WHERE email != ''",
			}
			if diff := cmp.Diff(wantIdx, c.Indexes); diff != "" {
				t.Errorf("indexes mismatch (-want +got):\n%s", diff)
			}
			if c.Created == "" || c.Updated == "" {
				t.Errorf("created/updated not set")
			}
			// What is stored must be accepted again unchanged by validation.
			again, err := PrepareCollection(c, c, cols, nil)
			if err != nil {
				t.Fatalf("PrepareCollection(default %s) error: %v", c.Name, err)
			}
			if diff := cmp.Diff(c.Fields, again.Fields); diff != "" {
				t.Errorf("re-prepared fields mismatch (-want +got):\n%s", diff)
			}
		})
	}

	wantAvatar := &underhood.Field{
		ID: "file376926767", Name: "avatar", Type: underhood.FieldFile, MaxSelect: 1,
		MimeTypes: []string{"image/jpeg", "image/png", "image/svg+xml", "image/gif", "image/webp"},
	}
	if diff := cmp.Diff(wantAvatar, users.Field("avatar")); diff != "" {
		t.Errorf("avatar mismatch (-want +got):\n%s", diff)
	}
	if f := users.Field("name"); f.Type != underhood.FieldText || f.Max == nil || *f.Max != 255 {
		t.Errorf("name = %+v, want text max 255", f)
	}
	if f := users.Field("updated"); !f.OnCreate || !f.OnUpdate {
		t.Errorf("updated = %+v, want onCreate and onUpdate", f)
	}
	if f := users.Field("created"); !f.OnCreate || f.OnUpdate {
		t.Errorf("created = %+v, want onCreate only", f)
	}
	if su.Auth.AuthToken.Secret == users.Auth.AuthToken.Secret {
		t.Errorf("collections share a token secret")
	}
	if again := DefaultCollections(); again[0].Auth.AuthToken.Secret == su.Auth.AuthToken.Secret {
		t.Errorf("DefaultCollections reuses token secrets between calls")
	}
}

func TestDefaultCollectionsJSON(t *testing.T) {
	users := DefaultCollections()[1]
	b, err := json.Marshal(users)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), users.Auth.AuthToken.Secret) {
		t.Errorf("public JSON leaks the token secret")
	}
	wantKeys := []string{"id", "name", "type", "system", "fields", "indexes", "listRule", "authRule", "manageRule",
		"passwordAuth", "oauth2", "mfa", "otp", "authAlert", "authToken", "passwordResetToken", "emailChangeToken",
		"verificationToken", "fileToken", "verificationTemplate", "resetPasswordTemplate", "confirmEmailChangeTemplate"}
	for _, k := range wantKeys {
		if _, ok := m[k]; !ok {
			t.Errorf("users JSON lacks %q", k)
		}
	}
	mapped, _ := m["oauth2"].(map[string]any)["mappedFields"].(map[string]any)
	if mapped["name"] != "name" || mapped["avatarURL"] != "avatar" {
		t.Errorf("oauth2.mappedFields = %v, want name and avatarURL mapped", mapped)
	}
}

func TestScaffoldCollections(t *testing.T) {
	sc := ScaffoldCollections()
	tests := []struct {
		typ     string
		fields  []string
		indexes int
		auth    bool
	}{
		{underhood.TypeBase, []string{"id"}, 0, false},
		{underhood.TypeAuth, []string{"id", "password", "tokenKey", "email", "emailVisibility", "verified"}, 2, true},
		{underhood.TypeView, nil, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			c := sc[tt.typ]
			if c == nil {
				t.Fatalf("no %s scaffold", tt.typ)
			}
			if c.Type != tt.typ || c.ID != "" || c.Name != "" {
				t.Errorf("scaffold = %s %q %q, want type %s without id and name", c.Type, c.ID, c.Name, tt.typ)
			}
			var names []string
			for _, f := range c.Fields {
				names = append(names, f.Name)
				if f.ID == "" {
					t.Errorf("field %s has no id", f.Name)
				}
			}
			if diff := cmp.Diff(tt.fields, names); diff != "" {
				t.Errorf("fields mismatch (-want +got):\n%s", diff)
			}
			if len(c.Indexes) != tt.indexes {
				t.Errorf("indexes = %v, want %d", c.Indexes, tt.indexes)
			}
			if (c.Auth != nil) != tt.auth {
				t.Errorf("Auth = %v, want present %v", c.Auth, tt.auth)
			}
			if _, err := json.Marshal(c); err != nil {
				t.Errorf("json.Marshal: %v", err)
			}
		})
	}

	// A scaffold filled in by a client is a valid new collection; the
	// auth indexes are moved to the collection's table.
	b, err := json.Marshal(sc[underhood.TypeAuth])
	if err != nil {
		t.Fatal(err)
	}
	var c underhood.Collection
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	c.Name = "members"
	got, err := PrepareCollection(nil, &c, DefaultCollections(), nil)
	if err != nil {
		t.Fatalf("PrepareCollection(auth scaffold) error: %v", err)
	}
	for _, idx := range got.Indexes {
		if !strings.Contains(idx, " ON members (") {
			t.Errorf("index %q is not on members", idx)
		}
	}
	if len(got.Indexes) != 2 {
		t.Errorf("indexes = %v, want 2", got.Indexes)
	}
}

package record_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
	"github.com/underhood/underhood/sqlstore"
	"github.com/underhood/underhood/sqlstore/postgres"
	"github.com/underhood/underhood/sqlstore/sqlite"
	"github.com/underhood/underhood/sqlstore/storetest"
)

// TestEmailsUniqueIgnoringCase (M2): an auth record's email may not differ
// only in case from another's, on create and on update, and a lookup by
// email finds the one record whatever the case typed.
func TestEmailsUniqueIgnoringCase(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	sys := s.SystemRequest()
	zed := mustCreate(t, s, "users", map[string]any{"email": "Zed@example.com", "password": "zed-password", "passwordConfirm": "zed-password"})
	bob := mustCreate(t, s, "users", map[string]any{"email": "bob@example.com", "password": "bob-password", "passwordConfirm": "bob-password"})
	tests := []struct {
		name  string
		write func() error
	}{
		{"create lower case", func() error {
			_, err := s.Create(ctx, sys, "users", map[string]any{"email": "zed@example.com", "password": "other-password", "passwordConfirm": "other-password"}, "")
			return err
		}},
		{"create upper case", func() error {
			_, err := s.Create(ctx, sys, "users", map[string]any{"email": "ZED@EXAMPLE.COM", "password": "other-password", "passwordConfirm": "other-password"}, "")
			return err
		}},
		{"update another record", func() error {
			_, err := s.Update(ctx, sys, "users", bob.ID(), map[string]any{"email": "zed@EXAMPLE.com"}, "")
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.write(); !emailNotUnique(err) {
				t.Errorf("write = %v, want 400 with validation_not_unique on email", err)
			}
		})
	}
	// A record may change the case of its own email.
	if _, err := s.Update(ctx, sys, "users", zed.ID(), map[string]any{"email": "zed@example.com"}, ""); err != nil {
		t.Errorf("Update(own email, other case) = %v, want success", err)
	}
	users, _ := s.Collection("users")
	for _, typed := range []string{"zed@example.com", "ZED@example.COM"} {
		got, err := s.FindByField(ctx, users, "email", typed)
		if err != nil || got.ID() != zed.ID() {
			t.Errorf("FindByField(email %q) = %v, %v; want zed", typed, got, err)
		}
	}
	if ix := strings.Join(users.Indexes, "\n"); !strings.Contains(ix, "COLLATE NOCASE") {
		t.Errorf("users indexes = %s, want the email index COLLATE NOCASE", ix)
	}
}

// TestEmailIndexMigration (M2): a database made before emails were unique
// regardless of case gets the case-insensitive index when it opens; while
// existing records conflict, the server logs their ids (never the
// emails), keeps serving, refuses new conflicts and finds only exact
// matches among the conflicting records.
func TestEmailIndexMigration(t *testing.T) {
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, storetest.Config(t, sqlite.Dialect{}, postgres.Dialect{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	var logs syncBuffer
	open := func() *record.Service {
		t.Helper()
		s, err := record.New(ctx, store, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatalf("record.New = %v, want the server to start", err)
		}
		return s
	}
	s := open()
	users, _ := s.Collection("users")

	// Make the database as an older version left it: the email index
	// case-sensitive, and two records differing only in case.
	old := users.Clone()
	for i, raw := range old.Indexes {
		old.Indexes[i] = strings.Replace(raw, "(email COLLATE NOCASE)", "(email)", 1)
	}
	if strings.Join(old.Indexes, "") == strings.Join(users.Indexes, "") {
		t.Fatalf("users indexes %q: no COLLATE NOCASE email index to undo", users.Indexes)
	}
	err = store.Write(ctx, func(q sqlstore.Querier) error {
		if err := store.SaveCollection(ctx, q, users, old); err != nil {
			return err
		}
		for _, email := range []string{"Zed@example.com", "zed@example.com"} {
			r := underhood.NewRecord(old)
			for _, f := range old.Fields {
				r.Data[f.Name] = record.ZeroValue(f)
			}
			r.Data["id"] = underhood.NewID()
			r.Data["email"] = email
			r.Data["tokenKey"] = underhood.NewID()
			if err := store.InsertRecord(ctx, q, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Conflicts: reported by id, the old index kept, the server serving.
	logs.Reset()
	s = open()
	users, _ = s.Collection("users")
	out := logs.String()
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "users") {
		t.Errorf("log = %q, want a warning naming the collection", out)
	}
	if strings.Contains(strings.ToLower(out), "zed@example.com") {
		t.Errorf("log = %q, names the conflicting emails", out)
	}
	lower, err := s.FindByField(ctx, users, "email", "zed@example.com")
	if err != nil || lower.String("email") != "zed@example.com" {
		t.Errorf("FindByField(zed@, among conflicts) = %v, %v; want the exact match", lower, err)
	}
	for _, id := range []string{lower.ID()} {
		if !strings.Contains(out, id) {
			t.Errorf("log = %q, want the conflicting record %s named", out, id)
		}
	}
	if _, err := s.FindByField(ctx, users, "email", "ZED@example.com"); underhood.ErrorCode(err) != underhood.ENotFound {
		t.Errorf("FindByField(ZED@, matching two records, neither exactly) = %v, want not found", err)
	}
	_, err = s.Create(ctx, s.SystemRequest(), "users", map[string]any{"email": "zED@example.com", "password": "other-password", "passwordConfirm": "other-password"}, "")
	if !emailNotUnique(err) {
		t.Errorf("Create(a third case variant) = %v, want validation_not_unique on email", err)
	}
	// The superuser can still change the collection meanwhile.
	c := users.Clone()
	c.ListRule = underhood.RuleOf("")
	if _, err := s.SaveCollection(ctx, s.SystemRequest().Auth, c.ID, c); err != nil {
		t.Errorf("SaveCollection(users, while emails conflict) = %v, want success", err)
	}

	// Once the conflict is resolved, the next start creates the index.
	if err := s.Delete(ctx, s.SystemRequest(), "users", lower.ID()); err != nil {
		t.Fatal(err)
	}
	logs.Reset()
	s = open()
	users, _ = s.Collection("users")
	if ix := strings.Join(users.Indexes, "\n"); !strings.Contains(ix, "COLLATE NOCASE") {
		t.Errorf("users indexes after the conflict is gone = %s, want the email index COLLATE NOCASE", ix)
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("log = %q, want no warning", logs.String())
	}
	// The database itself now refuses a case variant.
	err = store.Write(ctx, func(q sqlstore.Querier) error {
		r := underhood.NewRecord(users)
		for _, f := range users.Fields {
			r.Data[f.Name] = record.ZeroValue(f)
		}
		r.Data["id"], r.Data["email"], r.Data["tokenKey"] = underhood.NewID(), "ZED@EXAMPLE.COM", underhood.NewID()
		return store.InsertRecord(ctx, q, r)
	})
	if !emailNotUnique(err) {
		t.Errorf("InsertRecord(case variant, straight to the store) = %v, want validation_not_unique on email", err)
	}
}

// emailNotUnique reports whether err is a 400 with validation_not_unique
// on email.
func emailNotUnique(err error) bool {
	var ue *underhood.Error
	if !asError(err, &ue) || ue.Code != underhood.EInvalid {
		return false
	}
	fe, ok := ue.Data["email"].(underhood.FieldError)
	return ok && fe.Code == "validation_not_unique"
}

// syncBuffer is a log destination that may be written concurrently.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}

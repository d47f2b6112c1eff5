package record_test

import (
	"context"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
)

// setPasswordCost sets the bcrypt cost of coll's password field.
func setPasswordCost(t *testing.T, s *record.Service, coll string, cost int) {
	t.Helper()
	c, err := s.Collection(coll)
	if err != nil {
		t.Fatal(err)
	}
	c = c.Clone()
	c.Field("password").Cost = cost
	if _, err := s.SaveCollection(context.Background(), s.SystemRequest().Auth, c.ID, c); err != nil {
		t.Fatalf("SaveCollection(%s, cost %d) = %v", coll, cost, err)
	}
}

func storedHash(t *testing.T, s *record.Service, coll, id string) string {
	t.Helper()
	c, err := s.Collection(coll)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.FindRecord(context.Background(), c, id)
	if err != nil {
		t.Fatal(err)
	}
	return r.String("password")
}

func TestPasswordCost(t *testing.T) {
	s := newService(t)
	tests := []struct {
		name     string
		cost     int // 0 leaves the field's default
		wantCost int
	}{
		{"default", 0, 10},
		{"configured", 5, 5},
		{"minimum", bcrypt.MinCost, bcrypt.MinCost},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cost != 0 {
				setPasswordCost(t, s, "users", tt.cost)
			}
			pw := "correct-horse-battery"
			u := mustCreate(t, s, "users", map[string]any{"email": "cost" + string(rune('a'+i)) + "@example.com", "password": pw, "passwordConfirm": pw})
			hash := storedHash(t, s, "users", u.ID())
			got, err := bcrypt.Cost([]byte(hash))
			if err != nil {
				t.Fatalf("stored password %q is not a bcrypt hash: %v", hash, err)
			}
			if got != tt.wantCost {
				t.Errorf("bcrypt cost of the stored hash = %d, want %d", got, tt.wantCost)
			}
			if strings.Contains(hash, pw) || !record.CheckPassword(hash, pw) {
				t.Errorf("stored hash %q: want a hash of the password, never the password", hash)
			}
		})
	}
}

func TestPasswordPolicy(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	setPasswordCost(t, s, "users", bcrypt.MinCost)
	tests := []struct {
		name        string
		password    string
		wantCode    string // "" = accepted
		wantMessage string // substring of the field error's message
	}{
		{"eight characters", "12345678", "", ""},
		{"seven characters", "1234567", "validation_min_text_constraint", "8"},
		{"72 bytes", strings.Repeat("p", 72), "", ""},
		{"73 bytes", strings.Repeat("p", 73), "validation_max_text_constraint", "72 bytes"},
		{"30 characters, 90 bytes", strings.Repeat("€", 30), "validation_max_text_constraint", "72 bytes"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Create(ctx, s.SystemRequest(), "users", map[string]any{
				"email": "policy" + string(rune('a'+i)) + "@example.com", "password": tt.password, "passwordConfirm": tt.password}, "")
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("Create(password of %d bytes) = %v, want success", len(tt.password), err)
				}
				return
			}
			fe := fieldError(t, err, "password")
			if fe.Code != tt.wantCode || !strings.Contains(fe.Message, tt.wantMessage) {
				t.Errorf("Create(password of %d bytes): password error %+v, want code %s with %q in the message", len(tt.password), fe, tt.wantCode, tt.wantMessage)
			}
		})
	}
}

// fieldError returns the error err reports for field.
func fieldError(t *testing.T, err error, field string) underhood.FieldError {
	t.Helper()
	ue, ok := err.(*underhood.Error)
	if !ok || ue.Code != underhood.EInvalid {
		t.Fatalf("error = %v, want a validation error", err)
	}
	fe, ok := ue.Data[field].(underhood.FieldError)
	if !ok {
		t.Fatalf("error data = %v, want an error for %s", ue.Data, field)
	}
	return fe
}

func TestTokenKeyRotation(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	setPasswordCost(t, s, "users", bcrypt.MinCost)
	u := mustCreate(t, s, "users", map[string]any{"email": "rot@example.com", "password": "password-1", "passwordConfirm": "password-1", "name": "Rot"})
	users, err := s.Collection("users")
	if err != nil {
		t.Fatal(err)
	}
	tokenKey := func() string {
		t.Helper()
		r, err := s.FindRecord(ctx, users, u.ID())
		if err != nil {
			t.Fatal(err)
		}
		return r.String("tokenKey")
	}
	update := func(data map[string]any) func() error {
		return func() error {
			_, err := s.Update(ctx, s.SystemRequest(), "users", u.ID(), data, "")
			return err
		}
	}
	tests := []struct {
		name        string
		change      func() error
		wantRotated bool
	}{
		{"name change", update(map[string]any{"name": "Other"}), false},
		{"password change", update(map[string]any{"password": "password-2", "passwordConfirm": "password-2"}), true},
		{"email change", update(map[string]any{"email": "rot2@example.com"}), true},
		{"email case change", update(map[string]any{"email": "ROT2@example.com"}), false},
		{"tokenKey sent by a client is ignored", update(map[string]any{"tokenKey": strings.Repeat("k", 50)}), false},
		{"RotateTokenKey", func() error { return s.RotateTokenKey(ctx, "users", u.ID()) }, true},
		{"RotateTokenKey by collection id", func() error { return s.RotateTokenKey(ctx, users.ID, u.ID()) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tokenKey()
			if err := tt.change(); err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			after := tokenKey()
			if rotated := after != before; rotated != tt.wantRotated {
				t.Errorf("%s: tokenKey rotated = %v, want %v", tt.name, rotated, tt.wantRotated)
			}
			if len(after) < 30 {
				t.Errorf("%s: tokenKey %q is too short", tt.name, after)
			}
		})
	}
	blog(t, s)
	for _, tt := range []struct{ coll, id string }{{"users", "missing"}, {"authors", u.ID()}, {"nope", u.ID()}} {
		if err := s.RotateTokenKey(ctx, tt.coll, tt.id); underhood.ErrorCode(err) != underhood.ENotFound {
			t.Errorf("RotateTokenKey(%s, %s) = %v, want %s", tt.coll, tt.id, err, underhood.ENotFound)
		}
	}
}

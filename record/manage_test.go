package record_test

import (
	"context"
	"errors"
	"testing"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
)

func TestManageRule(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	staff := record.ScaffoldCollections()["auth"]
	staff.Name = "staff"
	staff.Fields = append(staff.Fields, &underhood.Field{Name: "admin", Type: underhood.FieldBool}, &underhood.Field{Name: "nick", Type: underhood.FieldText})
	staff.ListRule = underhood.RuleOf("@request.auth.id != ''")
	staff.ViewRule = underhood.RuleOf("@request.auth.id != ''")
	staff.UpdateRule = underhood.RuleOf("@request.auth.id != ''")
	mustCollection(t, s, staff)
	pw := map[string]any{"password": "12345678", "passwordConfirm": "12345678"}
	user := func(email string, admin bool) *record.Request {
		data := map[string]any{"email": email, "admin": admin}
		for k, v := range pw {
			data[k] = v
		}
		r := mustCreate(t, s, "staff", data)
		full, err := s.FindRecord(ctx, r.Collection, r.ID())
		if err != nil {
			t.Fatal(err)
		}
		return &record.Request{Auth: full}
	}
	alice, bob := user("alice@example.com", false), user("bob@example.com", false)
	boss := user("boss@example.com", true)
	aliceID := alice.Auth.ID()
	update := func(req *record.Request, data map[string]any) (*underhood.Record, error) {
		return s.Update(ctx, req, "staff", aliceID, data, "")
	}
	tests := []struct {
		name    string
		req     *record.Request
		data    map[string]any
		wantErr string // field named in the error, "" for success
	}{
		{"the update rule lets bob edit alice's plain fields", bob, map[string]any{"nick": "al"}, ""},
		{"without manageRule bob cannot set her password", bob, map[string]any{"password": "hijacked1", "passwordConfirm": "hijacked1"}, "password"},
		{"alice needs her old password", alice, map[string]any{"password": "newpass123", "passwordConfirm": "newpass123"}, "oldPassword"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := update(tt.req, tt.data)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Update(%v) = %v, want success", tt.data, err)
				}
				return
			}
			var ue *underhood.Error
			if !asError(err, &ue) || ue.Data[tt.wantErr] == nil {
				t.Fatalf("Update(%v) = %v, want an error on %s", tt.data, err, tt.wantErr)
			}
		})
	}
	if r, err := update(bob, map[string]any{"verified": true, "email": "bob-owns-this@example.com"}); err != nil || r.Bool("verified") || r.String("email") == "bob-owns-this@example.com" {
		t.Fatalf("bob set verified/email without manageRule: %v, %v", r, err)
	}

	manage := underhood.RuleOf("@request.auth.admin = true")
	c, _ := s.Collection("staff")
	c = c.Clone()
	c.Auth.ManageRule = manage
	if _, err := s.SaveCollection(ctx, s.SystemRequest().Auth, "staff", c); err != nil {
		t.Fatal(err)
	}
	r, err := update(boss, map[string]any{"password": "reset-by-boss", "passwordConfirm": "reset-by-boss", "verified": true, "email": "alice2@example.com"})
	if err != nil {
		t.Fatalf("manager Update = %v, want success", err)
	}
	if !r.Bool("verified") {
		t.Errorf("manager could not set verified: %v", r.Data)
	}
	full, _ := s.FindRecord(ctx, c, aliceID)
	if full.String("email") != "alice2@example.com" || !record.CheckPassword(full.String("password"), "reset-by-boss") {
		t.Errorf("manager's email and password change not stored: %v", full.Data["email"])
	}
	if _, err := update(bob, map[string]any{"password": "hijacked1", "passwordConfirm": "hijacked1"}); err == nil {
		t.Errorf("a non-manager changed the password after manageRule was set")
	}
}

func asError(err error, target **underhood.Error) bool { return errors.As(err, target) }

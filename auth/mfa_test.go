package auth

import (
	"context"
	"testing"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
)

// enableMFA turns on OTP and MFA for users.
func (e *mailEnv) enableMFA(t *testing.T, rule string) {
	t.Helper()
	e.updateCollection(t, "users", func(c *underhood.Collection) {
		c.Auth.OTP.Enabled = true
		c.Auth.MFA.Enabled = true
		c.Auth.MFA.Rule = rule
	})
}

// passwordFirst signs in with a password and returns the MFA id it must
// answer with.
func (e *mailEnv) passwordFirst(t *testing.T, email, password string) string {
	t.Helper()
	res, err := e.auth.AuthWithPassword(context.Background(), "users", email, password, "", "")
	if err != nil {
		t.Fatalf("AuthWithPassword(%s) = %v", email, err)
	}
	if res.MFAID == "" || res.Token != "" || res.Record != nil {
		t.Fatalf("AuthWithPassword(%s) with MFA = %+v, want only an mfaId", email, res)
	}
	return res.MFAID
}

func TestMFAPasswordThenOTP(t *testing.T) {
	ctx := context.Background()
	e := newMailEnv(t)
	e.enableMFA(t, "")

	mfaID := e.passwordFirst(t, "alice@example.com", "alice-password")
	rows, err := e.auth.ownRows(ctx, record.MFAsName, e.record(t, "alice"))
	if err != nil || len(rows) != 1 || rows[0].String("method") != MethodPassword {
		t.Fatalf("_mfas rows of alice = %v, %v, want one for the password", rows, err)
	}

	// The same method again does not complete it, and leaves it open.
	_, err = e.auth.AuthWithPassword(ctx, "users", "alice@example.com", "alice-password", "", mfaID)
	if got := describe(err); got.Code != underhood.EInvalid || got.Message != msgMFASameMethod {
		t.Errorf("password twice = %+v, want 400 %q", got, msgMFASameMethod)
	}
	// Another record's second factor cannot complete alice's session.
	bobOTP, bobCode := e.requestOTP(t, "bob@example.com", 8)
	if _, err := e.auth.AuthWithOTP(ctx, "users", bobOTP, bobCode, mfaID); describe(err).Message != msgMFAInvalid {
		t.Errorf("bob's OTP on alice's session = %v, want 400 %q", err, msgMFAInvalid)
	}

	otpID, code := e.requestOTP(t, "alice@example.com", 8)
	res, err := e.auth.AuthWithOTP(ctx, "users", otpID, code, mfaID)
	if err != nil {
		t.Fatalf("AuthWithOTP(second factor) = %v", err)
	}
	if res.Token == "" || res.Record.ID() != e.ids["alice"] {
		t.Fatalf("AuthWithOTP(second factor) = %+v, want alice's token", res)
	}
	if who, err := e.auth.Identify(ctx, res.Token); err != nil || who.ID() != e.ids["alice"] {
		t.Errorf("Identify(mfa token) = %v, %v", who, err)
	}
	// The session is used up.
	if rows, _ := e.auth.ownRows(ctx, record.MFAsName, e.record(t, "alice")); len(rows) != 0 {
		t.Errorf("%d _mfas rows left after completing, want 0", len(rows))
	}
	otpID, code = e.requestOTP(t, "alice@example.com", 8)
	if _, err := e.auth.AuthWithOTP(ctx, "users", otpID, code, mfaID); describe(err).Message != msgMFAExpired {
		t.Errorf("reusing a completed mfaId = %v, want 400 %q", err, msgMFAExpired)
	}

	// OTP first, password second works as well.
	otpID, code = e.requestOTP(t, "alice@example.com", 8)
	first, err := e.auth.AuthWithOTP(ctx, "users", otpID, code, "")
	if err != nil || first.MFAID == "" || first.Token != "" {
		t.Fatalf("AuthWithOTP(first factor) = %+v, %v, want an mfaId", first, err)
	}
	res, err = e.auth.AuthWithPassword(ctx, "users", "alice@example.com", "alice-password", "", first.MFAID)
	if err != nil || res.Token == "" {
		t.Fatalf("AuthWithPassword(second factor) = %+v, %v, want a token", res, err)
	}

	// Unknown and malformed ids.
	for _, id := range []string{underhood.NewID(), "not an id", "x' OR 1=1 --"} {
		if _, err := e.auth.AuthWithPassword(ctx, "users", "alice@example.com", "alice-password", "", id); describe(err).Message != msgMFAExpired {
			t.Errorf("AuthWithPassword(mfaId %q) = %v, want 400 %q", id, err, msgMFAExpired)
		}
	}
}

func TestMFAExpires(t *testing.T) {
	ctx := context.Background()
	e := newMailEnv(t)
	e.enableMFA(t, "")
	e.updateCollection(t, "users", func(c *underhood.Collection) { c.Auth.MFA.Duration = 60 })
	mfaID := e.passwordFirst(t, "alice@example.com", "alice-password")
	otpID, code := e.requestOTP(t, "alice@example.com", 8)
	e.auth.now = func() time.Time { return time.Now().Add(61 * time.Second) }
	e.updateCollection(t, "users", func(c *underhood.Collection) { c.Auth.OTP.Duration = 600 })
	if _, err := e.auth.AuthWithOTP(ctx, "users", otpID, code, mfaID); describe(err).Message != msgMFAExpired {
		t.Errorf("second factor after MFA.Duration = %v, want 400 %q", err, msgMFAExpired)
	}
	if rows, _ := e.auth.ownRows(ctx, record.MFAsName, e.record(t, "alice")); len(rows) != 0 {
		t.Errorf("%d expired _mfas rows kept, want them deleted", len(rows))
	}
}

func TestMFARuleAndAuthRule(t *testing.T) {
	ctx := context.Background()
	e := newMailEnv(t)
	// Only bob needs a second factor.
	e.enableMFA(t, "email = 'bob@example.com'")
	res, err := e.auth.AuthWithPassword(ctx, "users", "alice@example.com", "alice-password", "", "")
	if err != nil || res.Token == "" {
		t.Errorf("alice (MFA rule false) = %+v, %v, want a token at once", res, err)
	}
	e.passwordFirst(t, "bob@example.com", "bob-password")

	// The auth rule comes first: a refused record learns nothing of MFA
	// and gets no session.
	e.updateCollection(t, "users", func(c *underhood.Collection) { c.Auth.AuthRule = underhood.RuleOf("verified = true") })
	res, err = e.auth.AuthWithPassword(ctx, "users", "bob@example.com", "bob-password", "", "")
	if underhood.ErrorCode(err) != underhood.EForbidden || res != nil {
		t.Errorf("bob (auth rule false) = %+v, %v, want 403", res, err)
	}

	// MFA off: an mfaId is ignored and the token is issued.
	e.updateCollection(t, "users", func(c *underhood.Collection) { c.Auth.MFA.Enabled = false; c.Auth.AuthRule = underhood.RuleOf("") })
	res, err = e.auth.AuthWithPassword(ctx, "users", "bob@example.com", "bob-password", "", "whatever")
	if err != nil || res.Token == "" {
		t.Errorf("bob (MFA off) = %+v, %v, want a token", res, err)
	}
}

package auth

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/mail/mailpittest"
	"github.com/underhood/underhood/record"
)

// otpCode returns the one-time password in an OTP mail.
func otpCode(t *testing.T, msg *mailpittest.Message, length int) string {
	t.Helper()
	m := regexp.MustCompile(fmt.Sprintf(`\b(\d{%d})\b`, length)).FindStringSubmatch(msg.Text)
	if m == nil {
		t.Fatalf("no %d-digit code in %q:\n%s", length, msg.Subject, msg.Text)
	}
	return m[1]
}

// requestOTP asks for a code for email and returns the OTP id and the
// code from the mail, which is deleted from mailpit so the next one is
// unambiguous.
func (e *mailEnv) requestOTP(t *testing.T, email string, length int) (string, string) {
	t.Helper()
	id, err := e.auth.RequestOTP(context.Background(), "users", email)
	if err != nil {
		t.Fatalf("RequestOTP(%s) = %v", email, err)
	}
	msg := e.smtp.WaitFor(t, "with otp "+id, func(s mailpittest.Summary) bool { return s.SentTo(email) })
	code := otpCode(t, msg, length)
	e.smtp.DeleteAll(t)
	return id, code
}

// isOTPInvalid reports whether err is the one answer to every bad code.
func isOTPInvalid(err error) bool {
	got := describe(err)
	return got.Code == underhood.EInvalid && got.Message == msgOTPInvalid && len(got.Fields) == 0
}

func TestOTP(t *testing.T) {
	ctx := context.Background()
	e := newMailEnv(t)

	if _, err := e.auth.RequestOTP(ctx, "users", "alice@example.com"); underhood.ErrorCode(err) != underhood.EForbidden {
		t.Errorf("RequestOTP(otp disabled) = %v, want 403", err)
	}
	if _, err := e.auth.AuthWithOTP(ctx, "users", "abc", "123", ""); underhood.ErrorCode(err) != underhood.EForbidden {
		t.Errorf("AuthWithOTP(otp disabled) = %v, want 403", err)
	}
	e.updateCollection(t, "users", func(c *underhood.Collection) { c.Auth.OTP.Enabled = true })

	id, code := e.requestOTP(t, "alice@example.com", 8)
	if e.record(t, "alice").Bool("verified") {
		t.Fatal("alice is verified before using an OTP")
	}
	invalid := errorOf{Code: underhood.EInvalid, Message: msgOTPInvalid}
	wrong := "00000000"
	if code == wrong {
		wrong = "11111111"
	}
	for _, bad := range []struct{ name, id, code string }{
		{"wrong code", id, wrong},
		{"code of another length", id, code[:6]},
		{"unknown id", underhood.NewID(), code},
		{"malformed id", "../" + id, code},
	} {
		res, err := e.auth.AuthWithOTP(ctx, "users", bad.id, bad.code, "")
		if !isOTPInvalid(err) || res != nil {
			t.Errorf("AuthWithOTP(%s) = %+v, %v, want %+v", bad.name, res, err, invalid)
		}
	}
	res, err := e.auth.AuthWithOTP(ctx, "users", id, code, "")
	if err != nil {
		t.Fatalf("AuthWithOTP() = %v", err)
	}
	if res.Record.ID() != e.ids["alice"] || res.MFAID != "" {
		t.Errorf("AuthWithOTP() = record %s, mfa %q, want alice's token", res.Record.ID(), res.MFAID)
	}
	if who, err := e.auth.Identify(ctx, res.Token); err != nil || who.ID() != e.ids["alice"] {
		t.Errorf("Identify(otp token) = %v, %v, want alice", who, err)
	}
	if !e.record(t, "alice").Bool("verified") || !res.Record.Bool("verified") {
		t.Error("alice is not verified after signing in with a code sent to her address")
	}
	if _, err := e.auth.AuthWithOTP(ctx, "users", id, code, ""); !isOTPInvalid(err) {
		t.Errorf("AuthWithOTP(used code) = %v, want %+v", err, invalid)
	}

	// Unknown addresses get an id too; it never works.
	ghost, err := e.auth.RequestOTP(ctx, "users", "ghost@example.com")
	if err != nil || !underhood.ValidID(ghost) {
		t.Fatalf("RequestOTP(unknown) = %q, %v, want an id", ghost, err)
	}
	if _, err := e.auth.AuthWithOTP(ctx, "users", ghost, "12345678", ""); !isOTPInvalid(err) {
		t.Errorf("AuthWithOTP(unknown address's id) = %v, want %+v", err, invalid)
	}

	// An expired code is refused.
	e.updateCollection(t, "users", func(c *underhood.Collection) { c.Auth.OTP.Duration = 60; c.Auth.OTP.Length = 6 })
	id, code = e.requestOTP(t, "bob@example.com", 6)
	e.auth.now = func() time.Time { return time.Now().Add(61 * time.Second) }
	if _, err := e.auth.AuthWithOTP(ctx, "users", id, code, ""); !isOTPInvalid(err) {
		t.Errorf("AuthWithOTP(expired) = %v, want %+v", err, invalid)
	}
	e.auth.now = time.Now

	// A code belongs to its collection.
	id, code = e.requestOTP(t, "bob@example.com", 6)
	e.updateCollection(t, underhood.SuperusersName, func(c *underhood.Collection) { c.Auth.OTP.Enabled = true })
	if _, err := e.auth.AuthWithOTP(ctx, underhood.SuperusersName, id, code, ""); !isOTPInvalid(err) {
		t.Errorf("AuthWithOTP(users code on superusers) = %v, want %+v", err, invalid)
	}
	// The authRule applies to OTP logins too.
	e.updateCollection(t, "users", func(c *underhood.Collection) { c.Auth.AuthRule = underhood.RuleOf("email = 'nobody'") })
	if _, err := e.auth.AuthWithOTP(ctx, "users", id, code, ""); underhood.ErrorCode(err) != underhood.EForbidden {
		t.Errorf("AuthWithOTP(authRule refuses) = %v, want 403", err)
	}

	// Stored codes are hashes.
	otps, err := e.records.Collection(record.OTPsName)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := e.auth.ownRows(ctx, record.OTPsName, e.record(t, "bob"))
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rows {
		if h := row.String("password"); !strings.HasPrefix(h, "$2") || strings.Contains(h, code) {
			t.Errorf("%s row stores %q, want a bcrypt hash", otps.Name, h)
		}
	}
}

func TestOTPAttemptsAreLimited(t *testing.T) {
	ctx := context.Background()
	e := newMailEnv(t)
	e.updateCollection(t, "users", func(c *underhood.Collection) { c.Auth.OTP.Enabled = true })
	id, code := e.requestOTP(t, "alice@example.com", 8)
	limited := false
	for range 20 {
		_, err := e.auth.AuthWithOTP(ctx, "users", id, "99999999", "")
		if underhood.ErrorCode(err) == underhood.ETooManyRequests {
			limited = true
			break
		}
	}
	if !limited {
		t.Fatal("20 wrong codes for one OTP were all answered, want 429 before")
	}
	if _, err := e.auth.AuthWithOTP(ctx, "users", id, code, ""); underhood.ErrorCode(err) != underhood.ETooManyRequests {
		t.Errorf("AuthWithOTP(right code after the limit) = %v, want 429", err)
	}
}

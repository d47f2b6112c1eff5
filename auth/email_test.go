package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/mail"
	"github.com/underhood/underhood/mail/mailpittest"
	"github.com/underhood/underhood/record"
)

// mailEnv is an env whose auth service sends its mail through a real SMTP
// server (mailpit) configured in the settings.
type mailEnv struct {
	*env
	smtp *mailpittest.Server
}

func newMailEnv(t *testing.T) *mailEnv {
	t.Helper()
	smtp := mailpittest.Start(t)
	e := newEnv(t)
	patch := fmt.Sprintf(`{"smtp":{"enabled":true,"host":%q,"port":%d},
		"meta":{"appName":"Acme","appURL":"https://acme.test","senderName":"Acme","senderAddress":"no-reply@acme.test"}}`,
		smtp.Host, smtp.SMTPPort)
	if _, err := e.records.UpdateSettings(context.Background(), e.records.SystemRequest().Auth, []byte(patch)); err != nil {
		t.Fatal(err)
	}
	// The cheapest bcrypt for one-time passwords too: at the default cost
	// one hash takes seconds under the race detector.
	e.updateCollection(t, record.OTPsName, func(c *underhood.Collection) { c.Field("password").Cost = bcrypt.MinCost })
	// mailpit listens on loopback, which the operator allows here.
	e.auth.UseMailer(mail.New(e.records, mail.Options{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}))
	// These tests mail one address more often than its limit allows
	// (TestMailsPerRecipient tests the limit).
	e.setRateLimit(t, "identity:"+ScopeMailRecipient, 600, 1000)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := e.auth.Close(ctx); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	return &mailEnv{env: e, smtp: smtp}
}

// setRateLimit sets the limit of every rate-limit rule labelled label.
func (e *env) setRateLimit(t *testing.T, label string, duration, maxRequests int) {
	t.Helper()
	rl := e.records.Settings().RateLimits
	rules := slices.Clone(rl.Rules)
	for i := range rules {
		if rules[i].Label == label {
			rules[i].Duration, rules[i].MaxRequests = duration, maxRequests
		}
	}
	patch, err := json.Marshal(map[string]any{"rateLimits": map[string]any{"enabled": rl.Enabled, "rules": rules}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.records.UpdateSettings(context.Background(), e.records.SystemRequest().Auth, patch); err != nil {
		t.Fatal(err)
	}
}

// record returns the stored state of a user of the env.
func (e *env) record(t *testing.T, name string) *underhood.Record {
	t.Helper()
	rec, err := e.records.FindRecord(context.Background(), mustCollection(t, e, "users"), e.ids[name])
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// linkToken returns the token at the end of the link in msg whose path
// contains route ("confirm-verification", …).
func linkToken(t *testing.T, msg *mailpittest.Message, route string) string {
	t.Helper()
	m := regexp.MustCompile(route + `/([A-Za-z0-9_.-]+)`).FindStringSubmatch(msg.HTML)
	if m == nil {
		t.Fatalf("no %s link in message %q:\n%s", route, msg.Subject, msg.HTML)
	}
	// The plain-text part carries the same link.
	if !strings.Contains(msg.Text, route+"/"+m[1]) {
		t.Errorf("plain-text part lacks the %s link:\n%s", route, msg.Text)
	}
	return m[1]
}

// wantFieldError checks that err is a 400 whose data names field.
func wantFieldError(t *testing.T, what string, err error, field string) {
	t.Helper()
	got := describe(err)
	if got.Code != underhood.EInvalid || !slices.Contains(got.Fields, field) {
		t.Errorf("%s = %v, want a 400 about %q", what, err, field)
	}
}

func TestVerification(t *testing.T) {
	ctx := context.Background()
	e := newMailEnv(t)

	if err := e.auth.RequestVerification(ctx, "users", "nobody@example.com"); err != nil {
		t.Fatalf("RequestVerification(unknown email) = %v, want nil", err)
	}
	if err := e.auth.RequestVerification(ctx, "users", "ALICE@example.com"); err != nil {
		t.Fatalf("RequestVerification(alice) = %v", err)
	}
	msg := e.smtp.WaitTo(t, "alice@example.com")
	if msg.Subject != "Verify your Acme email" || msg.From.Address != "no-reply@acme.test" {
		t.Errorf("verification mail = %q from %q, want the collection's template from the settings' sender", msg.Subject, msg.From.Address)
	}
	if !strings.Contains(msg.HTML, "https://acme.test/_/#/auth/confirm-verification/") {
		t.Errorf("verification mail lacks the app URL link:\n%s", msg.HTML)
	}
	token := linkToken(t, msg, "confirm-verification")
	if n := e.smtp.Count(t, "nobody@example.com"); n != 0 {
		t.Errorf("%d mails went to an address no account has", n)
	}
	// The token is not an auth token.
	if rec, err := e.auth.Identify(ctx, token); err == nil {
		t.Errorf("Identify(verification token) = %v, want an error", rec.ID())
	}

	aliceLogin := e.login(t, "users", "alice@example.com", "alice-password")
	resetToken, err := signTokenWith(e.record(t, "alice"), KindPasswordReset, time.Now(), claims{Email: "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct{ name, token string }{
		{"empty", ""},
		{"garbage", "abc"},
		{"auth token", aliceLogin},
		{"password reset token", resetToken},
		{"tampered", tamper(t, token, "id", e.ids["bob"])},
	} {
		wantFieldError(t, "ConfirmVerification("+bad.name+")", e.auth.ConfirmVerification(ctx, "users", bad.token), "token")
	}
	if err := e.auth.ConfirmVerification(ctx, underhood.SuperusersName, token); underhood.ErrorCode(err) != underhood.EInvalid {
		t.Errorf("ConfirmVerification(superusers) = %v, want 400", err)
	}
	if e.record(t, "alice").Bool("verified") {
		t.Fatal("alice is verified before confirming")
	}
	if err := e.auth.ConfirmVerification(ctx, "users", token); err != nil {
		t.Fatalf("ConfirmVerification() = %v", err)
	}
	if !e.record(t, "alice").Bool("verified") {
		t.Error("alice is not verified after confirming")
	}
	// Confirming changes no password: alice's login still works.
	e.login(t, "users", "alice@example.com", "alice-password")

	// A verified record gets no more verification mail.
	before := e.smtp.Count(t, "alice@example.com")
	if err := e.auth.RequestVerification(ctx, "users", "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := e.auth.RequestVerification(ctx, "users", "bob@example.com"); err != nil {
		t.Fatal(err)
	}
	e.smtp.WaitTo(t, "bob@example.com")
	e.auth.Close(ctx)
	if n := e.smtp.Count(t, "alice@example.com"); n != before {
		t.Errorf("verified alice got %d more verification mails, want 0", n-before)
	}

	// A token sent to an address the record no longer has is refused.
	bobToken := linkToken(t, e.smtp.WaitTo(t, "bob@example.com"), "confirm-verification")
	if _, err := e.records.Update(ctx, e.records.SystemRequest(), "users", e.ids["bob"], map[string]any{"email": "bob2@example.com"}, ""); err != nil {
		t.Fatal(err)
	}
	wantFieldError(t, "ConfirmVerification(after an email change)", e.auth.ConfirmVerification(ctx, "users", bobToken), "token")

	// Form errors.
	for _, bad := range []string{"", "not-an-email", strings.Repeat("a", 251) + "@x.io"} {
		wantFieldError(t, fmt.Sprintf("RequestVerification(%q)", bad), e.auth.RequestVerification(ctx, "users", bad), "email")
	}
	if err := e.auth.RequestVerification(ctx, underhood.SuperusersName, "root@example.com"); underhood.ErrorCode(err) != underhood.EInvalid {
		t.Errorf("RequestVerification(superusers) = %v, want 400", err)
	}
}

func TestPasswordReset(t *testing.T) {
	ctx := context.Background()
	e := newMailEnv(t)
	oldToken := e.login(t, "users", "bob@example.com", "bob-password")

	if err := e.auth.RequestPasswordReset(ctx, "users", "bob@example.com"); err != nil {
		t.Fatalf("RequestPasswordReset(bob) = %v", err)
	}
	msg := e.smtp.WaitTo(t, "bob@example.com")
	if msg.Subject != "Reset your Acme password" {
		t.Errorf("subject = %q", msg.Subject)
	}
	token := linkToken(t, msg, "confirm-password-reset")

	tests := []struct {
		name, token, password, confirm string
		field                          string
	}{
		{"no token", "", "new-password-1", "new-password-1", "token"},
		{"no password", token, "", "", "password"},
		{"confirmation differs", token, "new-password-1", "new-password-2", "passwordConfirm"},
		{"too short", token, "short", "short", "password"},
		{"auth token", oldToken, "new-password-1", "new-password-1", "token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantFieldError(t, "ConfirmPasswordReset", e.auth.ConfirmPasswordReset(ctx, "users", tt.token, tt.password, tt.confirm), tt.field)
		})
	}
	if err := e.auth.ConfirmPasswordReset(ctx, "users", token, "new-password-1", "new-password-1"); err != nil {
		t.Fatalf("ConfirmPasswordReset() = %v", err)
	}
	// The new password works, the old one does not, and every earlier
	// token, the reset token included, is void.
	e.login(t, "users", "bob@example.com", "new-password-1")
	if _, err := e.auth.AuthWithPassword(ctx, "users", "bob@example.com", "bob-password", "", ""); err == nil {
		t.Error("the old password still works")
	}
	if _, err := e.auth.Identify(ctx, oldToken); underhood.ErrorCode(err) != underhood.EUnauthorized {
		t.Errorf("Identify(token from before the reset) = %v, want 401", err)
	}
	wantFieldError(t, "ConfirmPasswordReset(used token)", e.auth.ConfirmPasswordReset(ctx, "users", token, "new-password-2", "new-password-2"), "token")
	// The reset proved bob's address.
	if !e.record(t, "bob").Bool("verified") {
		t.Error("bob is not verified after a password reset")
	}

	// Unknown accounts: same answer, no mail.
	if err := e.auth.RequestPasswordReset(ctx, "users", "nobody@example.com"); err != nil {
		t.Errorf("RequestPasswordReset(unknown) = %v, want nil", err)
	}
	e.updateCollection(t, "users", func(c *underhood.Collection) { c.Auth.PasswordAuth.Enabled = false })
	if err := e.auth.RequestPasswordReset(ctx, "users", "bob@example.com"); underhood.ErrorCode(err) != underhood.EInvalid {
		t.Errorf("RequestPasswordReset(password auth off) = %v, want 400", err)
	}
	e.auth.Close(ctx)
	if n := e.smtp.Count(t, "nobody@example.com"); n != 0 {
		t.Errorf("%d mails went to an address no account has", n)
	}
}

func TestEmailChange(t *testing.T) {
	ctx := context.Background()
	e := newMailEnv(t)
	alice := e.record(t, "alice")
	oldToken := e.login(t, "users", "alice@example.com", "alice-password")

	// Who may ask.
	if err := e.auth.RequestEmailChange(ctx, nil, "users", "new@example.com"); underhood.ErrorCode(err) != underhood.EUnauthorized {
		t.Errorf("RequestEmailChange(guest) = %v, want 401", err)
	}
	root := e.login(t, underhood.SuperusersName, "root@example.com", "root-password")
	rootRec, err := e.auth.Identify(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.auth.RequestEmailChange(ctx, rootRec, "users", "new@example.com"); underhood.ErrorCode(err) != underhood.EForbidden {
		t.Errorf("RequestEmailChange(superuser on users) = %v, want 403", err)
	}
	if err := e.auth.RequestEmailChange(ctx, rootRec, underhood.SuperusersName, "new@example.com"); underhood.ErrorCode(err) != underhood.EInvalid {
		t.Errorf("RequestEmailChange(superusers) = %v, want 400", err)
	}
	for _, bad := range []string{"", "nope", "ALICE@example.com"} {
		wantFieldError(t, fmt.Sprintf("RequestEmailChange(%q)", bad), e.auth.RequestEmailChange(ctx, alice, "users", bad), "newEmail")
	}

	if err := e.auth.RequestEmailChange(ctx, alice, "users", "alice.new@example.com"); err != nil {
		t.Fatalf("RequestEmailChange() = %v", err)
	}
	msg := e.smtp.WaitTo(t, "alice.new@example.com")
	token := linkToken(t, msg, "confirm-email-change")
	if n := e.smtp.Count(t, "alice@example.com"); n != 0 {
		t.Errorf("the old address got %d mails, want the link at the new one only", n)
	}

	wantFieldError(t, "ConfirmEmailChange(wrong password)", e.auth.ConfirmEmailChange(ctx, "users", token, "wrong-password"), "password")
	wantFieldError(t, "ConfirmEmailChange(no password)", e.auth.ConfirmEmailChange(ctx, "users", token, ""), "password")
	wantFieldError(t, "ConfirmEmailChange(auth token)", e.auth.ConfirmEmailChange(ctx, "users", oldToken, "alice-password"), "token")
	if err := e.auth.ConfirmEmailChange(ctx, "users", token, "alice-password"); err != nil {
		t.Fatalf("ConfirmEmailChange() = %v", err)
	}
	now := e.record(t, "alice")
	if now.String("email") != "alice.new@example.com" || !now.Bool("verified") {
		t.Errorf("alice = %s verified=%v, want alice.new@example.com, verified", now.String("email"), now.Bool("verified"))
	}
	if _, err := e.auth.Identify(ctx, oldToken); underhood.ErrorCode(err) != underhood.EUnauthorized {
		t.Errorf("Identify(token from before the change) = %v, want 401", err)
	}
	e.login(t, "users", "alice.new@example.com", "alice-password")
	wantFieldError(t, "ConfirmEmailChange(used token)", e.auth.ConfirmEmailChange(ctx, "users", token, "alice-password"), "token")

	// Asking for an address another account has is answered like any
	// other request (the asker learns nothing); the confirmation refuses.
	alice = e.record(t, "alice")
	if err := e.auth.RequestEmailChange(ctx, alice, "users", "bob@example.com"); err != nil {
		t.Fatalf("RequestEmailChange(bob's address) = %v, want nil", err)
	}
	taken := linkToken(t, e.smtp.WaitTo(t, "bob@example.com"), "confirm-email-change")
	wantFieldError(t, "ConfirmEmailChange(address taken)", e.auth.ConfirmEmailChange(ctx, "users", taken, "alice-password"), "token")
	if got := e.record(t, "alice").String("email"); got != "alice.new@example.com" {
		t.Errorf("alice's email = %q after a refused change", got)
	}
}

// TestEmailTokensAreNotAuthTokens: tokens of the email flows are signed
// with their own secrets and kinds; none opens a session, and none works
// in another flow.
func TestEmailTokensAreNotAuthTokens(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	alice := e.record(t, "alice")
	for _, kind := range []string{KindVerification, KindPasswordReset, KindEmailChange} {
		tok, err := signTokenWith(alice, kind, time.Now(), claims{Email: "alice@example.com", NewEmail: "x@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		if rec, err := e.auth.Identify(ctx, tok); underhood.ErrorCode(err) != underhood.EUnauthorized {
			t.Errorf("Identify(%s token) = %v, %v, want 401", kind, rec, err)
		}
		// The claims say another kind: the signature, made with this
		// kind's secret, does not hold for it.
		for _, other := range []string{KindAuth, KindVerification, KindPasswordReset, KindEmailChange} {
			if other == kind {
				continue
			}
			if _, err := verifyTokenClaims(tamper(t, tok, "type", other), alice, other, time.Now()); err == nil {
				t.Errorf("a %s token retyped as %s verified", kind, other)
			}
		}
	}
}

// TestRequestEndpointsRevealNothing: for a known and an unknown address
// the request endpoints answer the same, and in about the same time.
func TestRequestEndpointsRevealNothing(t *testing.T) {
	ctx := context.Background()
	e := newMailEnv(t)
	e.updateCollection(t, "users", func(c *underhood.Collection) { c.Auth.OTP.Enabled = true })
	// Limits per address are another test's subject.
	if _, err := e.records.UpdateSettings(ctx, e.records.SystemRequest().Auth, []byte(`{"rateLimits":{"enabled":false}}`)); err != nil {
		t.Fatal(err)
	}
	endpoints := []struct {
		name    string
		request func(email string) (string, error)
	}{
		{"request-verification", func(email string) (string, error) { return "", e.auth.RequestVerification(ctx, "users", email) }},
		{"request-password-reset", func(email string) (string, error) { return "", e.auth.RequestPasswordReset(ctx, "users", email) }},
		{"request-otp", func(email string) (string, error) { return e.auth.RequestOTP(ctx, "users", email) }},
	}
	const rounds = 7
	for _, ep := range endpoints {
		t.Run(ep.name, func(t *testing.T) {
			var known, unknown []time.Duration
			for i := range rounds {
				for _, email := range []string{"alice@example.com", fmt.Sprintf("ghost%d@example.com", i)} {
					// Mail of the previous request must not compete with
					// this one: only the answer itself is measured.
					if err := e.auth.waitMail(ctx); err != nil {
						t.Fatal(err)
					}
					start := time.Now()
					out, err := ep.request(email)
					d := time.Since(start)
					if err != nil {
						t.Fatalf("%s(%s) = %v, want nil", ep.name, email, err)
					}
					if ep.name == "request-otp" && !underhood.ValidID(out) {
						t.Errorf("%s(%s) otpId = %q, want an id", ep.name, email, out)
					}
					if d < requestFloor {
						t.Errorf("%s(%s) took %s, less than the %s floor", ep.name, email, d, requestFloor)
					}
					if email == "alice@example.com" {
						known = append(known, d)
					} else {
						unknown = append(unknown, d)
					}
				}
			}
			slices.Sort(known)
			slices.Sort(unknown)
			mk, mu := known[rounds/2], unknown[rounds/2]
			if diff := mk - mu; diff > 15*time.Millisecond || diff < -15*time.Millisecond {
				t.Errorf("median time known %s, unknown %s: differ by more than 15ms", mk, mu)
			}
		})
	}
}

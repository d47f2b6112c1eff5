package auth

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
)

func TestTOTPCodeRFC6238(t *testing.T) {
	// RFC 6238 appendix B, SHA-1, truncated to six digits.
	secret := []byte("12345678901234567890")
	tests := []struct {
		unix int64
		want string
	}{
		{59, "287082"},
		{1111111109, "081804"},
		{1111111111, "050471"},
		{1234567890, "005924"},
		{2000000000, "279037"},
		{20000000000, "353130"},
	}
	for _, tt := range tests {
		if got := totpCode(secret, tt.unix/totpPeriod); got != tt.want {
			t.Errorf("totpCode(t=%d) = %s, want %s", tt.unix, got, tt.want)
		}
	}
}

func TestMatchTOTP(t *testing.T) {
	secret := []byte("12345678901234567890")
	const now = 1234567890
	step := int64(now / totpPeriod)
	tests := []struct {
		name     string
		code     string
		last     int64
		wantStep int64
		wantOK   bool
	}{
		{"current step", totpCode(secret, step), 0, step, true},
		{"previous step", totpCode(secret, step-1), 0, step - 1, true},
		{"next step", totpCode(secret, step+1), 0, step + 1, true},
		{"two steps old", totpCode(secret, step-2), 0, 0, false},
		{"current step already used", totpCode(secret, step), step, 0, false},
		{"older than the last used", totpCode(secret, step-1), step, 0, false},
		{"wrong", "000000", 0, 0, false},
		{"too short", totpCode(secret, step)[:5], 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotStep, ok := matchTOTP(secret, tt.code, now, tt.last)
			if ok != tt.wantOK || gotStep != tt.wantStep {
				t.Errorf("matchTOTP(%q, last %d) = %d, %v, want %d, %v", tt.code, tt.last, gotStep, ok, tt.wantStep, tt.wantOK)
			}
		})
	}
}

// clock is a settable time for the auth service, so that tests can move
// to the next TOTP step.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// code returns the authenticator code of secret at c's time.
func (c *clock) code(t *testing.T, secret string) string {
	t.Helper()
	b, err := decodeSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	return totpCode(b, c.now().Unix()/totpPeriod)
}

func TestTOTP(t *testing.T) {
	ctx := context.Background()
	e := newMailEnv(t)
	clk := &clock{t: time.Now()}
	e.auth.now = clk.now
	e.enableMFA(t, "")
	alice := e.record(t, "alice")

	if _, err := e.auth.EnrollTOTP(ctx, nil, "users"); underhood.ErrorCode(err) != underhood.EUnauthorized {
		t.Errorf("EnrollTOTP(guest) = %v, want 401", err)
	}
	enrolment, err := e.auth.EnrollTOTP(ctx, alice, "users")
	if err != nil {
		t.Fatalf("EnrollTOTP() = %v", err)
	}
	if len(enrolment.RecoveryCodes) != recoveryCodeCount || len(enrolment.Secret) < 32 {
		t.Errorf("EnrollTOTP() = %d recovery codes, secret %q; want %d codes and a 160-bit secret", len(enrolment.RecoveryCodes), enrolment.Secret, recoveryCodeCount)
	}
	u, err := url.Parse(enrolment.OTPAuthURL)
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" || u.Query().Get("secret") != enrolment.Secret || u.Query().Get("issuer") != "Acme" ||
		!strings.Contains(u.Path, "alice@example.com") {
		t.Errorf("otpauthUrl = %q, want otpauth://totp/Acme:alice@example.com?secret=…&issuer=Acme", enrolment.OTPAuthURL)
	}
	// Stored: the secret (it must be), hashes of the recovery codes only.
	rows, err := e.auth.ownRows(ctx, record.TOTPsName, alice)
	if err != nil || len(rows) != 1 {
		t.Fatalf("_totps rows = %v, %v", rows, err)
	}
	stored := fmt.Sprint(rows[0].Data)
	for _, c := range enrolment.RecoveryCodes {
		if strings.Contains(stored, strings.ReplaceAll(c, "-", "")) || strings.Contains(stored, c) {
			t.Errorf("recovery code %s is stored in the clear", c)
		}
	}

	// Unconfirmed, the app is not a factor: password + OTP suffice.
	mfaID := e.passwordFirst(t, "alice@example.com", "alice-password")
	otpID, otp := e.requestOTP(t, "alice@example.com", 8)
	if res, err := e.auth.AuthWithOTP(ctx, "users", otpID, otp, mfaID); err != nil || res.Token == "" {
		t.Fatalf("password + OTP with an unconfirmed app = %+v, %v, want a token", res, err)
	}

	// Confirming needs a current code.
	if err := e.auth.ConfirmTOTP(ctx, alice, "users", "000000"); underhood.ErrorCode(err) != underhood.EInvalid {
		t.Errorf("ConfirmTOTP(wrong code) = %v, want 400", err)
	}
	if err := e.auth.ConfirmTOTP(ctx, alice, "users", clk.code(t, enrolment.Secret)); err != nil {
		t.Fatalf("ConfirmTOTP() = %v", err)
	}
	if _, err := e.auth.EnrollTOTP(ctx, alice, "users"); underhood.ErrorCode(err) != underhood.EInvalid {
		t.Errorf("EnrollTOTP(confirmed app) = %v, want 400", err)
	}

	// Confirmed, it is required: password + OTP no longer do.
	mfaID = e.passwordFirst(t, "alice@example.com", "alice-password")
	otpID, otp = e.requestOTP(t, "alice@example.com", 8)
	if _, err := e.auth.AuthWithOTP(ctx, "users", otpID, otp, mfaID); describe(err).Message != msgMFANeedsTOTP {
		t.Errorf("password + OTP with a confirmed app = %v, want 400 %q", err, msgMFANeedsTOTP)
	}
	// The code used to confirm cannot be replayed.
	if _, err := e.auth.AuthWithTOTP(ctx, "users", mfaID, clk.code(t, enrolment.Secret)); underhood.ErrorCode(err) != underhood.EInvalid {
		t.Errorf("AuthWithTOTP(the confirming code again) = %v, want 400", err)
	}
	clk.add(totpPeriod * time.Second)
	code := clk.code(t, enrolment.Secret)
	res, err := e.auth.AuthWithTOTP(ctx, "users", mfaID, code)
	if err != nil || res.Token == "" || res.Record.ID() != alice.ID() {
		t.Fatalf("password + TOTP = %+v, %v, want alice's token", res, err)
	}
	// Neither the code nor the session works twice.
	mfaID = e.passwordFirst(t, "alice@example.com", "alice-password")
	if _, err := e.auth.AuthWithTOTP(ctx, "users", mfaID, code); underhood.ErrorCode(err) != underhood.EInvalid {
		t.Errorf("AuthWithTOTP(replayed code) = %v, want 400", err)
	}

	// A TOTP code alone is no login.
	clk.add(totpPeriod * time.Second)
	if _, err := e.auth.AuthWithTOTP(ctx, "users", "", clk.code(t, enrolment.Secret)); underhood.ErrorCode(err) != underhood.EInvalid {
		t.Errorf("AuthWithTOTP(no mfaId) = %v, want 400", err)
	}

	// A recovery code completes a login once.
	recovery := strings.ToUpper(enrolment.RecoveryCodes[3])
	if res, err := e.auth.AuthWithTOTP(ctx, "users", mfaID, recovery); err != nil || res.Token == "" {
		t.Fatalf("password + recovery code = %+v, %v, want a token", res, err)
	}
	mfaID = e.passwordFirst(t, "alice@example.com", "alice-password")
	if _, err := e.auth.AuthWithTOTP(ctx, "users", mfaID, recovery); underhood.ErrorCode(err) != underhood.EInvalid {
		t.Errorf("AuthWithTOTP(used recovery code) = %v, want 400", err)
	}

	// Even where the MFA rule does not select her, alice's app is required.
	e.updateCollection(t, "users", func(c *underhood.Collection) { c.Auth.MFA.Rule = "email = 'nobody'" })
	e.passwordFirst(t, "alice@example.com", "alice-password")
	if res, err := e.auth.AuthWithPassword(ctx, "users", "bob@example.com", "bob-password", "", ""); err != nil || res.Token == "" {
		t.Errorf("bob (no app, rule false) = %+v, %v, want a token", res, err)
	}

	// Disabling takes a code; then password + OTP work again.
	if err := e.auth.DisableTOTP(ctx, alice, "users", "123456"); underhood.ErrorCode(err) != underhood.EInvalid {
		t.Errorf("DisableTOTP(wrong code) = %v, want 400", err)
	}
	if err := e.auth.DisableTOTP(ctx, alice, "users", enrolment.RecoveryCodes[0]); err != nil {
		t.Fatalf("DisableTOTP(recovery code) = %v", err)
	}
	if rows, _ := e.auth.ownRows(ctx, record.TOTPsName, alice); len(rows) != 0 {
		t.Errorf("%d _totps rows after disabling, want 0", len(rows))
	}
	e.updateCollection(t, "users", func(c *underhood.Collection) { c.Auth.MFA.Rule = "" })
	mfaID = e.passwordFirst(t, "alice@example.com", "alice-password")
	otpID, otp = e.requestOTP(t, "alice@example.com", 8)
	if res, err := e.auth.AuthWithOTP(ctx, "users", otpID, otp, mfaID); err != nil || res.Token == "" {
		t.Errorf("password + OTP after disabling the app = %+v, %v, want a token", res, err)
	}
}

// TestTOTPCodeUsedOnce: of concurrent uses of one code, exactly one wins.
func TestTOTPCodeUsedOnce(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	alice := e.record(t, "alice")
	enrolment, err := e.auth.EnrollTOTP(ctx, alice, "users")
	if err != nil {
		t.Fatal(err)
	}
	row, err := e.auth.totpRow(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Now()}
	e.auth.now = clk.now
	code := clk.code(t, enrolment.Secret)
	recovery := enrolment.RecoveryCodes[0]
	for _, try := range []struct {
		name string
		use  func() (bool, error)
	}{
		{"totp code", func() (bool, error) { return e.auth.useTOTPCode(ctx, row, code) }},
		{"recovery code", func() (bool, error) { return e.auth.useRecoveryCode(ctx, row, recovery) }},
	} {
		const n = 8
		var wg sync.WaitGroup
		wins := make(chan bool, n)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := try.use()
				if err != nil {
					t.Errorf("%s: %v", try.name, err)
				}
				wins <- ok
			}()
		}
		wg.Wait()
		close(wins)
		count := 0
		for ok := range wins {
			if ok {
				count++
			}
		}
		if count != 1 {
			t.Errorf("%d concurrent uses of one %s succeeded, want exactly 1", count, try.name)
		}
	}
}

package auth

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/underhood/underhood"
)

func TestPasswordAttemptsPerIdentity(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	clock := time.Now()
	e.auth.now = func() time.Time { return clock }
	attempt := func(identity, password string) error {
		_, err := e.auth.AuthWithPassword(ctx, "users", identity, password, "", "")
		return err
	}
	// Successful logins never count.
	for range 20 {
		if err := attempt("alice@example.com", "alice-password"); err != nil {
			t.Fatalf("AuthWithPassword(alice, right password) = %v", err)
		}
	}
	// Five failures are answered as failures, the sixth attempt with 429,
	// even with the right password, and identities differing in case only
	// share their count.
	for i := range 5 {
		identity := "alice@example.com"
		if i%2 == 1 {
			identity = "Alice@Example.com"
		}
		if err := attempt(identity, "wrong"); underhood.ErrorCode(err) != underhood.EInvalid {
			t.Fatalf("failure %d: AuthWithPassword = %v, want %s", i+1, err, underhood.EInvalid)
		}
	}
	err := attempt("alice@example.com", "alice-password")
	var ue *underhood.Error
	if underhood.ErrorCode(err) != underhood.ETooManyRequests || !errors.As(err, &ue) || ue.RetryAfter <= 0 || ue.RetryAfter > time.Minute {
		t.Fatalf("AuthWithPassword(after 5 failures) = %v, want 429 with a wait of at most 1m", err)
	}
	// Another identity, including an unknown one, is not affected.
	if err := attempt("bob@example.com", "bob-password"); err != nil {
		t.Errorf("AuthWithPassword(bob) = %v, want success", err)
	}
	for range 5 {
		attempt("nobody@example.com", "x")
	}
	if err := attempt("nobody@example.com", "x"); underhood.ErrorCode(err) != underhood.ETooManyRequests {
		t.Errorf("AuthWithPassword(unknown account, 6th try) = %v, want 429 like a known one", err)
	}
	// After the window, alice may try again.
	clock = clock.Add(61 * time.Second)
	if err := attempt("alice@example.com", "alice-password"); err != nil {
		t.Errorf("AuthWithPassword(alice, a minute later) = %v, want success", err)
	}

	// Disabled rate limits disable the per-identity limit too.
	if _, err := e.records.UpdateSettings(ctx, e.records.SystemRequest().Auth, []byte(`{"rateLimits":{"enabled":false}}`)); err != nil {
		t.Fatal(err)
	}
	for range 8 {
		if err := attempt("bob@example.com", "wrong"); underhood.ErrorCode(err) != underhood.EInvalid {
			t.Fatalf("AuthWithPassword(limits off) = %v, want %s", err, underhood.EInvalid)
		}
	}
}

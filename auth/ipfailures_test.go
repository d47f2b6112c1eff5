package auth

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/underhood/underhood"
)

func TestFailedLoginsPerClientAddress(t *testing.T) {
	e := newEnv(t)
	clock := time.Now()
	e.auth.now = func() time.Time { return clock }
	from := func(ip string) context.Context { return WithClientIP(context.Background(), ip) }
	login := func(ip, identity, password string) error {
		_, err := e.auth.AuthWithPassword(from(ip), "users", identity, password, "", "")
		return err
	}
	// Successful logins from one address never count.
	for range 50 {
		if err := login("203.0.113.7", "alice@example.com", "alice-password"); err != nil {
			t.Fatalf("AuthWithPassword(alice, right password) = %v", err)
		}
	}
	// One wrong password on each of 20 accounts: every account stays under
	// its own limit, but the address has used up its failures.
	for i := range 20 {
		if err := login("203.0.113.7", fmt.Sprintf("user%d@example.com", i), "Summer2026!"); underhood.ErrorCode(err) != underhood.EInvalid {
			t.Fatalf("spray %d: AuthWithPassword = %v, want %s", i, err, underhood.EInvalid)
		}
	}
	if err := login("203.0.113.7", "bob@example.com", "Summer2026!"); underhood.ErrorCode(err) != underhood.ETooManyRequests {
		t.Fatalf("AuthWithPassword(21st failure from one address) = %v, want 429", err)
	}
	// Another address is not affected, and the limit ends with its window.
	if err := login("198.51.100.1", "bob@example.com", "bob-password"); err != nil {
		t.Errorf("AuthWithPassword(bob, another address) = %v, want success", err)
	}
	clock = clock.Add(61 * time.Second)
	if err := login("203.0.113.7", "alice@example.com", "alice-password"); err != nil {
		t.Errorf("AuthWithPassword(alice, a minute later) = %v, want success", err)
	}
}

package auth

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
	"golang.org/x/crypto/bcrypt"
)

// fakeMailer records the emails it is asked to send.
type fakeMailer struct {
	mu   sync.Mutex
	sent []sentMail
}

type sentMail struct{ to, subject string }

func (m *fakeMailer) SendTemplate(_ context.Context, to string, tmpl underhood.EmailTemplate, _ *underhood.Record, _ map[string]string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, sentMail{to, tmpl.Subject})
	return nil
}

// count returns how many emails went to to with a subject containing subject.
func (m *fakeMailer) count(to, subject string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, s := range m.sent {
		if strings.EqualFold(s.to, to) && strings.Contains(s.subject, subject) {
			n++
		}
	}
	return n
}

// TestMailsPerRecipient (L5): requests from rotating addresses get one
// mailbox at most two emails of a kind per ten minutes; the requests are
// answered as before, and other kinds and other mailboxes are not held up.
func TestMailsPerRecipient(t *testing.T) {
	e := newEnv(t)
	m := &fakeMailer{}
	e.auth.UseMailer(m)
	e.updateCollection(t, "users", func(c *underhood.Collection) {
		c.Auth.OTP.Enabled = true
		c.Auth.OTP.EmailTemplate.Subject = "OTP for {APP_NAME}"
		c.Auth.ResetPasswordTemplate.Subject = "Reset for {APP_NAME}"
		c.Auth.VerificationTemplate.Subject = "Verify for {APP_NAME}"
		c.Auth.ConfirmEmailChangeTemplate.Subject = "Change for {APP_NAME}"
	})
	e.updateCollection(t, record.OTPsName, func(c *underhood.Collection) { c.Field("password").Cost = bcrypt.MinCost })
	// The emails are sent in the background, which reads the clock.
	var clockMu sync.Mutex
	clock := time.Now()
	e.auth.now = func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return clock }
	advance := func(d time.Duration) { clockMu.Lock(); clock = clock.Add(d); clockMu.Unlock() }
	alice := e.record(t, "alice")
	requests := []struct {
		kind    string
		to      string
		request func(ctx context.Context) error
	}{
		{"Reset", "alice@example.com", func(ctx context.Context) error {
			return e.auth.RequestPasswordReset(ctx, "users", "Alice@example.com")
		}},
		{"Verify", "alice@example.com", func(ctx context.Context) error {
			return e.auth.RequestVerification(ctx, "users", "alice@example.com")
		}},
		{"OTP", "alice@example.com", func(ctx context.Context) error {
			id, err := e.auth.RequestOTP(ctx, "users", "alice@example.com")
			if err == nil && id == "" {
				err = fmt.Errorf("no otp id")
			}
			return err
		}},
		{"Change", "victim@example.net", func(ctx context.Context) error {
			return e.auth.RequestEmailChange(ctx, alice, "users", "victim@example.net")
		}},
	}
	wait := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.auth.waitMail(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, rq := range requests {
		t.Run(rq.kind, func(t *testing.T) {
			// Past the per-identity request limit, which all kinds share.
			advance(61 * time.Second)
			for i := range 5 {
				ctx := WithClientIP(context.Background(), fmt.Sprintf("192.0.2.%d", i))
				if err := rq.request(ctx); err != nil {
					t.Fatalf("request %d = %v, want nil (the same answer past the limit)", i+1, err)
				}
			}
			wait()
			if got := m.count(rq.to, rq.kind); got != 2 {
				t.Errorf("5 %s requests from 5 addresses: %d emails to %s, want 2", rq.kind, got, rq.to)
			}
		})
	}
	// Bob's mailbox has its own count; alice's opens again ten minutes on.
	if err := e.auth.RequestPasswordReset(context.Background(), "users", "bob@example.com"); err != nil {
		t.Fatal(err)
	}
	advance(10*time.Minute + time.Second)
	if err := e.auth.RequestPasswordReset(context.Background(), "users", "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	wait()
	if got := m.count("bob@example.com", "Reset"); got != 1 {
		t.Errorf("bob's reset emails = %d, want 1", got)
	}
	if got := m.count("alice@example.com", "Reset"); got != 3 {
		t.Errorf("alice's reset emails after ten minutes = %d, want 3", got)
	}
}

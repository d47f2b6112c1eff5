package mail_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/underhood/underhood"
	umail "github.com/underhood/underhood/mail"
	"github.com/underhood/underhood/mail/mailpittest"
	"github.com/underhood/underhood/outbound"
	"github.com/underhood/underhood/record"
	"github.com/underhood/underhood/record/recordtest"
	"github.com/underhood/underhood/sqlstore"
	"github.com/underhood/underhood/sqlstore/sqlite"
)

func newRecords(t *testing.T) *record.Service {
	t.Helper()
	return recordtest.Open(t, sqlstore.Config{Dialect: sqlite.Dialect{}, Dir: t.TempDir()}, nil)
}

func updateSettings(t *testing.T, records *record.Service, patch string) {
	t.Helper()
	if _, err := records.UpdateSettings(context.Background(), records.SystemRequest().Auth, []byte(patch)); err != nil {
		t.Fatalf("UpdateSettings(%s) = %v", patch, err)
	}
}

func TestServiceSendTemplate(t *testing.T) {
	ctx := context.Background()
	records := newRecords(t)
	// mailpit listens on loopback, which the operator allows here.
	m := umail.New(records, umail.Options{Allow: loopback})
	users, err := records.Collection("users")
	if err != nil {
		t.Fatal(err)
	}
	rec := &underhood.Record{Collection: users, Data: map[string]any{"id": "u1", "email": "ann@example.com", "name": "Ann"}}
	tmpl := underhood.EmailTemplate{Subject: "Welcome to {APP_NAME}", Body: `<p>Hi {RECORD:name}, <a href="{APP_URL}/confirm/{TOKEN}">confirm</a></p>`}

	// SMTP is off in a fresh install: nothing is sent, and the caller knows.
	if err := m.SendTemplate(ctx, "ann@example.com", tmpl, rec, map[string]string{"TOKEN": "t"}); !errors.Is(err, umail.ErrDisabled) {
		t.Fatalf("SendTemplate(smtp disabled) = %v, want ErrDisabled", err)
	}

	srv := mailpittest.Start(t)
	updateSettings(t, records, fmt.Sprintf(`{"smtp":{"enabled":true,"host":%q,"port":%d},
		"meta":{"appName":"Acme","appURL":"https://acme.test/","senderName":"Acme Support","senderAddress":"support@acme.test"}}`,
		srv.Host, srv.SMTPPort))
	if err := m.SendTemplate(ctx, "ann@example.com", tmpl, rec, map[string]string{"TOKEN": "tok123"}); err != nil {
		t.Fatalf("SendTemplate() = %v", err)
	}
	got := srv.WaitTo(t, "ann@example.com")
	if got.Subject != "Welcome to Acme" {
		t.Errorf("subject = %q, want %q", got.Subject, "Welcome to Acme")
	}
	if got.From.Address != "support@acme.test" || got.From.Name != "Acme Support" {
		t.Errorf("from = %+v, want the sender of the settings", got.From)
	}
	if !strings.Contains(got.HTML, `href="https://acme.test/confirm/tok123"`) || !strings.Contains(got.HTML, "Hi Ann") {
		t.Errorf("html = %q, want the filled-in template", got.HTML)
	}
	if !strings.Contains(got.Text, "confirm (https://acme.test/confirm/tok123)") {
		t.Errorf("text = %q, want the link in plain text", got.Text)
	}

	// A settings change applies to the next email.
	updateSettings(t, records, `{"smtp":{"enabled":true,"host":"127.0.0.1","port":1}}`)
	if err := m.SendTemplate(ctx, "ann@example.com", tmpl, rec, nil); err == nil {
		t.Error("SendTemplate(smtp server on a closed port) = nil, want an error")
	}
}

// TestServiceGuardsTheSettingsServer: the SMTP server a superuser writes in
// the settings is refused on an internal address, unless the operator
// allowed its network.
func TestServiceGuardsTheSettingsServer(t *testing.T) {
	ctx := context.Background()
	records := newRecords(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan struct{}, 8)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			c.Close() // no greeting: the send fails after connecting
		}
	}()
	updateSettings(t, records, fmt.Sprintf(`{"smtp":{"enabled":true,"host":"127.0.0.1","port":%d},
		"meta":{"senderAddress":"support@acme.test"}}`, l.Addr().(*net.TCPAddr).Port))
	msg := &umail.Message{To: []mail.Address{{Address: "ann@example.com"}}, Subject: "x", HTML: "<p>x</p>"}

	if err := umail.New(records, umail.Options{}).Send(ctx, msg); !errors.Is(err, outbound.ErrRefused) || !strings.Contains(err.Error(), "--outbound-allow") {
		t.Errorf("Send(settings server on loopback) = %v, want refused, naming --outbound-allow", err)
	}
	select {
	case <-accepted:
		t.Error("the refused server got a connection")
	default:
	}
	allow := umail.Options{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	if err := umail.New(records, allow).Send(ctx, msg); errors.Is(err, outbound.ErrRefused) {
		t.Errorf("Send(loopback allowed) = %v, want the connection made", err)
	}
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Error("the allowed server got no connection within 5s")
	}
}

// loopback allows the test servers on 127.0.0.1.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

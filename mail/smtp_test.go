package mail_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/mail"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	umail "github.com/underhood/underhood/mail"
	"github.com/underhood/underhood/mail/mailpittest"
	"github.com/underhood/underhood/outbound"
)

// testCert writes a self-signed certificate for 127.0.0.1 and its key to
// dir and returns their paths and a pool that trusts it.
func testCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mailpit test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeFile(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	writeFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// authFile writes a mailpit password file (htpasswd, bcrypt) for user.
func authFile(t *testing.T, dir, user, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "smtp-users")
	writeFile(t, p, []byte(user+":"+string(h)+"\n"))
	return p
}

func TestSendThroughRealSMTP(t *testing.T) {
	if mailpittest.Binary() == "" {
		t.Skipf("mailpit not installed: %s", mailpittest.InstallHint)
	}
	dir := t.TempDir()
	certFile, keyFile, pool := testCert(t, dir)
	users := authFile(t, dir, "mailer", "s3cret-pass")

	tests := []struct {
		name     string
		args     []string     // mailpit flags
		cfg      umail.Config // Host, Port filled in
		wantErr  string       // "" = delivered
		wantUser string
	}{
		{name: "plain, no auth"},
		{
			name: "starttls required by the server",
			args: []string{"--smtp-tls-cert", certFile, "--smtp-tls-key", keyFile, "--smtp-require-starttls"},
			cfg:  umail.Config{RootCAs: pool},
		},
		{
			name: "implicit tls",
			args: []string{"--smtp-tls-cert", certFile, "--smtp-tls-key", keyFile, "--smtp-require-tls"},
			cfg:  umail.Config{TLS: true, RootCAs: pool},
		},
		{
			name:    "starttls with an untrusted certificate",
			args:    []string{"--smtp-tls-cert", certFile, "--smtp-tls-key", keyFile, "--smtp-require-starttls"},
			wantErr: "certificate",
		},
		{
			// mailpit requires AUTH when it has users; it records the user
			// of LOGIN only.
			name: "auth plain over starttls",
			args: []string{"--smtp-tls-cert", certFile, "--smtp-tls-key", keyFile, "--smtp-auth-file", users},
			cfg:  umail.Config{RootCAs: pool, Username: "mailer", Password: "s3cret-pass", AuthMethod: "PLAIN"},
		},
		{
			name:     "auth login over starttls",
			args:     []string{"--smtp-tls-cert", certFile, "--smtp-tls-key", keyFile, "--smtp-auth-file", users},
			cfg:      umail.Config{RootCAs: pool, Username: "mailer", Password: "s3cret-pass", AuthMethod: "LOGIN"},
			wantUser: "mailer",
		},
		{
			name: "auth plain without tls to loopback",
			args: []string{"--smtp-auth-file", users, "--smtp-auth-allow-insecure"},
			cfg:  umail.Config{Username: "mailer", Password: "s3cret-pass"},
		},
		{
			name:    "no credentials for a server that wants them",
			args:    []string{"--smtp-tls-cert", certFile, "--smtp-tls-key", keyFile, "--smtp-auth-file", users},
			cfg:     umail.Config{RootCAs: pool},
			wantErr: "auth",
		},
		{
			name:    "wrong password",
			args:    []string{"--smtp-tls-cert", certFile, "--smtp-tls-key", keyFile, "--smtp-auth-file", users},
			cfg:     umail.Config{RootCAs: pool, Username: "mailer", Password: "wrong"},
			wantErr: "auth",
		},
		{
			name:    "unknown auth method",
			args:    []string{"--smtp-tls-cert", certFile, "--smtp-tls-key", keyFile, "--smtp-auth-file", users},
			cfg:     umail.Config{RootCAs: pool, Username: "mailer", Password: "s3cret-pass", AuthMethod: "CRAM-MD5"},
			wantErr: "unsupported auth method",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mailpittest.Start(t, tt.args...)
			cfg := tt.cfg
			cfg.Host, cfg.Port, cfg.Allow = srv.Host, srv.SMTPPort, loopback
			msg := &umail.Message{
				From:    mail.Address{Name: "Acme Support", Address: "support@acme.test"},
				To:      []mail.Address{{Address: "carol@example.com"}},
				Subject: "Grüße from " + tt.name,
				HTML:    `<p>Hello,</p><p>Use <a href="https://acme.test/reset?t=abc&amp;x=1">this link</a>.</p>`,
			}
			err := umail.Send(context.Background(), cfg, msg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(strings.ToLower(err.Error()), tt.wantErr) {
					t.Fatalf("Send() = %v, want an error about %q", err, tt.wantErr)
				}
				if n := len(srv.Messages(t)); n != 0 {
					t.Errorf("mailpit received %d messages after a failed send, want 0", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("Send() = %v", err)
			}
			got := srv.WaitTo(t, "carol@example.com")
			if got.Subject != msg.Subject {
				t.Errorf("subject = %q, want %q", got.Subject, msg.Subject)
			}
			if got.From.Address != "support@acme.test" || got.From.Name != "Acme Support" {
				t.Errorf("from = %+v, want Acme Support <support@acme.test>", got.From)
			}
			if !strings.Contains(got.HTML, `href="https://acme.test/reset?t=abc&amp;x=1"`) {
				t.Errorf("html = %q, want the link", got.HTML)
			}
			if !strings.Contains(got.Text, "this link (https://acme.test/reset?t=abc&x=1)") {
				t.Errorf("text = %q, want the link's text and address", got.Text)
			}
			if got.Username != tt.wantUser {
				t.Errorf("smtp auth user = %q, want %q", got.Username, tt.wantUser)
			}
		})
	}
}

func TestSendTimesOut(t *testing.T) {
	// A server that accepts the connection but never greets.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	msg := &umail.Message{From: mail.Address{Address: "a@acme.test"}, To: []mail.Address{{Address: "b@acme.test"}}, HTML: "<p>x</p>"}
	start := time.Now()
	err = umail.Send(context.Background(), umail.Config{Host: "127.0.0.1", Port: port, Allow: loopback, Timeout: 300 * time.Millisecond}, msg)
	if err == nil {
		t.Fatal("Send(silent server) = nil, want a timeout")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Send(silent server) took %s, want about the 300ms timeout", d)
	}
}

// TestSendRefusesInternalAddresses: the SMTP server of the settings is
// reached through the outbound guard, so a superuser cannot point the
// mailer at the cloud metadata endpoint or a service on the server's own
// network; an operator's allow list (--outbound-allow) lets one through.
func TestSendRefusesInternalAddresses(t *testing.T) {
	// A server that counts connections and never greets.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			defer c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	msg := &umail.Message{From: mail.Address{Address: "a@acme.test"}, To: []mail.Address{{Address: "b@acme.test"}}, HTML: "<p>x</p>"}
	tests := []struct {
		name       string
		host       string
		port       int
		allow      []netip.Prefix
		wantReason string // "" when the connection must be made
	}{
		{"cloud metadata", "169.254.169.254", 25, nil, "cloud metadata"},
		{"loopback", "127.0.0.1", port, nil, "loopback"},
		{"loopback by name", "localhost", port, nil, "loopback"},
		{"private", "10.1.2.3", 25, nil, "private"},
		{"metadata not covered by a wide allow", "169.254.169.254", 25, []netip.Prefix{netip.MustParsePrefix("169.254.0.0/16")}, "cloud metadata"},
		{"loopback allowed", "127.0.0.1", port, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := accepted.Load()
			cfg := umail.Config{Host: tt.host, Port: tt.port, Allow: tt.allow, Timeout: 300 * time.Millisecond}
			err := umail.Send(context.Background(), cfg, msg)
			if tt.wantReason == "" {
				if errors.Is(err, outbound.ErrRefused) {
					t.Fatalf("Send(%s, allowed) = %v, want the connection made", tt.host, err)
				}
				waitFor(t, func() bool { return accepted.Load() > before })
				return
			}
			if !errors.Is(err, outbound.ErrRefused) || !strings.Contains(err.Error(), tt.wantReason) {
				t.Fatalf("Send(%s:%d) = %v, want refused as %s", tt.host, tt.port, err, tt.wantReason)
			}
			if n := accepted.Load() - before; n != 0 {
				t.Errorf("Send(%s:%d) refused, but the server got %d connections", tt.host, tt.port, n)
			}
		})
	}
}

// waitFor polls cond for up to 5 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

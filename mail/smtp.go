// Package mail sends the application's email over SMTP. The server, its
// credentials and the sender come from the settings (record.Settings: smtp
// and meta); subjects and bodies come from a collection's email templates,
// whose placeholders ({APP_NAME}, {APP_URL}, {TOKEN}, {OTP},
// {RECORD:field}, …) are filled in here. Every message carries an HTML
// body and a plain-text one derived from it.
package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/smtp"
	"strconv"
	"strings"
	"time"

	"github.com/underhood/underhood/outbound"
)

// Config says how to reach an SMTP server.
type Config struct {
	Host string
	Port int
	// Username and Password authenticate with AuthMethod ("PLAIN", the
	// default, or "LOGIN") when Username is set. Credentials are only ever
	// sent over TLS, or to a server on the loopback interface.
	Username, Password string
	AuthMethod         string
	// TLS connects with TLS from the first byte (usually port 465).
	// Otherwise the connection is upgraded with STARTTLS when the server
	// offers it.
	TLS bool
	// LocalName is the name sent with EHLO; "localhost" when empty.
	LocalName string
	// RootCAs verify the server's certificate; nil means the system's.
	RootCAs *x509.CertPool
	// Timeout bounds the whole exchange when ctx has no earlier deadline;
	// 30 seconds when zero.
	Timeout time.Duration
	// Allow lists networks the server may be reached on although the
	// outbound guard refuses them (loopback, private, link-local, …): the
	// operator's --outbound-allow. The host comes from the settings, which
	// a superuser writes, so nothing internal is reached otherwise.
	Allow []netip.Prefix
}

const defaultTimeout = 30 * time.Second

// Send delivers msg through the SMTP server of cfg. It returns once the
// server has accepted the message for every recipient.
func Send(ctx context.Context, cfg Config, msg *Message) error {
	body, err := msg.Bytes()
	if err != nil {
		return err
	}
	if cfg.Host == "" || cfg.Port <= 0 || cfg.Port > 65535 {
		return fmt.Errorf("smtp: invalid server address %q port %d", cfg.Host, cfg.Port)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	conn, err := outbound.NewDialer(cfg.Allow).DialContext(ctx, "tcp", addr)
	if errors.Is(err, outbound.ErrRefused) {
		return fmt.Errorf("smtp: server %s: %w; an operator can allow its network with --outbound-allow", addr, err)
	}
	if err != nil {
		return fmt.Errorf("smtp: dial %s: %w", addr, err)
	}
	defer conn.Close()
	// net/smtp takes no context: the deadline bounds every read and write,
	// and closing the connection when ctx ends interrupts them.
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	tlsConfig := &tls.Config{ServerName: cfg.Host, RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
	if cfg.TLS {
		tc := tls.Client(conn, tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("smtp: tls handshake with %s: %w", addr, err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, cfg.Host)
	if err != nil {
		return fmt.Errorf("smtp: greeting from %s: %w", addr, ctxErr(ctx, err))
	}
	defer c.Close()
	localName := cfg.LocalName
	if localName == "" {
		localName = "localhost"
	}
	if err := c.Hello(localName); err != nil {
		return fmt.Errorf("smtp: hello: %w", ctxErr(ctx, err))
	}
	if !cfg.TLS {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(tlsConfig); err != nil {
				return fmt.Errorf("smtp: starttls: %w", ctxErr(ctx, err))
			}
		}
	}
	if cfg.Username != "" {
		auth, err := authFor(cfg)
		if err != nil {
			return err
		}
		if err := c.Auth(auth); err != nil {
			return fmt.Errorf("smtp: auth: %w", ctxErr(ctx, err))
		}
	}
	if err := c.Mail(msg.From.Address); err != nil {
		return fmt.Errorf("smtp: mail from: %w", ctxErr(ctx, err))
	}
	for _, to := range msg.To {
		if err := c.Rcpt(to.Address); err != nil {
			return fmt.Errorf("smtp: rcpt to: %w", ctxErr(ctx, err))
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp: data: %w", ctxErr(ctx, err))
	}
	if _, err := w.Write(body); err != nil {
		w.Close()
		return fmt.Errorf("smtp: write message: %w", ctxErr(ctx, err))
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp: message refused: %w", ctxErr(ctx, err))
	}
	// The message is accepted; a failing QUIT changes nothing about that.
	_ = c.Quit()
	return nil
}

// ctxErr prefers ctx's error to the network error it caused.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

func authFor(cfg Config) (smtp.Auth, error) {
	switch strings.ToUpper(strings.TrimSpace(cfg.AuthMethod)) {
	case "", "PLAIN":
		// net/smtp's PLAIN refuses to send the password in the clear to
		// anything but localhost.
		return smtp.PlainAuth("", cfg.Username, cfg.Password, cfg.Host), nil
	case "LOGIN":
		return &loginAuth{username: cfg.Username, password: cfg.Password, host: cfg.Host}, nil
	}
	return nil, fmt.Errorf("smtp: unsupported auth method %q", cfg.AuthMethod)
}

// loginAuth is the LOGIN mechanism (draft-murchison-sasl-login), which
// some servers offer instead of PLAIN. Like net/smtp's PLAIN it refuses to
// send credentials unencrypted except to the loopback interface.
type loginAuth struct {
	username, password, host string
}

func (a *loginAuth) Start(server *smtp.ServerInfo) (string, []byte, error) {
	if !server.TLS && !isLoopback(server.Name) {
		return "", nil, errors.New("unencrypted connection")
	}
	if server.Name != a.host {
		return "", nil, errors.New("wrong host name")
	}
	return "LOGIN", nil, nil
}

func (a *loginAuth) Next(fromServer []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	switch strings.ToLower(strings.TrimSpace(string(fromServer))) {
	case "username:":
		return []byte(a.username), nil
	case "password:":
		return []byte(a.password), nil
	}
	return nil, fmt.Errorf("unexpected LOGIN challenge %q", fromServer)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

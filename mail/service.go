package mail

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"net/netip"
	"strings"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
)

// ErrDisabled is returned when the settings do not enable SMTP.
var ErrDisabled = errors.New("mail: smtp is not enabled in the settings")

// Service sends email with the current settings: the SMTP server of
// settings.smtp and the sender of settings.meta, read at each send, so a
// settings change applies to the next email.
type Service struct {
	records *record.Service
	opts    Options
}

// Options configure a Service. The zero value is the safe default.
type Options struct {
	// Allow lists the internal networks (loopback, private, …) the SMTP
	// server of the settings may be on: the operator's --outbound-allow.
	// Any other internal address is refused (see Config.Allow).
	Allow []netip.Prefix
}

// New returns the mail service of the application whose settings records
// holds.
func New(records *record.Service, opts Options) *Service {
	return &Service{records: records, opts: opts}
}

// Send delivers msg through the configured SMTP server. A msg without a
// sender gets the one of the settings.
func (s *Service) Send(ctx context.Context, msg *Message) error {
	st := s.records.Settings()
	if !st.SMTP.Enabled {
		return ErrDisabled
	}
	if msg.From.Address == "" {
		from, err := sender(st.Meta)
		if err != nil {
			return err
		}
		msg.From = from
	}
	cfg := ConfigOf(st.SMTP)
	cfg.Allow = s.opts.Allow
	return Send(ctx, cfg, msg)
}

// SendTemplate renders tmpl for rec (see Render) with the settings' app
// name and URL as {APP_NAME} and {APP_URL} besides vars, and sends it to
// the address to.
func (s *Service) SendTemplate(ctx context.Context, to string, tmpl underhood.EmailTemplate, rec *underhood.Record, vars map[string]string) error {
	meta := s.records.Settings().Meta
	all := map[string]string{
		"APP_NAME": meta.AppName,
		"APP_URL":  strings.TrimRight(meta.AppURL, "/"),
	}
	for k, v := range vars {
		all[k] = v
	}
	subject, body := Render(tmpl, rec, all)
	return s.Send(ctx, &Message{To: []mail.Address{{Address: to}}, Subject: subject, HTML: body})
}

// ConfigOf returns the SMTP configuration of the settings.
func ConfigOf(st record.SMTPSettings) Config {
	return Config{
		Host:       st.Host,
		Port:       st.Port,
		Username:   st.Username,
		Password:   st.Password,
		AuthMethod: st.AuthMethod,
		TLS:        st.TLS,
		LocalName:  st.LocalName,
	}
}

// sender is the From address of the settings.
func sender(meta record.MetaSettings) (mail.Address, error) {
	if meta.SenderAddress == "" {
		return mail.Address{}, errors.New("mail: no sender address in the settings (meta.senderAddress)")
	}
	a := mail.Address{Name: meta.SenderName, Address: meta.SenderAddress}
	if err := checkAddress(a); err != nil {
		return mail.Address{}, fmt.Errorf("mail: sender: %w", err)
	}
	return a, nil
}

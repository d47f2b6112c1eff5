package mail

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"time"
)

// Message is one email.
type Message struct {
	From    mail.Address
	To      []mail.Address
	Subject string
	HTML    string
	// Text is the plain-text body; when empty it is derived from HTML.
	Text string
	// Date is the Date header; the current time when zero.
	Date time.Time
}

// Bytes returns msg in the Internet Message Format: headers, then a
// multipart/alternative body with a text/plain and a text/html part, both
// UTF-8 and quoted-printable. Addresses and the subject are checked and
// encoded, so nothing a user typed can add a header.
func (msg *Message) Bytes() ([]byte, error) {
	if err := checkAddress(msg.From); err != nil {
		return nil, fmt.Errorf("mail: from: %w", err)
	}
	if len(msg.To) == 0 {
		return nil, errors.New("mail: no recipient")
	}
	to := make([]string, len(msg.To))
	for i, a := range msg.To {
		if err := checkAddress(a); err != nil {
			return nil, fmt.Errorf("mail: to: %w", err)
		}
		to[i] = a.String()
	}
	date := msg.Date
	if date.IsZero() {
		date = time.Now()
	}
	text := msg.Text
	if text == "" {
		text = HTMLToText(msg.HTML)
	}
	boundary := randomHex(16)

	var b bytes.Buffer
	header := func(name, value string) { b.WriteString(name + ": " + value + "\r\n") }
	header("From", msg.From.String())
	header("To", strings.Join(to, ", "))
	header("Subject", mime.QEncoding.Encode("utf-8", oneLine(msg.Subject)))
	header("Date", date.Format(time.RFC1123Z))
	header("Message-ID", "<"+randomHex(16)+"@"+domainOf(msg.From.Address)+">")
	header("MIME-Version", "1.0")
	header("Content-Type", `multipart/alternative; boundary="`+boundary+`"`)
	b.WriteString("\r\n")
	for _, part := range []struct{ typ, body string }{{"text/plain", text}, {"text/html", msg.HTML}} {
		b.WriteString("--" + boundary + "\r\n")
		header("Content-Type", part.typ+"; charset=UTF-8")
		header("Content-Transfer-Encoding", "quoted-printable")
		b.WriteString("\r\n")
		w := quotedprintable.NewWriter(&b)
		if _, err := w.Write([]byte(toCRLF(part.body))); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		b.WriteString("\r\n")
	}
	b.WriteString("--" + boundary + "--\r\n")
	return b.Bytes(), nil
}

// checkAddress refuses an address that is not a plain addr-spec or that
// carries line breaks.
func checkAddress(a mail.Address) error {
	if strings.ContainsAny(a.Address+a.Name, "\r\n") {
		return errors.New("line break in address")
	}
	parsed, err := mail.ParseAddress(a.Address)
	if err != nil || parsed.Address != a.Address {
		return fmt.Errorf("invalid address %q", a.Address)
	}
	return nil
}

// oneLine replaces line breaks with spaces.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.NewReplacer("\r", " ", "\n", " ").Replace(s)), " ")
}

// toCRLF normalises line ends to CRLF, as SMTP wants them.
func toCRLF(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.ReplaceAll(s, "\n", "\r\n")
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 && i < len(addr)-1 {
		return addr[i+1:]
	}
	return "localhost"
}

func randomHex(n int) string {
	b := make([]byte, n)
	// rand.Read never fails on supported platforms (Go 1.24+ panics instead).
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

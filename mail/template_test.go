package mail

import (
	"net/mail"
	"strings"
	"testing"

	"github.com/underhood/underhood"
)

func TestRender(t *testing.T) {
	users := &underhood.Collection{ID: "_pb_users_auth_", Name: "users", Type: underhood.TypeAuth, Fields: []*underhood.Field{
		{Name: "id", Type: underhood.FieldText},
		{Name: "email", Type: underhood.FieldEmail},
		{Name: "name", Type: underhood.FieldText},
		{Name: "age", Type: underhood.FieldNumber},
		{Name: "password", Type: underhood.FieldPassword},
		{Name: "tokenKey", Type: underhood.FieldText},
	}}
	rec := &underhood.Record{Collection: users, Data: map[string]any{
		"id": "u1", "email": "ann@example.com", "name": `Ann <b>"{TOKEN}"</b>`, "age": float64(41),
		"password": "$2a$10$hash", "tokenKey": "secret-key",
	}}
	vars := map[string]string{"APP_NAME": "Acme & Co", "APP_URL": "https://acme.test", "TOKEN": "tok.en.value"}
	tests := []struct {
		name                  string
		tmpl                  underhood.EmailTemplate
		wantSubject, wantBody string
	}{
		{"app placeholders",
			underhood.EmailTemplate{Subject: "Verify your {APP_NAME} email", Body: `<a href="{APP_URL}/v/{TOKEN}">{APP_NAME}</a>`},
			"Verify your Acme & Co email", `<a href="https://acme.test/v/tok.en.value">Acme &amp; Co</a>`},
		{"record fields are escaped in the body only",
			underhood.EmailTemplate{Subject: "Hi {RECORD:name}", Body: "<p>Hi {RECORD:name}, {RECORD:age}, {RECORD:id}, {RECORD:collectionName}</p>"},
			`Hi Ann <b>"{TOKEN}"</b>`, `<p>Hi Ann &lt;b&gt;&#34;{TOKEN}&#34;&lt;/b&gt;, 41, u1, users</p>`},
		{"secrets and unknown placeholders stay as they are",
			underhood.EmailTemplate{Subject: "{OTP}", Body: "{RECORD:password} {RECORD:tokenKey} {RECORD:missing} {lower}"},
			"{OTP}", "{RECORD:password} {RECORD:tokenKey} {RECORD:missing} {lower}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			subject, body := Render(tt.tmpl, rec, vars)
			if subject != tt.wantSubject {
				t.Errorf("Render() subject = %q, want %q", subject, tt.wantSubject)
			}
			if body != tt.wantBody {
				t.Errorf("Render() body = %q, want %q", body, tt.wantBody)
			}
		})
	}
}

func TestHTMLToText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"<p>Hello,</p>\n<p>Your code is: <strong>12345678</strong></p>", "Hello,\n\nYour code is: 12345678"},
		{`<p>Click <a class="btn" href="https://x.test/?a=1&amp;b=2" target="_blank">Verify</a></p>`, "Click Verify (https://x.test/?a=1&b=2)"},
		{"<p>\n  Thanks,<br/>\n  Acme team\n</p>", "Thanks,\nAcme team"},
		{"<style>p { color: red }</style><p>a &lt; b &amp;&amp; c</p>", "a < b && c"},
		{"<ul><li>one</li><li>two</li></ul>", "- one\n- two"},
		{`<a title="x > y" href='https://q.test'>q</a>`, "q (https://q.test)"},
		{"no tags at all", "no tags at all"},
		{"broken <p", "broken <p"},
	}
	for _, tt := range tests {
		if got := HTMLToText(tt.in); got != tt.want {
			t.Errorf("HTMLToText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMessageBytes(t *testing.T) {
	from := mail.Address{Name: "Acme", Address: "support@acme.test"}
	t.Run("headers cannot be injected through the subject", func(t *testing.T) {
		msg := &Message{From: from, To: []mail.Address{{Address: "ann@example.com"}}, Subject: "Hi\r\nBcc: evil@x.test", HTML: "<p>x</p>"}
		b, err := msg.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "\r\nBcc:") {
			t.Errorf("message has an injected Bcc header:\n%s", b)
		}
	})
	for _, bad := range []mail.Address{
		{Address: "ann@example.com\r\nBcc: evil@x.test"},
		{Address: "not an address"},
		{Name: "Ann\r\nBcc: evil@x.test", Address: "ann@example.com"},
	} {
		msg := &Message{From: from, To: []mail.Address{bad}, HTML: "<p>x</p>"}
		if _, err := msg.Bytes(); err == nil {
			t.Errorf("Bytes() with recipient %q = nil error, want a refusal", bad.String())
		}
	}
	if _, err := (&Message{From: from, HTML: "x"}).Bytes(); err == nil {
		t.Error("Bytes() without recipients = nil error, want one")
	}
}

package mail

import (
	"net/smtp"
	"testing"
)

func TestAuthRefusesCredentialsInTheClear(t *testing.T) {
	for _, method := range []string{"PLAIN", "LOGIN"} {
		auth, err := authFor(Config{Host: "smtp.example.com", Username: "u", Password: "p", AuthMethod: method})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := auth.Start(&smtp.ServerInfo{Name: "smtp.example.com", TLS: false, Auth: []string{"PLAIN", "LOGIN"}}); err == nil {
			t.Errorf("%s auth over an unencrypted remote connection started, want a refusal", method)
		}
		if _, _, err := auth.Start(&smtp.ServerInfo{Name: "smtp.example.com", TLS: true, Auth: []string{"PLAIN", "LOGIN"}}); err != nil {
			t.Errorf("%s auth over TLS = %v, want it to start", method, err)
		}
	}
}

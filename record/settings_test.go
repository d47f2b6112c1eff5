package record_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/underhood/underhood"
)

// TestSettingsAcceptedAreHonoured: a setting is either kept (and acted
// on: superuserIPs, see server.TestSuperuserIPs) or refused with a 400
// that names it; nothing is accepted and silently dropped. Unknown keys
// are refused, and so are changes to the settings of request logs and
// backups, which do not exist yet.
func TestSettingsAcceptedAreHonoured(t *testing.T) {
	tests := []struct {
		name    string
		patch   string
		message string // "" for success
		data    string // a part of the 400's data
		stored  string // a part of the settings after success
	}{
		{"superuserIPs kept", `{"superuserIPs":["10.0.0.0/8","192.0.2.1","2001:db8::/32"]}`, "", "",
			`"superuserIPs":["10.0.0.0/8","192.0.2.1","2001:db8::/32"]`},
		{"superuserIPs invalid", `{"superuserIPs":["10.0.0.0/8","intranet"]}`, "An error occurred while submitting the form.",
			`"superuserIPs":{"1":{"code":"validation_invalid_ip","message":"\"intranet\" is not an IP address or a network in CIDR notation."}}`, ""},
		{"unknown top-level key", `{"bogus":1,"meta":{"appName":"Blog"}}`, "Unknown settings: bogus.",
			`"bogus":{"code":"validation_unknown_setting"`, ""},
		{"unknown keys in sections", `{"meta":{"appName":"Blog","colour":"red"},"rateLimits":{"rules":[{"label":"/api/","duration":1,"maxRequests":1,"burst":2}]}}`,
			"Unknown settings: meta.colour, rateLimits.rules.0.burst.", `"meta.colour":`, ""},
		{"logs changed", `{"logs":{"maxDays":7}}`, "Request logs are not available yet. Their settings keep their defaults.",
			`"logs":{"maxDays":{"code":"validation_not_available","message":"Request logs are not available yet."}}`, ""},
		{"backups changed", `{"backups":{"cron":"0 0 * * *","s3":{"enabled":true}}}`, "Backups are not available yet. Their settings keep their defaults.",
			`"backups":{"cron":{"code":"validation_not_available","message":"Backups are not available yet."},"s3":`, ""},
		{"logs and backups at their defaults", `{"logs":{"maxDays":5,"minLevel":0,"logIP":true,"logAuthId":false},"backups":{"cron":"","cronMaxKeep":3}}`, "", "",
			`"logs":{"maxDays":5,`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := newService(t)
			su := s.SystemRequest().Auth
			before, _ := json.Marshal(s.Settings())
			_, err := s.UpdateSettings(ctx, su, []byte(tt.patch))
			after, _ := json.Marshal(s.Settings())
			if tt.message == "" {
				if err != nil {
					t.Fatalf("UpdateSettings(%s) = %v, want success", tt.patch, err)
				}
				if !strings.Contains(string(after), tt.stored) {
					t.Errorf("settings after UpdateSettings(%s) = %s, want them to hold %s", tt.patch, after, tt.stored)
				}
				return
			}
			var ue *underhood.Error
			if !asError(err, &ue) || ue.Code != underhood.EInvalid || ue.Message != tt.message {
				t.Fatalf("UpdateSettings(%s) = %v, want 400 %q", tt.patch, err, tt.message)
			}
			if data, _ := json.Marshal(ue.Data); !strings.Contains(string(data), tt.data) {
				t.Errorf("UpdateSettings(%s) data = %s, want it to hold %s", tt.patch, data, tt.data)
			}
			if string(after) != string(before) {
				t.Errorf("a refused update changed the settings:\n%s\nto\n%s", before, after)
			}
		})
	}
}

// TestSettingsSentBackWhole: the whole settings a client read, sent back
// as they are (what the dashboard does), are accepted.
func TestSettingsSentBackWhole(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	su := s.SystemRequest().Auth
	st, err := s.PublicSettings(su)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(st)
	if _, err := s.UpdateSettings(ctx, su, b); err != nil {
		t.Errorf("UpdateSettings(the settings as read) = %v, want success", err)
	}
}

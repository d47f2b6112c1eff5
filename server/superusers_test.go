package server_test

import (
	"testing"

	"github.com/underhood/underhood/record"
	"github.com/underhood/underhood/server"
)

// TestSuperuserIPs: with superuserIPs set, a superuser's token or a
// superuser sign-in from another address is refused with 403; the client
// address is resolved with the trusted proxy settings; other callers and
// an empty list are not affected.
func TestSuperuserIPs(t *testing.T) {
	refused := `{"status":403,"message":"Superusers cannot use the API from this address: it is not in the superuserIPs setting.","data":{}}`
	login := "/api/collections/_superusers/auth-with-password"
	tests := []struct {
		name    string
		list    []string
		proxy   []string // trusted proxy headers
		from    string   // X-Forwarded-For
		method  string
		path    string
		token   string
		status  int
		refused bool
	}{
		{"empty list admits all", nil, nil, "", "GET", "/api/settings", "root-token", 200, false},
		{"superuser token from outside", []string{"10.0.0.0/8"}, nil, "", "GET", "/api/settings", "root-token", 403, true},
		{"superuser login from outside", []string{"10.0.0.0/8"}, nil, "", "POST", login, "", 403, true},
		{"superuser login by collection id", []string{"10.0.0.0/8"}, nil, "", "POST", "/api/collections/pbc_3142635823/auth-with-password", "", 403, true},
		{"loopback listed", []string{"127.0.0.1"}, nil, "", "GET", "/api/settings", "root-token", 200, false},
		{"forwarded address inside the list", []string{"10.0.0.0/8"}, []string{"X-Forwarded-For"}, "10.1.2.3", "GET", "/api/settings", "root-token", 200, false},
		{"forwarded address outside the list", []string{"10.0.0.0/8"}, []string{"X-Forwarded-For"}, "192.0.2.1", "POST", login, "", 403, true},
		{"forwarded header not trusted", []string{"10.0.0.0/8"}, nil, "10.1.2.3", "GET", "/api/settings", "root-token", 403, true},
		{"user from outside", []string{"10.0.0.0/8"}, nil, "", "GET", "/api/settings", "alice-token", 200, false},
		{"guest from outside", []string{"10.0.0.0/8"}, nil, "", "GET", "/api/collections/users/records", "", 200, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := *record.DefaultSettings()
			st.SuperuserIPs = tt.list
			st.TrustedProxy.Headers = tt.proxy
			ts := newServer(t, server.Deps{Settings: &settingsSource{st: st}})
			h := map[string]string{}
			if tt.token != "" {
				h["Authorization"] = tt.token
			}
			if tt.from != "" {
				h["X-Forwarded-For"] = tt.from
			}
			res, body := ts.do(t, tt.method, tt.path, h, nil)
			if res.StatusCode != tt.status || (body == refused) != tt.refused {
				t.Errorf("%s %s = %d %s, want %d (refused %v)", tt.method, tt.path, res.StatusCode, body, tt.status, tt.refused)
			}
		})
	}
}

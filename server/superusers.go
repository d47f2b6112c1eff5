package server

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
)

// guardSuperusers applies the superuserIPs setting: when it lists
// addresses or networks, a request from any other client address (as the
// trusted proxy settings resolve it) that carries a superuser's token, or
// that goes to the superusers' collection (where they sign in), is refused
// with 403. An empty list admits every address, so the setting can never
// lock the superusers out by being left unset.
func guardSuperusers(src SettingsSource) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if src == nil {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			st := src.Settings()
			if len(st.SuperuserIPs) == 0 || !(underhood.Identity(r.Context()).IsSuperuser() || superusersPath(r.URL.Path)) {
				next.ServeHTTP(w, r)
				return
			}
			addr, ok := clientAddr(r, st.TrustedProxy)
			if ok && record.AddressIn(addr, st.SuperuserIPs) {
				next.ServeHTTP(w, r)
				return
			}
			writeError(w, http.StatusForbidden, "Superusers cannot use the API from this address: it is not in the superuserIPs setting.")
		})
	}
}

// superusersPath reports whether path is under the superusers'
// collection, by name or id.
func superusersPath(path string) bool {
	rest, ok := strings.CutPrefix(path, "/api/collections/")
	if !ok {
		return false
	}
	name, _, _ := strings.Cut(rest, "/")
	return name == underhood.SuperusersName || name == underhood.SuperusersID
}

// clientAddr returns the client's address: the peer of the connection,
// or, only when the settings name trusted proxy headers, the address the
// proxy reports in the first of them that is set.
func clientAddr(r *http.Request, proxy record.TrustedProxySettings) (netip.Addr, bool) {
	for _, h := range proxy.Headers {
		v := r.Header.Get(h)
		if v == "" {
			continue
		}
		parts := strings.Split(v, ",")
		pick := parts[len(parts)-1]
		if proxy.UseLeftmostIP {
			pick = parts[0]
		}
		if addr, err := netip.ParseAddr(strings.TrimSpace(pick)); err == nil {
			return addr.Unmap(), true
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return addr.Unmap(), true
}

// Package outbound is the HTTP client for every request the server makes
// to an address it does not control: OAuth2 providers (token, user info,
// keys, discovery), avatars, and webhooks. Such an address comes from
// configuration or from a user, so it may point back into the server's own
// network (server-side request forgery).
//
// The client checks every IP address it is about to connect to, after DNS
// resolution and at the moment of dialing, and refuses loopback, private,
// link-local, unspecified, multicast, shared (CGNAT) and reserved
// addresses, and the cloud metadata endpoints. Because the check runs at
// dial time it holds for every redirect hop and for every address a name
// resolves to, and a DNS answer that changes between a check and the
// connection (DNS rebinding) cannot get around it. Networks listed in
// Options.Allow are reachable all the same; tests use that for servers on
// loopback, and operators for an identity provider inside their network.
//
// Usage:
//
//	client := outbound.New(outbound.Options{})
//	resp, err := client.Get(url) // err wraps ErrRefused for a refused address
//	body, err := io.ReadAll(resp.Body) // err wraps ErrBodyTooLarge past the cap
package outbound

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// Defaults of Options.
const (
	DefaultTimeout      = 30 * time.Second
	DefaultDialTimeout  = 10 * time.Second
	DefaultMaxRedirects = 5
	DefaultMaxBodySize  = 10 << 20 // 10 MiB
)

// Options configure a client made by New. The zero value is the safe
// default.
type Options struct {
	// Allow lists networks that may be reached although they would be
	// refused, such as 127.0.0.1/32 for a test server on loopback. A cloud
	// metadata address stays refused unless a prefix names exactly it.
	Allow []netip.Prefix
	// Timeout bounds a whole exchange: connecting, redirects and reading
	// the body. 0 means DefaultTimeout.
	Timeout time.Duration
	// MaxRedirects is how many redirects are followed; 0 means
	// DefaultMaxRedirects, a negative number follows none (the redirect
	// response itself is returned).
	MaxRedirects int
	// MaxBodySize caps a response body; reading past it fails with
	// ErrBodyTooLarge. 0 means DefaultMaxBodySize.
	MaxBodySize int64
}

// ErrRefused is wrapped by every error of a connection the client refused
// to make because of the address it would reach.
var ErrRefused = errors.New("outbound: address refused")

// ErrBodyTooLarge is wrapped by the error of reading a response body past
// Options.MaxBodySize.
var ErrBodyTooLarge = errors.New("outbound: response body too large")

// RefusedError is the error of a refused address; errors.Is(err,
// ErrRefused) holds for it.
type RefusedError struct {
	Addr   netip.Addr
	Reason string // "loopback", "private", "cloud metadata", …
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("outbound: refused to connect to %s (%s address)", e.Addr, e.Reason)
}

// Unwrap returns ErrRefused.
func (e *RefusedError) Unwrap() error { return ErrRefused }

// New returns an HTTP client that refuses internal addresses at dial time,
// follows at most o.MaxRedirects redirects (each hop checked again),
// bounds the exchange by o.Timeout and caps response bodies at
// o.MaxBodySize. It ignores proxy settings from the environment: a proxy
// would make the connection on the client's behalf, beyond the check.
func New(o Options) *http.Client {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxRedirects == 0 {
		o.MaxRedirects = DefaultMaxRedirects
	}
	if o.MaxBodySize <= 0 {
		o.MaxBodySize = DefaultMaxBodySize
	}
	dialer := NewDialer(o.Allow)
	dialer.Timeout = DefaultDialTimeout
	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          20,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: o.Timeout,
		ExpectContinueTimeout: time.Second,
	}
	maxRedirects := o.MaxRedirects
	return &http.Client{
		Transport: &capTransport{next: transport, max: o.MaxBodySize},
		Timeout:   o.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if maxRedirects < 0 {
				return http.ErrUseLastResponse
			}
			if len(via) > maxRedirects {
				return fmt.Errorf("outbound: stopped after %d redirects", maxRedirects)
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("outbound: refused redirect to scheme %q", req.URL.Scheme)
			}
			return nil
		},
	}
}

// checkDial is the dialer's check of one connection attempt.
// NewDialer returns a dialer that checks every address it connects to
// with Check, after DNS resolution: its Control runs for each address the
// name resolved to, just before the connection is made, so the address
// checked is the one dialled. Every connection the server opens for a
// setting or a user (HTTP, SMTP, S3) dials through one.
func NewDialer(allow []netip.Prefix) *net.Dialer {
	allow = append([]netip.Prefix(nil), allow...)
	return &net.Dialer{
		Control: func(network, address string, _ syscall.RawConn) error {
			return checkDial(network, address, allow)
		},
	}
}

func checkDial(network, address string, allow []netip.Prefix) error {
	if network != "tcp" && network != "tcp4" && network != "tcp6" {
		return fmt.Errorf("outbound: refused network %q", network)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("outbound: dial address %q: %w", address, err)
	}
	return Check(ap.Addr(), allow)
}

// Check returns a *RefusedError when addr is an address the client
// refuses and no prefix of allow permits it, and nil otherwise.
func Check(addr netip.Addr, allow []netip.Prefix) error {
	addr = addr.Unmap().WithZone("")
	if !addr.IsValid() {
		return &RefusedError{Addr: addr, Reason: "invalid"}
	}
	if isMetadata(addr) {
		for _, p := range allow {
			if p.IsSingleIP() && p.Addr().Unmap() == addr {
				return nil
			}
		}
		return &RefusedError{Addr: addr, Reason: "cloud metadata"}
	}
	for _, p := range allow {
		if p.Contains(addr) || (p.Addr().Is4In6() && p.Bits() >= 96 && unmapPrefix(p).Contains(addr)) {
			return nil
		}
	}
	for _, b := range blocked {
		if b.prefix.Contains(addr) {
			return &RefusedError{Addr: addr, Reason: b.reason}
		}
	}
	// IPv6 forms that carry an IPv4 address reach that address.
	if v4, ok := embeddedIPv4(addr); ok {
		return Check(v4, allow)
	}
	return nil
}

// unmapPrefix turns ::ffff:a.b.c.d/n into a.b.c.d/(n-96).
func unmapPrefix(p netip.Prefix) netip.Prefix {
	return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96).Masked()
}

// metadata are the cloud providers' instance metadata endpoints, which
// hand out credentials to whoever on the machine asks.
var metadata = []netip.Addr{
	netip.MustParseAddr("169.254.169.254"), // AWS, GCP, Azure, Oracle, DigitalOcean, …
	netip.MustParseAddr("169.254.170.2"),   // AWS ECS task metadata
	netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
	netip.MustParseAddr("fd00:ec2::254"),   // AWS over IPv6
}

func isMetadata(addr netip.Addr) bool {
	for _, m := range metadata {
		if addr == m {
			return true
		}
	}
	return false
}

type blockedNet struct {
	prefix netip.Prefix
	reason string
}

// blocked are the networks a server must not reach on a user's behalf.
var blocked = func() []blockedNet {
	list := []struct{ cidr, reason string }{
		{"0.0.0.0/8", "unspecified"},
		{"10.0.0.0/8", "private"},
		{"100.64.0.0/10", "shared (CGNAT)"},
		{"127.0.0.0/8", "loopback"},
		{"169.254.0.0/16", "link-local"},
		{"172.16.0.0/12", "private"},
		{"192.0.0.0/24", "reserved"},
		{"192.0.2.0/24", "documentation"},
		{"192.168.0.0/16", "private"},
		{"198.18.0.0/15", "benchmarking"},
		{"198.51.100.0/24", "documentation"},
		{"203.0.113.0/24", "documentation"},
		{"224.0.0.0/4", "multicast"},
		{"240.0.0.0/4", "reserved"},
		{"::/128", "unspecified"},
		{"::1/128", "loopback"},
		{"::/96", "IPv4-compatible"},
		{"64:ff9b:1::/48", "local NAT64"},
		{"100::/64", "discard"},
		{"2001::/32", "Teredo"},
		{"2001:db8::/32", "documentation"},
		{"fc00::/7", "private"},
		{"fe80::/10", "link-local"},
		{"fec0::/10", "site-local"},
		{"ff00::/8", "multicast"},
	}
	out := make([]blockedNet, len(list))
	for i, b := range list {
		out[i] = blockedNet{netip.MustParsePrefix(b.cidr), b.reason}
	}
	return out
}()

var (
	nat64  = netip.MustParsePrefix("64:ff9b::/96")
	sixto4 = netip.MustParsePrefix("2002::/16")
)

// embeddedIPv4 returns the IPv4 address an IPv6 address reaches through
// NAT64 or 6to4.
func embeddedIPv4(addr netip.Addr) (netip.Addr, bool) {
	if !addr.Is6() {
		return netip.Addr{}, false
	}
	b := addr.As16()
	switch {
	case nat64.Contains(addr):
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
	case sixto4.Contains(addr):
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), true
	}
	return netip.Addr{}, false
}

// ParseAllow parses a list of networks separated by commas or spaces,
// each a CIDR prefix ("127.0.0.1/32", "10.0.0.0/8", "::1/128") or a single
// address ("127.0.0.1"), as an operator writes Options.Allow in a flag or
// an environment variable. An empty string is an empty list.
func ParseAllow(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		if strings.Contains(item, "/") {
			p, err := netip.ParsePrefix(item)
			if err != nil {
				return nil, fmt.Errorf("outbound allow list: %w", err)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(item)
		if err != nil {
			return nil, fmt.Errorf("outbound allow list: %q is neither an address nor a CIDR prefix", item)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// capTransport caps the bodies of the responses of next.
type capTransport struct {
	next http.RoundTripper
	max  int64
}

func (t *capTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > t.max {
		resp.Body.Close()
		return nil, fmt.Errorf("%w: %d bytes announced, limit %d", ErrBodyTooLarge, resp.ContentLength, t.max)
	}
	resp.Body = &cappedBody{rc: resp.Body, left: t.max, max: t.max}
	return resp, nil
}

// cappedBody fails a read past its limit instead of truncating silently,
// so a caller never mistakes a cut-off document for a whole one.
type cappedBody struct {
	rc   io.ReadCloser
	left int64
	max  int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more tells a body of exactly max bytes from a longer one.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, b.max)
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *cappedBody) Close() error { return b.rc.Close() }

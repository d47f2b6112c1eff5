package outbound

import (
	"net/http"
	"net/netip"
	"time"
)

// NewTransport returns an HTTP transport that refuses the addresses New's
// client refuses, at dial time, except those in allow. It is for a client
// that sets its own timeouts and reads bodies of any size, such as the S3
// file storage, which streams files larger than MaxBodySize for longer
// than Timeout. Like New, it ignores proxy settings from the environment.
func NewTransport(allow []netip.Prefix) *http.Transport {
	dialer := NewDialer(allow)
	dialer.Timeout = DefaultDialTimeout
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

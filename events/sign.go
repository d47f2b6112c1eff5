package events

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Webhook requests are signed as the Standard Webhooks specification
// says: the headers webhook-id (the event id, the same on every attempt
// and replay, for deduplication), webhook-timestamp (Unix seconds) and
// webhook-signature, "v1,<base64 HMAC-SHA256 of id.timestamp.body>" for
// each valid secret, separated by spaces. A secret is "whsec_" followed by
// the base64 of its key bytes.

// Header names of a signed request.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

const secretPrefix = "whsec_"

// Key sizes a secret may have.
const (
	minSecretBytes = 24
	maxSecretBytes = 64
)

// NewSecret returns a fresh random secret.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (Go 1.24+ panics instead)
	return secretPrefix + base64.StdEncoding.EncodeToString(b)
}

// secretKey returns the key bytes of a secret, or an error when it is not
// "whsec_" and the base64 of 24 to 64 bytes.
func secretKey(secret string) ([]byte, error) {
	enc, ok := strings.CutPrefix(secret, secretPrefix)
	if !ok {
		return nil, errors.New(`a secret starts with "whsec_"`)
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, errors.New("a secret is whsec_ followed by base64")
	}
	if len(key) < minSecretBytes || len(key) > maxSecretBytes {
		return nil, errors.New("a secret's key is 24 to 64 bytes")
	}
	return key, nil
}

// Sign returns the webhook-signature header value for the message id sent
// at ts with body, one signature per secret. Secrets that are not valid
// are skipped (they are refused when a webhook is saved).
func Sign(secrets []string, id string, ts time.Time, body []byte) string {
	var sigs []string
	for _, s := range secrets {
		key, err := secretKey(s)
		if err != nil {
			continue
		}
		sigs = append(sigs, "v1,"+signature(key, id, ts.Unix(), body))
	}
	return strings.Join(sigs, " ")
}

func signature(key []byte, id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Verification errors.
var (
	ErrNoSignature = errors.New("webhook: no valid signature")
	ErrTimestamp   = errors.New("webhook: timestamp too far from now")
)

// Verify checks a signed request as a receiver would: the timestamp must
// be within tolerance of now and one of the signatures must be the
// HMAC of id.timestamp.body under secret. The comparison takes constant
// time.
func Verify(secret, id, timestamp, signatures string, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := secretKey(secret)
	if err != nil {
		return err
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return ErrTimestamp
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return ErrTimestamp
	}
	want := []byte(signature(key, id, ts, body))
	for _, s := range strings.Fields(signatures) {
		v, sig, ok := strings.Cut(s, ",")
		if ok && v == "v1" && hmac.Equal([]byte(sig), want) {
			return nil
		}
	}
	return ErrNoSignature
}

// Package underhood is the vocabulary of the whole system: collections,
// fields, records, identities, events and the one error type. It depends on
// the standard library only; every other package speaks in these types.
package underhood

import (
	"crypto/rand"
	"time"
)

// Collection types.
const (
	TypeBase = "base"
	TypeAuth = "auth"
	TypeView = "view"
)

// Well-known collection names and ids.
const (
	SuperusersName = "_superusers"
	SuperusersID   = "pbc_3142635823"
	UsersName      = "users"
	UsersID        = "_pb_users_auth_"
)

// TimeLayout is the wire format of every datetime: UTC with milliseconds.
const TimeLayout = "2006-01-02 15:04:05.000Z"

// FormatTime renders t in TimeLayout; the zero time renders as "".
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(TimeLayout)
}

// ParseTime accepts TimeLayout and the common RFC 3339 / date-only variants
// clients send. It returns the zero time for "".
func ParseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{
		TimeLayout,
		"2006-01-02 15:04:05Z07:00",
		"2006-01-02 15:04:05.999999999Z07:00",
		"2006-01-02 15:04:05",
		"2006-01-02 15:04:05.999999999",
		time.RFC3339Nano,
		"2006-01-02T15:04:05",
		"2006-01-02T15:04:05.999999999",
		"2006-01-02",
	} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, Errorf(EInvalid, "invalid datetime %q", s)
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// NewID returns a random 15 character record id from [a-z0-9].
func NewID() string { return RandomString(15) }

// RandomString returns n random characters from [a-z0-9], read from
// crypto/rand.
func RandomString(n int) string {
	b := make([]byte, n)
	// rand.Read never fails on supported platforms (Go 1.24+ panics instead).
	_, _ = rand.Read(b)
	for i := range b {
		// 252 is the largest multiple of 36 below 256; re-draw above it to
		// keep the distribution uniform.
		for b[i] >= 252 {
			var one [1]byte
			_, _ = rand.Read(one[:])
			b[i] = one[0]
		}
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return string(b)
}

// ValidID reports whether id is a well-formed record id: 15 characters is
// the default, but any 1-100 characters from [a-zA-Z0-9_] are accepted as
// user-supplied ids.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > 100 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

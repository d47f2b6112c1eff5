package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/underhood/underhood"
)

// Token kinds, as carried in the "type" claim. Each kind is signed with its
// own collection secret, so a token of one kind never passes as another;
// only KindAuth identifies a caller.
const (
	KindAuth          = "auth"
	KindFile          = "file"
	KindVerification  = "verification"
	KindPasswordReset = "passwordReset"
	KindEmailChange   = "emailChange"
)

// Default lifetimes in seconds, used when a collection leaves a duration at
// zero. They are PocketBase's defaults.
const (
	defaultAuthDuration          = 7 * 24 * 60 * 60
	defaultSuperuserAuthDuration = 24 * 60 * 60
	defaultFileTokenDuration     = 3 * 60
	defaultVerificationDuration  = 3 * 24 * 60 * 60
	defaultPasswordResetDuration = 30 * 60
	defaultEmailChangeDuration   = 30 * 60
)

const (
	signingMethod  = "HS256"
	maxTokenLength = 4096 // far above any token we issue; refuse to parse more
)

// claims are the JWT claims of a record token. Only "exp" of the registered
// claims is used; the names of the others follow PocketBase.
type claims struct {
	RecordID     string `json:"id"`
	Type         string `json:"type"`
	CollectionID string `json:"collectionId"`
	Refreshable  bool   `json:"refreshable,omitempty"`
	// Email is the address an email token was sent to; NewEmail the
	// address an email change token moves the record to.
	Email    string `json:"email,omitempty"`
	NewEmail string `json:"newEmail,omitempty"`
	jwt.RegisteredClaims
}

// tokenConfig returns the lifetime and secret of tokens of kind for c.
func tokenConfig(c *underhood.Collection, kind string) (time.Duration, string, error) {
	if c == nil || !c.IsAuth() || c.Auth == nil {
		return 0, "", fmt.Errorf("collection %q is not an auth collection", nameOf(c))
	}
	var cfg underhood.TokenConfig
	var def int
	switch kind {
	case KindAuth:
		cfg, def = c.Auth.AuthToken, defaultAuthDuration
		if c.IsSuperusers() {
			def = defaultSuperuserAuthDuration
		}
	case KindFile:
		cfg, def = c.Auth.FileToken, defaultFileTokenDuration
	case KindVerification:
		cfg, def = c.Auth.VerificationToken, defaultVerificationDuration
	case KindPasswordReset:
		cfg, def = c.Auth.PasswordResetToken, defaultPasswordResetDuration
	case KindEmailChange:
		cfg, def = c.Auth.EmailChangeToken, defaultEmailChangeDuration
	default:
		return 0, "", fmt.Errorf("unknown token kind %q", kind)
	}
	if cfg.Duration <= 0 {
		cfg.Duration = def
	}
	return time.Duration(cfg.Duration) * time.Second, cfg.Secret, nil
}

// signingKey is the key of rec's tokens: its tokenKey followed by the
// collection's secret. A new tokenKey (password change, explicit revoke) or a
// new secret (collection settings) invalidates every token signed before.
func signingKey(rec *underhood.Record, secret string) ([]byte, error) {
	tokenKey := rec.String("tokenKey")
	if tokenKey == "" && secret == "" {
		return nil, errors.New("record has no token key")
	}
	return []byte(tokenKey + secret), nil
}

// signToken returns the HS256 JWT of kind for rec, expiring at now+lifetime.
func signToken(rec *underhood.Record, kind string, now time.Time) (string, error) {
	return signTokenWith(rec, kind, now, claims{})
}

// signTokenWith is signToken with the email claims of extra added.
func signTokenWith(rec *underhood.Record, kind string, now time.Time, extra claims) (string, error) {
	if rec == nil || rec.ID() == "" {
		return "", errors.New("sign token: no record")
	}
	lifetime, secret, err := tokenConfig(rec.Collection, kind)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	key, err := signingKey(rec, secret)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	cl := claims{
		RecordID:     rec.ID(),
		Type:         kind,
		CollectionID: rec.Collection.ID,
		Refreshable:  kind == KindAuth,
		Email:        extra.Email,
		NewEmail:     extra.NewEmail,
		RegisteredClaims: jwt.RegisteredClaims{
			ExpiresAt: jwt.NewNumericDate(now.Add(lifetime)),
		},
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, cl).SignedString(key)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

// peekClaims reads the claims of token without checking its signature: they
// say which record, and so which key, the signature must be checked with.
// Nothing read here is trusted until verifyToken succeeds.
func peekClaims(token string) (*claims, error) {
	if len(token) > maxTokenLength {
		return nil, errors.New("token too long")
	}
	var cl claims
	p := jwt.NewParser(jwt.WithValidMethods([]string{signingMethod}))
	if _, _, err := p.ParseUnverified(token, &cl); err != nil {
		return nil, err
	}
	if cl.RecordID == "" || cl.CollectionID == "" || cl.Type == "" {
		return nil, errors.New("token lacks id, collectionId or type")
	}
	return &cl, nil
}

// verifyToken checks token's signature against rec's key for kind, its
// expiry (required) at now, and that it names rec.
func verifyToken(token string, rec *underhood.Record, kind string, now time.Time) error {
	_, err := verifyTokenClaims(token, rec, kind, now)
	return err
}

// verifyTokenClaims is verifyToken returning the verified claims.
func verifyTokenClaims(token string, rec *underhood.Record, kind string, now time.Time) (*claims, error) {
	_, secret, err := tokenConfig(rec.Collection, kind)
	if err != nil {
		return nil, err
	}
	key, err := signingKey(rec, secret)
	if err != nil {
		return nil, err
	}
	var cl claims
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{signingMethod}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	if _, err := p.ParseWithClaims(token, &cl, func(*jwt.Token) (any, error) { return key, nil }); err != nil {
		return nil, err
	}
	if cl.Type != kind || cl.RecordID != rec.ID() || cl.CollectionID != rec.Collection.ID {
		return nil, errors.New("token does not match its record")
	}
	return &cl, nil
}

func nameOf(c *underhood.Collection) string {
	if c == nil {
		return ""
	}
	return c.Name
}

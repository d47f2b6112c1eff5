package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"sync"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
)

// installTokenLifetime is how long the install link printed on a first
// start stays valid.
const installTokenLifetime = time.Hour

const msgInstallToken = "The install link is invalid or has expired, or a superuser already exists."

// installState is the one-time install token, kept in memory only and as
// its SHA-256: whoever reads the process's memory learns nothing usable.
type installState struct {
	mu      sync.Mutex
	hash    [sha256.Size]byte
	expires time.Time
}

// NewInstallToken returns a one-time token that lets the first superuser
// be created with Install, valid for an hour, or "" when a superuser
// exists already. A new token replaces an earlier one.
func (a *Service) NewInstallToken(ctx context.Context) (_ string, err error) {
	defer underhood.Wrap(&err, "auth.NewInstallToken")
	exists, err := a.superuserExists(ctx)
	if err != nil || exists {
		return "", err
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("install token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(b[:])
	a.install.mu.Lock()
	a.install.hash = sha256.Sum256([]byte(token))
	a.install.expires = a.now().Add(installTokenLifetime)
	a.install.mu.Unlock()
	return token, nil
}

// CheckInstallToken reports, with a 403 error, a token that Install would
// refuse; it does not use the token up.
func (a *Service) CheckInstallToken(ctx context.Context, token string) (err error) {
	defer underhood.Wrap(&err, "auth.CheckInstallToken")
	a.install.mu.Lock()
	defer a.install.mu.Unlock()
	return a.checkInstallTokenLocked(ctx, token)
}

func (a *Service) checkInstallTokenLocked(ctx context.Context, token string) error {
	st := &a.install
	h := sha256.Sum256([]byte(token))
	if st.expires.IsZero() || !a.now().Before(st.expires) || subtle.ConstantTimeCompare(h[:], st.hash[:]) != 1 {
		return underhood.Errorf(underhood.EForbidden, msgInstallToken)
	}
	exists, err := a.superuserExists(ctx)
	if err != nil {
		return err
	}
	if exists {
		// The CLI, or another node, got there first: the link has served
		// its purpose.
		st.expires = time.Time{}
		return underhood.Errorf(underhood.EForbidden, msgInstallToken)
	}
	return nil
}

// Install creates the first superuser with the token NewInstallToken
// returned, which is then used up. It answers 403 to a wrong or expired
// token or once a superuser exists, and 400 with field errors to an
// unacceptable email or password (the token stays valid for another try).
func (a *Service) Install(ctx context.Context, token, email, password, passwordConfirm string) (_ *underhood.Record, err error) {
	defer underhood.Wrap(&err, "auth.Install")
	a.install.mu.Lock()
	defer a.install.mu.Unlock()
	if err := a.checkInstallTokenLocked(ctx, token); err != nil {
		return nil, err
	}
	rec, err := a.records.Create(ctx, a.records.SystemRequest(), underhood.SuperusersName,
		map[string]any{"email": email, "password": password, "passwordConfirm": passwordConfirm}, "")
	if err != nil {
		return nil, err
	}
	a.install.expires = time.Time{}
	a.log.InfoContext(ctx, "first superuser created from the install link", "record", rec.ID())
	return a.records.Present(&record.Request{Context: "default", Method: "POST", Auth: rec}, rec), nil
}

// superuserExists asks the database itself, not a cache: the CLI may have
// created one from another process.
func (a *Service) superuserExists(ctx context.Context) (bool, error) {
	n, err := a.records.CountWhere(ctx, underhood.SuperusersName, nil)
	if err != nil {
		return false, fmt.Errorf("look for a superuser: %w", err)
	}
	return n > 0, nil
}

package auth

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
	"github.com/underhood/underhood/sqlstore"
)

// Client-visible messages of multi-factor authentication; the first three
// are PocketBase's.
const (
	msgMFAExpired       = "Invalid or expired MFA session."
	msgMFAInvalid       = "Invalid MFA session."
	msgMFASameMethod    = "A different authentication method is required."
	msgMFANeedsTOTP     = "A code from the authenticator app is required."
	msgMFASecondFactor  = "This method can only complete a multi-factor authentication: send the mfaId of the first one."
	defaultMFALifetimeS = 1800
)

// checkMFA is the multi-factor gate every method passes through (finish).
// It returns "" when rec may have its token now, or the id of a new
// pending MFA session (a _mfas row) when this was the first of two
// factors. mfaID is the session a client continues; the second factor must
// be a different method, for the same record, within MFA.Duration seconds,
// and the session is consumed by its first successful use.
//
// MFA applies when the collection enables it and its MFA rule (if any)
// matches rec, or when rec has a confirmed authenticator app (TOTP): a
// record that enrolled one always needs it as one of its two factors.
func (a *Service) checkMFA(ctx context.Context, rec *underhood.Record, method, mfaID string) (string, error) {
	c := rec.Collection
	if c.Auth == nil || !c.Auth.MFA.Enabled {
		if method == MethodTOTP {
			return "", underhood.Errorf(underhood.EInvalid, msgMFASecondFactor)
		}
		return "", nil
	}
	totp, err := a.confirmedTOTP(ctx, rec)
	if err != nil {
		return "", err
	}
	if totp == nil {
		wants, err := a.wantsMFA(ctx, rec, method)
		if err != nil {
			return "", err
		}
		if !wants {
			return "", nil
		}
	}

	if mfaID == "" {
		if method == MethodTOTP {
			// An authenticator code is a second factor only: alone it
			// proves possession of a device, not who holds it.
			return "", underhood.Errorf(underhood.EInvalid, msgMFASecondFactor)
		}
		row, err := a.createRow(ctx, record.MFAsName, rec, map[string]any{"method": method})
		if err != nil {
			return "", fmt.Errorf("start mfa: %w", err)
		}
		a.deleteExpired(ctx, record.MFAsName, rec, c.Auth.MFA.Duration, defaultMFALifetimeS)
		return row.ID(), nil
	}

	row, err := a.findRow(ctx, record.MFAsName, mfaID)
	if err != nil {
		return "", err
	}
	if row == nil {
		return "", underhood.Errorf(underhood.EInvalid, msgMFAExpired)
	}
	if a.expired(row, c.Auth.MFA.Duration, defaultMFALifetimeS) {
		_, _ = a.deleteRow(ctx, record.MFAsName, row.ID()) // only tidying up
		return "", underhood.Errorf(underhood.EInvalid, msgMFAExpired)
	}
	if !ownedBy(row, rec) {
		return "", underhood.Errorf(underhood.EInvalid, msgMFAInvalid)
	}
	first := row.String("method")
	if first == method {
		return "", underhood.Errorf(underhood.EInvalid, msgMFASameMethod)
	}
	if totp != nil && first != MethodTOTP && method != MethodTOTP {
		return "", underhood.Errorf(underhood.EInvalid, msgMFANeedsTOTP)
	}
	// Deleting is the consumption: of two concurrent second factors only
	// one deletes the row.
	consumed, err := a.deleteRow(ctx, record.MFAsName, row.ID())
	if err != nil {
		return "", err
	}
	if !consumed {
		return "", underhood.Errorf(underhood.EInvalid, msgMFAExpired)
	}
	return "", nil
}

// wantsMFA reports whether the collection's MFA rule selects rec. An empty
// rule selects every record; a rule that cannot be evaluated selects rec
// too, so that a broken rule never switches a second factor off.
func (a *Service) wantsMFA(ctx context.Context, rec *underhood.Record, method string) (bool, error) {
	rule := strings.TrimSpace(rec.Collection.Auth.MFA.Rule)
	if rule == "" {
		return true, nil
	}
	ok, err := a.records.RuleHolds(ctx, rec, rule, method)
	if err != nil {
		if underhood.ErrorCode(err) == underhood.EInternal || underhood.ErrorCode(err) == "" {
			return false, fmt.Errorf("check mfa rule: %w", err)
		}
		a.log.Error("mfa rule does not compile; requiring mfa", "collection", rec.Collection.Name, "err", err)
		return true, nil
	}
	return ok, nil
}

// The auth state of a record lives in system collections (record/system.go)
// whose rows name their owner by collectionRef and recordRef. The helpers
// below read and write them with the system's rights: the flows decide who
// may do what.

// createRow stores a new row of the system collection coll for owner.
func (a *Service) createRow(ctx context.Context, coll string, owner *underhood.Record, data map[string]any) (*underhood.Record, error) {
	data["collectionRef"] = owner.Collection.ID
	data["recordRef"] = owner.ID()
	row, err := a.records.Create(ctx, a.records.SystemRequest(), coll, data, "")
	if err != nil {
		return nil, fmt.Errorf("create %s row: %w", coll, err)
	}
	return row, nil
}

// findRow returns row id of the system collection coll, or nil when there
// is none (an id a client sent is not trusted to be well formed).
func (a *Service) findRow(ctx context.Context, coll, id string) (*underhood.Record, error) {
	if !underhood.ValidID(id) {
		return nil, nil
	}
	c, err := a.records.Collection(coll)
	if err != nil {
		return nil, underhood.Internal(fmt.Errorf("system collection %s: %w", coll, err))
	}
	row, err := a.records.FindRecord(ctx, c, id)
	if underhood.ErrorCode(err) == underhood.ENotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find %s row: %w", coll, err)
	}
	return row, nil
}

// ownRows returns the rows of the system collection coll that belong to
// owner, newest first.
func (a *Service) ownRows(ctx context.Context, coll string, owner *underhood.Record) ([]*underhood.Record, error) {
	if _, err := a.records.Collection(coll); err != nil {
		return nil, underhood.Internal(fmt.Errorf("system collection %s: %w", coll, err))
	}
	owned := sqlstore.And(sqlstore.Eq("collectionRef", owner.Collection.ID), sqlstore.Eq("recordRef", owner.ID()))
	rows, err := a.records.FindWhere(ctx, coll, owned, []sqlstore.Order{{Field: "created", Desc: true}}, 0)
	if err != nil {
		return nil, fmt.Errorf("list %s rows: %w", coll, err)
	}
	return rows, nil
}

// deleteRow deletes row id of the system collection coll and reports
// whether this call deleted it (false: it was already gone). Failures are
// returned; callers that only tidy up may ignore them.
func (a *Service) deleteRow(ctx context.Context, coll, id string) (bool, error) {
	err := a.records.Delete(ctx, a.records.SystemRequest(), coll, id)
	switch underhood.ErrorCode(err) {
	case "":
		return true, nil
	case underhood.ENotFound:
		return false, nil
	}
	return false, fmt.Errorf("delete %s row: %w", coll, err)
}

// ownedBy reports whether the system row belongs to rec.
func ownedBy(row, rec *underhood.Record) bool {
	return row.String("collectionRef") == rec.Collection.ID && row.String("recordRef") == rec.ID()
}

// expired reports whether row, created at its "created" time, is older than
// seconds (def when seconds is not positive). A row whose time cannot be
// read is expired.
func (a *Service) expired(row *underhood.Record, seconds, def int) bool {
	if seconds <= 0 {
		seconds = def
	}
	created, err := underhood.ParseTime(row.String("created"))
	if err != nil {
		return true
	}
	return !a.now().Before(created.Add(time.Duration(seconds) * time.Second))
}

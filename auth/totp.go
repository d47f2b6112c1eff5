package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
	"github.com/underhood/underhood/sqlstore"
)

// Authenticator apps (TOTP, RFC 6238) are our addition to PocketBase's
// methods: a record enrols one (EnrollTOTP), proves it works with a first
// code (ConfirmTOTP) and from then on, when its collection enables MFA,
// needs a code from it as one of its two factors (AuthWithTOTP). The
// state is one _totps row per record: the shared secret, whether it is
// confirmed, the last time step used (no code is accepted twice) and the
// SHA-256 hashes of ten single-use recovery codes.

// TOTP parameters: the ones every authenticator app supports.
const (
	totpPeriod      = 30 // seconds per time step
	totpDigits      = 6
	totpSkew        = 1  // steps accepted before and after the current one
	totpSecretBytes = 20 // 160 bits, as RFC 4226 recommends for SHA-1

	recoveryCodeCount = 10
	recoveryCodeChars = 10 // base32 characters: 50 bits each
)

// ScopeTOTP is the per-identity attempt limit of authenticator codes.
const ScopeTOTP = "totp"

// Client-visible messages of the TOTP endpoints.
const (
	msgTOTPInvalidCode = "Invalid or expired authenticator code."
	msgTOTPEnrolled    = "An authenticator app is already set up; disable it first."
	msgTOTPMissing     = "No authenticator app is set up."
	msgTOTPConfirmed   = "The authenticator app is already confirmed."
)

// TOTPEnrollment is what a record needs to set up its authenticator app:
// the base32 secret (for typing in), the otpauth:// URL (for a QR code) and
// the recovery codes, shown this once and stored only as hashes.
type TOTPEnrollment struct {
	Secret        string   `json:"secret"`
	OTPAuthURL    string   `json:"otpauthUrl"`
	RecoveryCodes []string `json:"recoveryCodes"`
}

// EnrollTOTP starts setting up an authenticator app for caller, who must
// be authenticated as a record of coll. An unconfirmed enrolment is
// replaced; a confirmed one must be disabled first.
func (a *Service) EnrollTOTP(ctx context.Context, caller *underhood.Record, coll string) (_ *TOTPEnrollment, err error) {
	defer underhood.Wrap(&err, "auth.EnrollTOTP(%s)", coll)
	rec, err := a.callerRecord(ctx, caller, coll)
	if err != nil {
		return nil, err
	}
	row, err := a.totpRow(ctx, rec)
	if err != nil {
		return nil, err
	}
	if row != nil && row.Bool("confirmed") {
		return nil, underhood.Errorf(underhood.EInvalid, msgTOTPEnrolled)
	}
	secret := make([]byte, totpSecretBytes)
	if _, err := rand.Read(secret); err != nil {
		return nil, underhood.Internal(err)
	}
	codes, hashes := newRecoveryCodes()
	data := map[string]any{
		"secret":        encodeSecret(secret),
		"confirmed":     false,
		"lastCounter":   0,
		"recoveryCodes": hashes,
	}
	if row != nil {
		if _, err := a.records.Update(ctx, a.records.SystemRequest(), record.TOTPsName, row.ID(), data, ""); err != nil {
			return nil, fmt.Errorf("replace totp enrolment: %w", err)
		}
	} else if _, err := a.createRow(ctx, record.TOTPsName, rec, data); err != nil {
		return nil, err
	}
	return &TOTPEnrollment{
		Secret:        encodeSecret(secret),
		OTPAuthURL:    a.otpauthURL(rec, encodeSecret(secret)),
		RecoveryCodes: codes,
	}, nil
}

// ConfirmTOTP completes the enrolment of caller's authenticator app with a
// first code from it; from then on it counts as a factor.
func (a *Service) ConfirmTOTP(ctx context.Context, caller *underhood.Record, coll, code string) (err error) {
	defer underhood.Wrap(&err, "auth.ConfirmTOTP(%s)", coll)
	rec, err := a.callerRecord(ctx, caller, coll)
	if err != nil {
		return err
	}
	if err := a.limitAttempt(ctx, ScopeTOTP, attemptKey(rec.Collection, rec.ID())); err != nil {
		return err
	}
	row, err := a.totpRow(ctx, rec)
	if err != nil {
		return err
	}
	if row == nil {
		return underhood.Errorf(underhood.EInvalid, msgTOTPMissing)
	}
	if row.Bool("confirmed") {
		return underhood.Errorf(underhood.EInvalid, msgTOTPConfirmed)
	}
	ok, err := a.useTOTPCode(ctx, row, code)
	if err != nil {
		return err
	}
	if !ok {
		return invalidTOTPCode()
	}
	if _, err := a.records.Update(ctx, a.records.SystemRequest(), record.TOTPsName, row.ID(), map[string]any{"confirmed": true}, ""); err != nil {
		return fmt.Errorf("confirm totp: %w", err)
	}
	a.clearAttempts(ctx, ScopeTOTP, attemptKey(rec.Collection, rec.ID()))
	return nil
}

// DisableTOTP removes caller's authenticator app, given a current code from
// it or one of its recovery codes.
func (a *Service) DisableTOTP(ctx context.Context, caller *underhood.Record, coll, code string) (err error) {
	defer underhood.Wrap(&err, "auth.DisableTOTP(%s)", coll)
	rec, err := a.callerRecord(ctx, caller, coll)
	if err != nil {
		return err
	}
	if err := a.limitAttempt(ctx, ScopeTOTP, attemptKey(rec.Collection, rec.ID())); err != nil {
		return err
	}
	row, err := a.totpRow(ctx, rec)
	if err != nil {
		return err
	}
	if row == nil {
		return underhood.Errorf(underhood.EInvalid, msgTOTPMissing)
	}
	ok, err := a.useTOTPOrRecoveryCode(ctx, row, code)
	if err != nil {
		return err
	}
	if !ok {
		return invalidTOTPCode()
	}
	if _, err := a.deleteRow(ctx, record.TOTPsName, row.ID()); err != nil {
		return err
	}
	a.clearAttempts(ctx, ScopeTOTP, attemptKey(rec.Collection, rec.ID()))
	return nil
}

// AuthWithTOTP completes the multi-factor login mfaID of a record of coll
// with a code from its confirmed authenticator app, or with one of its
// recovery codes, which is used up. It is a second factor only.
func (a *Service) AuthWithTOTP(ctx context.Context, coll, mfaID, code string) (_ *Result, err error) {
	defer underhood.Wrap(&err, "auth.AuthWithTOTP(%s)", coll)
	c, err := a.authCollection(coll)
	if err != nil {
		return nil, err
	}
	fields := map[string]any{}
	if mfaID == "" {
		fields["mfaId"] = underhood.FieldError{Code: "validation_required", Message: "Cannot be blank."}
	}
	if code == "" {
		fields["code"] = underhood.FieldError{Code: "validation_required", Message: "Cannot be blank."}
	}
	if len(fields) > 0 {
		return nil, underhood.Invalid(msgBadForm, fields)
	}
	session, err := a.findRow(ctx, record.MFAsName, mfaID)
	if err != nil {
		return nil, err
	}
	if session == nil || session.String("collectionRef") != c.ID {
		return nil, underhood.Errorf(underhood.EInvalid, msgMFAExpired)
	}
	rec, err := a.records.FindRecord(ctx, c, session.String("recordRef"))
	if underhood.ErrorCode(err) == underhood.ENotFound {
		return nil, underhood.Errorf(underhood.EInvalid, msgMFAExpired)
	}
	if err != nil {
		return nil, fmt.Errorf("auth with totp: %w", err)
	}
	if err := a.limitAttempt(ctx, ScopeTOTP, attemptKey(c, rec.ID())); err != nil {
		return nil, err
	}
	row, err := a.confirmedTOTP(ctx, rec)
	if err != nil {
		return nil, err
	}
	if row == nil {
		return nil, invalidTOTPCode()
	}
	ok, err := a.useTOTPOrRecoveryCode(ctx, row, code)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, invalidTOTPCode()
	}
	a.clearAttempts(ctx, ScopeTOTP, attemptKey(c, rec.ID()))
	return a.finish(ctx, rec, MethodTOTP, mfaID)
}

func invalidTOTPCode() error {
	return underhood.Invalid(msgTOTPInvalidCode, map[string]any{
		"code": underhood.FieldError{Code: "validation_invalid_code", Message: msgTOTPInvalidCode},
	})
}

// callerRecord returns the current state of caller, who must be
// authenticated as a record of the auth collection coll.
func (a *Service) callerRecord(ctx context.Context, caller *underhood.Record, coll string) (*underhood.Record, error) {
	if caller == nil {
		return nil, underhood.Errorf(underhood.EUnauthorized, msgInvalidToken)
	}
	c, err := a.authCollection(coll)
	if err != nil {
		return nil, err
	}
	if caller.Collection == nil || caller.Collection.ID != c.ID {
		return nil, underhood.Errorf(underhood.EForbidden, msgNotAllowed)
	}
	rec, err := a.records.FindRecord(ctx, c, caller.ID())
	if underhood.ErrorCode(err) == underhood.ENotFound {
		return nil, underhood.Errorf(underhood.EUnauthorized, msgInvalidToken)
	}
	if err != nil {
		return nil, fmt.Errorf("load caller: %w", err)
	}
	return rec, nil
}

// totpRow returns rec's _totps row, confirmed or not, or nil.
func (a *Service) totpRow(ctx context.Context, rec *underhood.Record) (*underhood.Record, error) {
	rows, err := a.ownRows(ctx, record.TOTPsName, rec)
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	return rows[0], nil
}

// confirmedTOTP returns rec's confirmed _totps row, or nil: only a
// confirmed authenticator app counts as a factor.
func (a *Service) confirmedTOTP(ctx context.Context, rec *underhood.Record) (*underhood.Record, error) {
	row, err := a.totpRow(ctx, rec)
	if err != nil || row == nil || !row.Bool("confirmed") {
		return nil, err
	}
	return row, nil
}

// useTOTPOrRecoveryCode accepts a current authenticator code (six digits)
// or an unused recovery code of row, and uses it up.
func (a *Service) useTOTPOrRecoveryCode(ctx context.Context, row *underhood.Record, code string) (bool, error) {
	code = strings.TrimSpace(code)
	if len(code) == totpDigits && strings.Trim(code, "0123456789") == "" {
		return a.useTOTPCode(ctx, row, code)
	}
	return a.useRecoveryCode(ctx, row, code)
}

// useTOTPCode reports whether code is valid for row's secret at the
// current, previous or next time step, and records that step as used: a
// step not later than the last used one is refused, so no code works twice.
// The step is claimed with a conditional update, so of two concurrent uses
// of one code only one succeeds.
func (a *Service) useTOTPCode(ctx context.Context, row *underhood.Record, code string) (bool, error) {
	secret, err := decodeSecret(row.String("secret"))
	if err != nil {
		return false, underhood.Internal(fmt.Errorf("totp secret of %s: %w", row.ID(), err))
	}
	last := int64(0)
	if v, ok := row.Data["lastCounter"].(float64); ok {
		last = int64(v)
	}
	step, ok := matchTOTP(secret, code, a.now().Unix(), last)
	if !ok {
		return false, nil
	}
	n, err := a.records.UpdateWhere(ctx, record.TOTPsName, map[string]any{"lastCounter": step},
		sqlstore.And(sqlstore.Eq("id", row.ID()), sqlstore.Compare("lastCounter", sqlstore.OpLt, step)))
	if err != nil {
		return false, fmt.Errorf("use totp step: %w", err)
	}
	return n == 1, nil
}

// useRecoveryCode reports whether code is one of row's unused recovery
// codes and, if so, removes it. The list is replaced only if it is still
// the one read, so a code cannot be used twice concurrently.
func (a *Service) useRecoveryCode(ctx context.Context, row *underhood.Record, code string) (bool, error) {
	want := hashRecoveryCode(code)
	if want == "" {
		return false, nil
	}
	rows, err := a.records.FindWhere(ctx, record.TOTPsName, sqlstore.Eq("id", row.ID()), nil, 1)
	if err != nil {
		return false, fmt.Errorf("use recovery code: %w", err)
	}
	if len(rows) == 0 {
		return false, nil
	}
	raw, _ := rows[0].Data["recoveryCodes"].(json.RawMessage)
	var hashes []string
	if err := json.Unmarshal(raw, &hashes); err != nil {
		return false, fmt.Errorf("recovery codes of %s: %w", row.ID(), err)
	}
	// Compare with every stored hash, whether or not one matched
	// already, so the time taken says nothing about which.
	found := -1
	for i, h := range hashes {
		if subtle.ConstantTimeCompare([]byte(h), []byte(want)) == 1 {
			found = i
		}
	}
	if found < 0 {
		return false, nil
	}
	rest, err := json.Marshal(append(hashes[:found:found], hashes[found+1:]...))
	if err != nil {
		return false, err
	}
	// Only if the list is still the one read: of two uses of one code,
	// one changes nothing.
	n, err := a.records.UpdateWhere(ctx, record.TOTPsName, map[string]any{"recoveryCodes": json.RawMessage(rest)},
		sqlstore.And(sqlstore.Eq("id", row.ID()), sqlstore.Eq("recoveryCodes", string(raw))))
	if err != nil {
		return false, fmt.Errorf("use recovery code: %w", err)
	}
	return n == 1, nil
}

// matchTOTP returns the time step at unix time now (±totpSkew) whose code
// is code and which is later than last. Every candidate is computed and
// compared in constant time.
func matchTOTP(secret []byte, code string, now, last int64) (int64, bool) {
	if len(code) != totpDigits {
		return 0, false
	}
	current := now / totpPeriod
	var step int64
	found := false
	for s := current - totpSkew; s <= current+totpSkew; s++ {
		match := subtle.ConstantTimeCompare([]byte(totpCode(secret, s)), []byte(code)) == 1
		if match && s > last && !found {
			step, found = s, true
		}
	}
	return step, found
}

// totpCode is the RFC 6238 code (HMAC-SHA1, dynamic truncation, six
// digits) of secret at time step.
func totpCode(secret []byte, step int64) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(step))
	m := hmac.New(sha1.New, secret)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%0*d", totpDigits, v%1_000_000)
}

var secretEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

func encodeSecret(b []byte) string { return secretEncoding.EncodeToString(b) }

func decodeSecret(s string) ([]byte, error) {
	return secretEncoding.DecodeString(strings.ToUpper(strings.TrimSpace(s)))
}

// otpauthURL is the key URI authenticator apps read from a QR code.
func (a *Service) otpauthURL(rec *underhood.Record, secret string) string {
	issuer := strings.TrimSpace(a.records.Settings().Meta.AppName)
	if issuer == "" {
		issuer = "Underhood"
	}
	account := rec.String("email")
	if account == "" {
		account = rec.ID()
	}
	q := url.Values{}
	q.Set("secret", secret)
	q.Set("issuer", issuer)
	q.Set("algorithm", "SHA1")
	q.Set("digits", fmt.Sprint(totpDigits))
	q.Set("period", fmt.Sprint(totpPeriod))
	label := url.PathEscape(issuer) + ":" + url.PathEscape(account)
	return "otpauth://totp/" + label + "?" + q.Encode()
}

// newRecoveryCodes returns fresh recovery codes ("abcde-fghij") and the
// hashes to store. They carry 50 random bits each, so a plain SHA-256
// suffices to keep them from whoever reads the database.
func newRecoveryCodes() (codes, hashes []string) {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	for range recoveryCodeCount {
		b := []byte(randomChars(recoveryCodeChars, alphabet))
		code := string(b[:recoveryCodeChars/2]) + "-" + string(b[recoveryCodeChars/2:])
		codes = append(codes, code)
		hashes = append(hashes, hashRecoveryCode(code))
	}
	return codes, hashes
}

// hashRecoveryCode normalises code (case, dashes and spaces do not matter)
// and hashes it; "" for something that cannot be a recovery code.
func hashRecoveryCode(code string) string {
	norm := strings.ToLower(strings.NewReplacer("-", "", " ", "").Replace(code))
	if len(norm) != recoveryCodeChars {
		return ""
	}
	sum := sha256.Sum256([]byte(norm))
	return hex.EncodeToString(sum[:])
}

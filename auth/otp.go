package auth

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
)

// One-time passwords by email (PocketBase's request-otp and auth-with-otp):
// a numeric code mailed to the record's address, stored only as a bcrypt
// hash in a _otps row whose id the client holds, valid for OTP.Duration
// seconds and for one successful use.

// ScopeOTP is the per-identity attempt limit of one-time passwords; an
// OTP's identity is its id.
const ScopeOTP = "auth-with-otp"

const (
	msgOTPDisabled = "The collection is not configured to allow OTP authentication."
	msgOTPInvalid  = "Invalid or expired OTP"

	defaultOTPLifetimeS = 180
	defaultOTPLength    = 8
	maxOTPLength        = 71 // PocketBase's bound; bcrypt takes 72 bytes
)

// RequestOTP mails a one-time password to the record of coll whose email
// is email and returns the OTP's id, which auth-with-otp takes with the
// code. An id is returned whether or not there is such a record, and the
// answer takes as long, so it tells nothing about accounts; the code is
// made, stored and mailed in the background.
func (a *Service) RequestOTP(ctx context.Context, coll, email string) (_ string, err error) {
	defer underhood.Wrap(&err, "auth.RequestOTP(%s)", coll)
	c, err := a.authCollection(coll)
	if err != nil {
		return "", err
	}
	if !c.Auth.OTP.Enabled {
		return "", underhood.Errorf(underhood.EForbidden, msgOTPDisabled)
	}
	if err := checkEmailForm("email", email); err != nil {
		return "", err
	}
	if err := a.limitAttempt(ctx, ScopeRequestEmail, attemptKey(c, email)); err != nil {
		return "", err
	}
	start := time.Now()
	defer padTiming(ctx, start)
	otpID := underhood.NewID()
	rec, err := a.findByEmail(ctx, c, email)
	if err != nil {
		return "", err
	}
	if rec == nil {
		return otpID, nil
	}
	what := "otp email for " + c.Name + "/" + rec.ID()
	a.laterAfterFloor(ctx, start, what, func(ctx context.Context) error {
		if !a.mayMail(ctx, "otp", rec.String("email"), what) {
			return nil
		}
		return a.sendOTP(ctx, rec, otpID)
	})
	return otpID, nil
}

// sendOTP stores a new code for rec under otpID and mails it. A code that
// could not be mailed is deleted again.
func (a *Service) sendOTP(ctx context.Context, rec *underhood.Record, otpID string) error {
	c := rec.Collection
	length := c.Auth.OTP.Length
	if length <= 0 {
		length = defaultOTPLength
	}
	code := randomChars(min(length, maxOTPLength), "0123456789")
	to := rec.String("email")
	if _, err := a.createRow(ctx, record.OTPsName, rec, map[string]any{"id": otpID, "password": code, "sentTo": to}); err != nil {
		return err
	}
	a.deleteExpired(ctx, record.OTPsName, rec, c.Auth.OTP.Duration, defaultOTPLifetimeS)
	vars := map[string]string{"OTP": code, "OTP_ID": otpID}
	if err := a.sendMail(ctx, to, c.Auth.OTP.EmailTemplate, rec, vars); err != nil {
		if _, derr := a.deleteRow(ctx, record.OTPsName, otpID); derr != nil {
			err = fmt.Errorf("%w (and deleting the unsent otp: %v)", err, derr)
		}
		return err
	}
	return nil
}

// AuthWithOTP authenticates the record an OTP was sent to with its code.
// Every failure is the same 400, and an id that names no OTP costs as much
// time as a wrong code, so the answers tell nothing about accounts. A
// successful code is used up and, when it was sent to the record's current
// address, marks the record verified, as PocketBase does. mfaID continues
// a multi-factor login ("" for none).
func (a *Service) AuthWithOTP(ctx context.Context, coll, otpID, code, mfaID string) (_ *Result, err error) {
	defer underhood.Wrap(&err, "auth.AuthWithOTP(%s)", coll)
	c, err := a.authCollection(coll)
	if err != nil {
		return nil, err
	}
	if !c.Auth.OTP.Enabled {
		return nil, underhood.Errorf(underhood.EForbidden, msgOTPDisabled)
	}
	fields := map[string]any{}
	requireField(fields, "otpId", otpID)
	requireField(fields, "password", code)
	if len(otpID) > maxCredentialLength {
		fields["otpId"] = underhood.FieldError{Code: "validation_length_out_of_range", Message: fmt.Sprintf("The length must be between 1 and %d.", maxCredentialLength)}
	}
	if len(code) > maxOTPLength {
		fields["password"] = underhood.FieldError{Code: "validation_length_out_of_range", Message: fmt.Sprintf("The length must be between 1 and %d.", maxOTPLength)}
	}
	if len(fields) > 0 {
		return nil, underhood.Invalid(msgValidation, fields)
	}
	if err := a.limitAttempt(ctx, ScopeOTP, attemptKey(c, otpID)); err != nil {
		return nil, err
	}
	rec, row, err := a.otpOwner(ctx, c, otpID)
	if err != nil {
		return nil, err
	}
	if row == nil {
		a.equalizeOTPTiming(code)
		return nil, underhood.Errorf(underhood.EInvalid, msgOTPInvalid)
	}
	if !record.CheckPassword(row.String("password"), code) {
		return nil, underhood.Errorf(underhood.EInvalid, msgOTPInvalid)
	}
	consumed, err := a.deleteRow(ctx, record.OTPsName, row.ID())
	if err != nil {
		return nil, err
	}
	if !consumed {
		return nil, underhood.Errorf(underhood.EInvalid, msgOTPInvalid)
	}
	a.clearAttempts(ctx, ScopeOTP, attemptKey(c, otpID))

	sentTo := row.String("sentTo")
	if !rec.Bool("verified") && sentTo != "" && sentTo == rec.String("email") {
		// The code reached the address: it is proven. Done before the MFA
		// gate, which may still ask for a second factor.
		if _, err := a.records.Update(ctx, a.records.SystemRequest(), c.ID, rec.ID(), map[string]any{"verified": true}, ""); err != nil {
			a.log.Error("mark record verified after otp", "collection", c.Name, "record", rec.ID(), "err", err)
		} else {
			rec.Data["verified"] = true
		}
	}
	return a.finish(ctx, rec, MethodOTP, mfaID)
}

// otpOwner returns the unexpired _otps row otpID of collection c with the
// record it belongs to, or nil, nil when there is no such pair.
func (a *Service) otpOwner(ctx context.Context, c *underhood.Collection, otpID string) (*underhood.Record, *underhood.Record, error) {
	row, err := a.findRow(ctx, record.OTPsName, otpID)
	if err != nil || row == nil || row.String("collectionRef") != c.ID {
		return nil, nil, err
	}
	if a.expired(row, c.Auth.OTP.Duration, defaultOTPLifetimeS) {
		a.later(ctx, "delete expired otp", func(ctx context.Context) error {
			_, err := a.deleteRow(ctx, record.OTPsName, row.ID())
			return err
		})
		return nil, nil, nil
	}
	rec, err := a.records.FindRecord(ctx, c, row.String("recordRef"))
	if underhood.ErrorCode(err) == underhood.ENotFound {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("find otp owner: %w", err)
	}
	return rec, row, nil
}

// equalizeOTPTiming spends about as long as checking code against a
// stored OTP hash.
func (a *Service) equalizeOTPTiming(code string) {
	if otps, err := a.records.Collection(record.OTPsName); err == nil {
		a.equalizeTiming(otps, code)
	}
}

// deleteExpired deletes owner's rows of the system collection coll older
// than seconds (def when not positive). It only tidies up: failures are
// logged.
func (a *Service) deleteExpired(ctx context.Context, coll string, owner *underhood.Record, seconds, def int) {
	rows, err := a.ownRows(ctx, coll, owner)
	if err != nil {
		a.log.Warn("list expired rows", "collection", coll, "err", err)
		return
	}
	for _, row := range rows {
		if !a.expired(row, seconds, def) {
			continue
		}
		if _, err := a.deleteRow(ctx, coll, row.ID()); err != nil {
			a.log.Warn("delete expired row", "collection", coll, "err", err)
		}
	}
}

// randomChars returns n characters drawn uniformly from alphabet (at most
// 256 characters) with crypto/rand.
func randomChars(n int, alphabet string) string {
	// Bytes at or above limit would favour the first characters.
	limit := 256 - 256%len(alphabet)
	out := make([]byte, 0, n)
	buf := make([]byte, n+8)
	for len(out) < n {
		// rand.Read never fails on supported platforms (Go 1.24+ panics instead).
		_, _ = rand.Read(buf)
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out)
}

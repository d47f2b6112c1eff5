package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
)

// The email flows: verification, password reset and email change, each a
// request that mails a signed single-purpose token and a confirmation that
// redeems it. The request endpoints that take an address answer the same
// whether or not an account has it: the mail is rendered and sent in the
// background, and the answer takes at least requestFloor, so neither the
// status, the body nor the time tells.

// Mailer delivers the emails of the auth flows; mail.Service implements
// it over SMTP.
type Mailer interface {
	// SendTemplate renders tmpl for rec, with the app's placeholders
	// ({APP_NAME}, {APP_URL}, {RECORD:field}) and vars ({TOKEN}, {OTP}, …),
	// and delivers it to the address to.
	SendTemplate(ctx context.Context, to string, tmpl underhood.EmailTemplate, rec *underhood.Record, vars map[string]string) error
}

// ScopeRequestEmail is the per-identity limit of requests that send mail
// to an address (verification, password reset, OTP, email change).
const ScopeRequestEmail = "request-email"

const (
	// requestFloor is the least time a request endpoint that looks up an
	// address takes, so that a lookup that finds an account is not told
	// apart from one that does not.
	requestFloor = 25 * time.Millisecond
	// maxPendingMails bounds the emails being sent in the background; more
	// are dropped (and logged) rather than piling up goroutines.
	maxPendingMails = 64
	// mailTimeout bounds one background email: rendering, SMTP and all.
	mailTimeout = time.Minute
)

// Client-visible messages of the email flows; they match PocketBase's.
const (
	msgValidation          = "An error occurred while validating the submitted data."
	msgSuperusersVerified  = "All superusers are verified by default."
	msgSuperusersEmail     = "All superusers can change their emails directly."
	msgBadEmailToken       = "Invalid or expired token."
	msgInvalidPassword     = "Missing or invalid auth record password."
	msgInvalidNewEmail     = "The new email address is invalid."
	maxEmailLength         = 255
	randomPasswordLength   = 30
	randomPasswordAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
)

// mailState is the auth service's outbox: the mailer and the emails being
// sent in the background.
type mailState struct {
	mailer Mailer

	once    sync.Once
	slots   chan struct{} // one per email in flight
	mu      sync.Mutex    // guards closed and wg.Add
	closed  bool
	pending sync.WaitGroup
}

// UseMailer makes a send the emails of the auth flows with m. Without a
// mailer the request endpoints still answer as usual and the failure to
// send is logged. Call it before serving requests.
func (a *Service) UseMailer(m Mailer) { a.mail.mailer = m }

// Close waits until the emails being sent in the background are sent, or
// until ctx ends. Later requests send no more mail.
func (a *Service) Close(ctx context.Context) (err error) {
	defer underhood.Wrap(&err, "auth.Close")
	m := &a.mail
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	return a.waitMail(ctx)
}

// waitMail waits until no email is being sent in the background, or until
// ctx ends.
func (a *Service) waitMail(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		a.mail.pending.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for pending emails: %w", ctx.Err())
	}
}

// laterAfterFloor is later for a request that began at start and answers
// no earlier than start+requestFloor (padTiming): the job starts only then,
// so its work does not slow that answer, which would tell that an account
// was found.
func (a *Service) laterAfterFloor(ctx context.Context, start time.Time, what string, job func(ctx context.Context) error) {
	a.later(ctx, what, func(ctx context.Context) error {
		// A little past the floor, so the answer is on its way first.
		sleepUntil(ctx, start.Add(requestFloor+10*time.Millisecond))
		return job(ctx)
	})
}

// later runs job in the background, detached from the request (it keeps
// ctx's values, not its cancellation) and bounded by mailTimeout. Its error
// is logged with what, which must not contain secrets.
func (a *Service) later(ctx context.Context, what string, job func(ctx context.Context) error) {
	m := &a.mail
	m.once.Do(func() { m.slots = make(chan struct{}, maxPendingMails) })
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		a.log.Warn("auth service closed; email not sent", "what", what)
		return
	}
	select {
	case m.slots <- struct{}{}:
	default:
		m.mu.Unlock()
		a.log.Error("too many emails pending; email not sent", "what", what)
		return
	}
	m.pending.Add(1)
	m.mu.Unlock()
	go func() {
		defer func() {
			if p := recover(); p != nil {
				a.log.Error("email job panicked", "what", what, "panic", p)
			}
			<-m.slots
			m.pending.Done()
		}()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), mailTimeout)
		defer cancel()
		if err := job(ctx); err != nil {
			a.log.Error("email not sent", "what", what, "err", err)
		}
	}()
}

// ScopeMailRecipient limits the emails of one kind (verification,
// password reset, one-time password, email change) sent to one mailbox,
// whoever asks for them and from wherever: past it the requests are
// answered as usual and nothing is sent, so the limit tells nothing about
// accounts. Its rules are labelled "identity:mail-recipient".
const ScopeMailRecipient = "mail-recipient"

// mayMail counts one email of kind to the address to against the
// recipient's limit and reports whether it may be sent; what describes
// the email in the log, without the address.
func (a *Service) mayMail(ctx context.Context, kind, to, what string) bool {
	key := kind + "\x00" + strings.ToLower(strings.TrimSpace(to))
	err := a.limitAttempt(ctx, ScopeMailRecipient, key)
	switch underhood.ErrorCode(err) {
	case "":
		return true
	case underhood.ETooManyRequests:
		a.log.Info("email not sent: the recipient has had its emails of this kind", "what", what)
	default:
		a.log.Error("email not sent: cannot count the recipient's emails", "what", what, "err", err)
	}
	return false
}

// sendMail hands one email to the mailer.
func (a *Service) sendMail(ctx context.Context, to string, tmpl underhood.EmailTemplate, rec *underhood.Record, vars map[string]string) error {
	if a.mail.mailer == nil {
		return errors.New("no mailer configured")
	}
	return a.mail.mailer.SendTemplate(ctx, to, tmpl, rec, vars)
}

// padTiming sleeps until requestFloor has passed since start (or ctx ends).
func padTiming(ctx context.Context, start time.Time) {
	sleepUntil(ctx, start.Add(requestFloor))
}

// sleepUntil sleeps until t (or ctx ends).
func sleepUntil(ctx context.Context, until time.Time) {
	wait := time.Until(until)
	if wait <= 0 {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// RequestVerification mails a verification link to the unverified record
// of coll whose email is email. It answers nil whether or not there is
// one.
func (a *Service) RequestVerification(ctx context.Context, coll, email string) (err error) {
	defer underhood.Wrap(&err, "auth.RequestVerification(%s)", coll)
	c, err := a.authCollection(coll)
	if err != nil {
		return err
	}
	if c.IsSuperusers() {
		return underhood.Errorf(underhood.EInvalid, msgSuperusersVerified)
	}
	if err := checkEmailForm("email", email); err != nil {
		return err
	}
	if err := a.limitAttempt(ctx, ScopeRequestEmail, attemptKey(c, email)); err != nil {
		return err
	}
	start := time.Now()
	defer padTiming(ctx, start)
	rec, err := a.findByEmail(ctx, c, email)
	if err != nil || rec == nil || rec.Bool("verified") {
		return err
	}
	what := "verification email for " + c.Name + "/" + rec.ID()
	a.laterAfterFloor(ctx, start, what, func(ctx context.Context) error {
		if !a.mayMail(ctx, KindVerification, rec.String("email"), what) {
			return nil
		}
		token, err := signTokenWith(rec, KindVerification, a.now(), claims{Email: rec.String("email")})
		if err != nil {
			return err
		}
		return a.sendMail(ctx, rec.String("email"), c.Auth.VerificationTemplate, rec, map[string]string{"TOKEN": token})
	})
	return nil
}

// ConfirmVerification marks the record a verification token was issued to
// as verified, if its email is still the one the token was sent to.
func (a *Service) ConfirmVerification(ctx context.Context, coll, token string) (err error) {
	defer underhood.Wrap(&err, "auth.ConfirmVerification(%s)", coll)
	c, err := a.authCollection(coll)
	if err != nil {
		return err
	}
	if c.IsSuperusers() {
		return underhood.Errorf(underhood.EInvalid, msgSuperusersVerified)
	}
	if token == "" {
		return fieldInvalid("token", "validation_required", "Cannot be blank.")
	}
	rec, cl, err := a.recordFromToken(ctx, c, token, KindVerification)
	if err != nil {
		return err
	}
	if rec == nil || cl.Email == "" {
		return fieldInvalid("token", "validation_invalid_token", msgBadEmailToken)
	}
	if !strings.EqualFold(cl.Email, rec.String("email")) {
		return fieldInvalid("token", "validation_token_email_mismatch", "The record email doesn't match with the requested token claims.")
	}
	if rec.Bool("verified") {
		return nil
	}
	data := map[string]any{"verified": true}
	if !c.Auth.PasswordAuth.Enabled {
		// As PocketBase does: whoever set a password before the address
		// was proven must not keep it for the day password login is
		// switched on.
		p := randomChars(randomPasswordLength, randomPasswordAlphabet)
		data["password"], data["passwordConfirm"] = p, p
	}
	if _, err := a.records.Update(ctx, a.records.SystemRequest(), c.ID, rec.ID(), data, ""); err != nil {
		return fmt.Errorf("confirm verification: %w", err)
	}
	return nil
}

// RequestPasswordReset mails a password reset link to the record of coll
// whose email is email. It answers nil whether or not there is one.
func (a *Service) RequestPasswordReset(ctx context.Context, coll, email string) (err error) {
	defer underhood.Wrap(&err, "auth.RequestPasswordReset(%s)", coll)
	c, err := a.authCollection(coll)
	if err != nil {
		return err
	}
	if !c.Auth.PasswordAuth.Enabled {
		return underhood.Errorf(underhood.EInvalid, msgPasswordDisabled)
	}
	if err := checkEmailForm("email", email); err != nil {
		return err
	}
	if err := a.limitAttempt(ctx, ScopeRequestEmail, attemptKey(c, email)); err != nil {
		return err
	}
	start := time.Now()
	defer padTiming(ctx, start)
	rec, err := a.findByEmail(ctx, c, email)
	if err != nil || rec == nil {
		return err
	}
	what := "password reset email for " + c.Name + "/" + rec.ID()
	a.laterAfterFloor(ctx, start, what, func(ctx context.Context) error {
		if !a.mayMail(ctx, KindPasswordReset, rec.String("email"), what) {
			return nil
		}
		token, err := signTokenWith(rec, KindPasswordReset, a.now(), claims{Email: rec.String("email")})
		if err != nil {
			return err
		}
		return a.sendMail(ctx, rec.String("email"), c.Auth.ResetPasswordTemplate, rec, map[string]string{"TOKEN": token})
	})
	return nil
}

// ConfirmPasswordReset sets a new password for the record a password reset
// token was issued to. The new password rotates the record's token key, so
// every token issued before, this one included, stops working. A record
// that was not verified becomes verified when its email is still the one
// the token was sent to: the reset proved the address.
func (a *Service) ConfirmPasswordReset(ctx context.Context, coll, token, password, passwordConfirm string) (err error) {
	defer underhood.Wrap(&err, "auth.ConfirmPasswordReset(%s)", coll)
	c, err := a.authCollection(coll)
	if err != nil {
		return err
	}
	fields := map[string]any{}
	requireField(fields, "token", token)
	requireField(fields, "password", password)
	requireField(fields, "passwordConfirm", passwordConfirm)
	if _, blank := fields["passwordConfirm"]; !blank && password != passwordConfirm {
		fields["passwordConfirm"] = underhood.FieldError{Code: "validation_values_mismatch", Message: "Values don't match."}
	}
	if len(fields) > 0 {
		return underhood.Invalid(msgValidation, fields)
	}
	rec, cl, err := a.recordFromToken(ctx, c, token, KindPasswordReset)
	if err != nil {
		return err
	}
	if rec == nil {
		return fieldInvalid("token", "validation_invalid_token", msgBadEmailToken)
	}
	data := map[string]any{"password": password, "passwordConfirm": password}
	if !rec.Bool("verified") && cl.Email != "" && strings.EqualFold(cl.Email, rec.String("email")) {
		data["verified"] = true
	}
	if _, err := a.records.Update(ctx, a.records.SystemRequest(), c.ID, rec.ID(), data, ""); err != nil {
		return err
	}
	return nil
}

// RequestEmailChange mails a link that moves caller, an authenticated
// record of coll, to newEmail. Whether another account already uses
// newEmail is not checked here, which would tell the caller; the
// confirmation refuses it.
func (a *Service) RequestEmailChange(ctx context.Context, caller *underhood.Record, coll, newEmail string) (err error) {
	defer underhood.Wrap(&err, "auth.RequestEmailChange(%s)", coll)
	rec, err := a.callerRecord(ctx, caller, coll)
	if err != nil {
		return err
	}
	c := rec.Collection
	if c.IsSuperusers() {
		return underhood.Errorf(underhood.EInvalid, msgSuperusersEmail)
	}
	if err := checkEmailForm("newEmail", newEmail); err != nil {
		return err
	}
	if strings.EqualFold(newEmail, rec.String("email")) {
		return fieldInvalid("newEmail", "validation_not_in_invalid", "Must be a different email address.")
	}
	if err := a.limitAttempt(ctx, ScopeRequestEmail, attemptKey(c, rec.ID())); err != nil {
		return err
	}
	what := "email change email for " + c.Name + "/" + rec.ID()
	a.later(ctx, what, func(ctx context.Context) error {
		if !a.mayMail(ctx, KindEmailChange, newEmail, what) {
			return nil
		}
		token, err := signTokenWith(rec, KindEmailChange, a.now(), claims{Email: rec.String("email"), NewEmail: newEmail})
		if err != nil {
			return err
		}
		return a.sendMail(ctx, newEmail, c.Auth.ConfirmEmailChangeTemplate, rec, map[string]string{"TOKEN": token})
	})
	return nil
}

// ConfirmEmailChange moves the record an email change token was issued to
// to the token's new address, given the record's password. The address
// counts as verified (the token arrived there) and the record's token key
// rotates, so earlier tokens stop working.
func (a *Service) ConfirmEmailChange(ctx context.Context, coll, token, password string) (err error) {
	defer underhood.Wrap(&err, "auth.ConfirmEmailChange(%s)", coll)
	c, err := a.authCollection(coll)
	if err != nil {
		return err
	}
	if c.IsSuperusers() {
		return underhood.Errorf(underhood.EInvalid, msgSuperusersEmail)
	}
	fields := map[string]any{}
	requireField(fields, "token", token)
	requireField(fields, "password", password)
	if len(fields) > 0 {
		return underhood.Invalid(msgValidation, fields)
	}
	rec, cl, err := a.recordFromToken(ctx, c, token, KindEmailChange)
	if err != nil {
		return err
	}
	if rec == nil || cl.NewEmail == "" || !strings.EqualFold(cl.Email, rec.String("email")) {
		return fieldInvalid("token", "validation_invalid_token", msgBadEmailToken)
	}
	key := attemptKey(c, rec.String("email"))
	if err := a.limitAttempt(ctx, ScopePassword, key); err != nil {
		return err
	}
	if len(password) > maxCredentialLength || !record.CheckPassword(rec.String("password"), password) {
		return fieldInvalid("password", "validation_invalid_password", msgInvalidPassword)
	}
	a.clearAttempts(ctx, ScopePassword, key)
	other, err := a.findByEmail(ctx, c, cl.NewEmail)
	if err != nil {
		return err
	}
	if other != nil && other.ID() != rec.ID() {
		return fieldInvalid("token", "validation_invalid_token_email", msgInvalidNewEmail)
	}
	data := map[string]any{"email": cl.NewEmail, "verified": true}
	if _, err := a.records.Update(ctx, a.records.SystemRequest(), c.ID, rec.ID(), data, ""); err != nil {
		return err
	}
	return nil
}

// recordFromToken returns the record of c an email token of kind was
// issued to, with the token's verified claims. A token that is malformed,
// expired, of another kind or collection, or no longer valid for its
// record gives (nil, nil, nil); only a failing database is an error.
func (a *Service) recordFromToken(ctx context.Context, c *underhood.Collection, token, kind string) (*underhood.Record, *claims, error) {
	peeked, err := peekClaims(token)
	if err != nil || peeked.Type != kind || peeked.CollectionID != c.ID || !underhood.ValidID(peeked.RecordID) {
		return nil, nil, nil
	}
	rec, err := a.records.FindRecord(ctx, c, peeked.RecordID)
	if underhood.ErrorCode(err) == underhood.ENotFound {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("find token record: %w", err)
	}
	cl, err := verifyTokenClaims(token, rec, kind, a.now())
	if err != nil {
		return nil, nil, nil
	}
	return rec, cl, nil
}

// findByEmail returns the record of c with email (compared without case),
// or nil.
func (a *Service) findByEmail(ctx context.Context, c *underhood.Collection, email string) (*underhood.Record, error) {
	if c.Field("email") == nil {
		return nil, nil
	}
	rec, err := a.records.FindByField(ctx, c, "email", email)
	switch underhood.ErrorCode(err) {
	case "":
		return rec, nil
	case underhood.ENotFound:
		return nil, nil
	}
	return nil, fmt.Errorf("find record by email: %w", err)
}

// checkEmailForm validates an email address sent in field name.
func checkEmailForm(name, email string) error {
	switch {
	case email == "":
		return fieldInvalid(name, "validation_required", "Cannot be blank.")
	case len(email) > maxEmailLength:
		return fieldInvalid(name, "validation_length_out_of_range", fmt.Sprintf("The length must be between 1 and %d.", maxEmailLength))
	case !looksLikeEmail(email):
		return fieldInvalid(name, "validation_is_email", "Must be a valid email address.")
	}
	return nil
}

// requireField adds a "Cannot be blank." error for name to fields when v
// is empty.
func requireField(fields map[string]any, name, v string) {
	if v == "" {
		fields[name] = underhood.FieldError{Code: "validation_required", Message: "Cannot be blank."}
	}
}

// fieldInvalid is the validation error of one field.
func fieldInvalid(name, code, message string) error {
	return underhood.Invalid(msgValidation, map[string]any{name: underhood.FieldError{Code: code, Message: message}})
}

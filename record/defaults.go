package record

import (
	"fmt"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/sqlstore"
)

// Default token lifetimes in seconds, as PocketBase.
const (
	defaultAuthTokenDuration     = 604800 // 7 days
	superusersAuthTokenDuration  = 86400  // 1 day
	defaultPasswordResetDuration = 1800
	defaultEmailChangeDuration   = 1800
	defaultVerificationDuration  = 259200 // 3 days
	defaultFileTokenDuration     = 180
	defaultMFADuration           = 1800
	defaultOTPDuration           = 180
	defaultOTPLength             = 8
	tokenSecretLength            = 50
	tokenSecretAlphabet          = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	defaultUsersNameMax          = 255
	defaultUsersOwnRule          = "id = @request.auth.id"
	defaultTokenKeyAutogenerate  = "[a-zA-Z0-9]{50}"
	defaultTokenKeyMin           = 30
	defaultTokenKeyMax           = 60
)

// imageMimeTypes are the avatar types of the default users collection.
var imageMimeTypes = []string{"image/jpeg", "image/png", "image/svg+xml", "image/gif", "image/webp"}

func limitOf(v float64) *float64 { return &v }

func newIDField() *underhood.Field {
	return &underhood.Field{
		Name: "id", Type: underhood.FieldText, System: true, Required: true, PrimaryKey: true,
		Min: limitOf(15), Max: limitOf(15), Pattern: defaultIDPattern, AutogeneratePattern: defaultIDGenerator,
	}
}

func newPasswordField() *underhood.Field {
	return &underhood.Field{Name: "password", Type: underhood.FieldPassword, System: true, Hidden: true, Required: true, Min: limitOf(authPasswordMin)}
}

func newTokenKeyField() *underhood.Field {
	return &underhood.Field{
		Name: "tokenKey", Type: underhood.FieldText, System: true, Hidden: true, Required: true,
		Min: limitOf(defaultTokenKeyMin), Max: limitOf(defaultTokenKeyMax), AutogeneratePattern: defaultTokenKeyAutogenerate,
	}
}

func newEmailField() *underhood.Field {
	return &underhood.Field{Name: "email", Type: underhood.FieldEmail, System: true, Required: true}
}

func newSystemBool(name string) *underhood.Field {
	return &underhood.Field{Name: name, Type: underhood.FieldBool, System: true}
}

func newAutodateField(name string, onUpdate bool) *underhood.Field {
	return &underhood.Field{Name: name, Type: underhood.FieldAutodate, OnCreate: true, OnUpdate: onUpdate}
}

// newTokenSecret returns a random signing secret for a token kind.
func newTokenSecret() string {
	b := make([]byte, tokenSecretLength)
	for i := range b {
		b[i] = tokenSecretAlphabet[randomInt(len(tokenSecretAlphabet))]
	}
	return string(b)
}

// defaultAuthOptions returns the options of a new auth collection, with
// fresh token secrets; superusers get a one-day auth token.
func defaultAuthOptions(superusers bool) *underhood.AuthOptions {
	authDuration := defaultAuthTokenDuration
	if superusers {
		authDuration = superusersAuthTokenDuration
	}
	token := func(d int) underhood.TokenConfig { return underhood.TokenConfig{Duration: d, Secret: newTokenSecret()} }
	return &underhood.AuthOptions{
		AuthRule:     underhood.RuleOf(""),
		PasswordAuth: underhood.PasswordAuth{Enabled: true, IdentityFields: []string{"email"}},
		MFA:          underhood.MFAConfig{Duration: defaultMFADuration},
		OTP: underhood.OTPConfig{
			Duration: defaultOTPDuration, Length: defaultOTPLength,
			EmailTemplate: underhood.EmailTemplate{
				Subject: "OTP for {APP_NAME}",
				Body:    emailBody("Your one-time password is: <strong>{OTP}</strong>", "If you didn't ask for the one-time password, you can ignore this email."),
			},
		},
		AuthAlert: underhood.AuthAlert{
			Enabled: true,
			EmailTemplate: underhood.EmailTemplate{
				Subject: "Login from a new location",
				Body: emailBody("We noticed a login to your {APP_NAME} account from a new location:", "<em>{ALERT_INFO}</em>",
					"If this wasn't you, change your {APP_NAME} password right away to revoke access from all other locations.",
					"If this was you, you can ignore this email."),
			},
		},
		AuthToken:          token(authDuration),
		PasswordResetToken: token(defaultPasswordResetDuration),
		EmailChangeToken:   token(defaultEmailChangeDuration),
		VerificationToken:  token(defaultVerificationDuration),
		FileToken:          token(defaultFileTokenDuration),
		VerificationTemplate: underhood.EmailTemplate{
			Subject: "Verify your {APP_NAME} email",
			Body: emailBody("Thank you for joining {APP_NAME}.", "Click the button below to verify your email address.",
				emailButton("{APP_URL}/_/#/auth/confirm-verification/{TOKEN}", "Verify")),
		},
		ResetPasswordTemplate: underhood.EmailTemplate{
			Subject: "Reset your {APP_NAME} password",
			Body: emailBody("Click the button below to reset your password.",
				emailButton("{APP_URL}/_/#/auth/confirm-password-reset/{TOKEN}", "Reset password"),
				"If you didn't ask to reset your password, you can ignore this email."),
		},
		ConfirmEmailChangeTemplate: underhood.EmailTemplate{
			Subject: "Confirm your {APP_NAME} new email address",
			Body: emailBody("Click the button below to confirm your new email address.",
				emailButton("{APP_URL}/_/#/auth/confirm-email-change/{TOKEN}", "Confirm new email"),
				"If you didn't ask to change your email address, you can ignore this email."),
		},
	}
}

func emailButton(href, label string) string {
	return fmt.Sprintf(`<a class="btn" href="%s" target="_blank" rel="noopener">%s</a>`, href, label)
}

// emailBody wraps paragraphs in the greeting and signature every default
// email shares.
func emailBody(paragraphs ...string) string {
	body := "<p>Hello,</p>\n"
	for _, p := range paragraphs {
		body += "<p>" + p + "</p>\n"
	}
	return body + "<p>\n  Thanks,<br/>\n  {APP_NAME} team\n</p>"
}

// DefaultCollections returns the collections of a fresh install, ready to
// store: _superusers (system, superusers only) and users, as PocketBase
// creates them.
func DefaultCollections() []*underhood.Collection {
	superusers := &underhood.Collection{
		ID: underhood.SuperusersID, Name: underhood.SuperusersName, Type: underhood.TypeAuth, System: true,
		Fields: []*underhood.Field{
			newIDField(), newPasswordField(), newTokenKeyField(), newEmailField(),
			newSystemBool("emailVisibility"), newSystemBool("verified"),
			newAutodateField("created", false), newAutodateField("updated", true),
		},
		Auth: defaultAuthOptions(true),
	}
	users := &underhood.Collection{
		ID: underhood.UsersID, Name: underhood.UsersName, Type: underhood.TypeAuth,
		ListRule:   underhood.RuleOf(defaultUsersOwnRule),
		ViewRule:   underhood.RuleOf(defaultUsersOwnRule),
		CreateRule: underhood.RuleOf(""),
		UpdateRule: underhood.RuleOf(defaultUsersOwnRule),
		DeleteRule: underhood.RuleOf(defaultUsersOwnRule),
		Fields: []*underhood.Field{
			newIDField(), newPasswordField(), newTokenKeyField(), newEmailField(),
			newSystemBool("emailVisibility"), newSystemBool("verified"),
			{Name: "name", Type: underhood.FieldText, Max: limitOf(defaultUsersNameMax)},
			{Name: "avatar", Type: underhood.FieldFile, MaxSelect: 1, MimeTypes: append([]string(nil), imageMimeTypes...)},
			newAutodateField("created", false), newAutodateField("updated", true),
		},
		Auth: defaultAuthOptions(false),
	}
	users.Auth.OAuth2.MappedFields = map[string]string{"name": "name", "avatarURL": "avatar"}

	var out []*underhood.Collection
	for _, c := range []*underhood.Collection{superusers, users} {
		prepared, err := PrepareCollection(nil, c, out, nil)
		if err != nil {
			// The defaults are constants of the program: failing here is a bug.
			panic(fmt.Sprintf("default collection %s: %v", c.Name, err))
		}
		out = append(out, prepared)
	}
	return out
}

// ScaffoldCollections returns the templates the dashboard starts a new
// collection from, keyed by type: a base collection with its id field, an
// auth collection with its system fields, indexes and default options,
// and an empty view. Like PocketBase's, they have no id and no name.
func ScaffoldCollections() map[string]*underhood.Collection {
	indexID := underhood.RandomString(10) // names the auth indexes
	base := &underhood.Collection{Type: underhood.TypeBase, Fields: []*underhood.Field{newIDField()}, Indexes: []string{}}
	auth := &underhood.Collection{
		Type: underhood.TypeAuth,
		Fields: []*underhood.Field{
			newIDField(), newPasswordField(), newTokenKeyField(), newEmailField(),
			newSystemBool("emailVisibility"), newSystemBool("verified"),
		},
		Indexes: []string{
			(&sqlstore.Index{Unique: true, Name: "idx_tokenKey_" + indexID, Columns: []sqlstore.IndexColumn{{Name: "tokenKey"}}}).String(),
			(&sqlstore.Index{Unique: true, Name: "idx_email_" + indexID, Columns: []sqlstore.IndexColumn{{Name: "email", Collate: "NOCASE"}}, Where: "email != ''"}).String(),
		},
		Auth: defaultAuthOptions(false),
	}
	view := &underhood.Collection{Type: underhood.TypeView, Fields: []*underhood.Field{}, Indexes: []string{}}
	for _, c := range []*underhood.Collection{base, auth} {
		for _, f := range c.Fields {
			f.ID = f.Type + crc32String(f.Name)
		}
	}
	return map[string]*underhood.Collection{
		underhood.TypeBase: base,
		underhood.TypeAuth: auth,
		underhood.TypeView: view,
	}
}

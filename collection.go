package underhood

import (
	"encoding/json"
	"strings"
)

// Rule is an access rule: nil means superusers only, "" means anyone, any
// other value is a filter expression the record must satisfy for the caller.
type Rule = *string

// RuleOf returns a rule holding expr.
func RuleOf(expr string) Rule { return &expr }

// Collection is a schema: a named set of fields stored as one table, with
// the access rules that guard its records.
type Collection struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	Type      string   `json:"type"`
	System    bool     `json:"system"`
	Fields    []*Field `json:"fields"`
	Indexes   []string `json:"indexes"`
	ViewQuery string   `json:"viewQuery,omitempty"`

	ListRule   Rule `json:"listRule"`
	ViewRule   Rule `json:"viewRule"`
	CreateRule Rule `json:"createRule"`
	UpdateRule Rule `json:"updateRule"`
	DeleteRule Rule `json:"deleteRule"`

	// Auth holds the options of auth collections; nil for other types.
	Auth *AuthOptions `json:"-"`

	Created string `json:"created"`
	Updated string `json:"updated"`
}

// AuthOptions are the settings of an auth collection.
type AuthOptions struct {
	AuthRule   Rule `json:"authRule"`
	ManageRule Rule `json:"manageRule"`

	PasswordAuth PasswordAuth `json:"passwordAuth"`
	OAuth2       OAuth2Config `json:"oauth2"`
	MFA          MFAConfig    `json:"mfa"`
	OTP          OTPConfig    `json:"otp"`
	AuthAlert    AuthAlert    `json:"authAlert"`

	AuthToken          TokenConfig `json:"authToken"`
	PasswordResetToken TokenConfig `json:"passwordResetToken"`
	EmailChangeToken   TokenConfig `json:"emailChangeToken"`
	VerificationToken  TokenConfig `json:"verificationToken"`
	FileToken          TokenConfig `json:"fileToken"`

	VerificationTemplate       EmailTemplate `json:"verificationTemplate"`
	ResetPasswordTemplate      EmailTemplate `json:"resetPasswordTemplate"`
	ConfirmEmailChangeTemplate EmailTemplate `json:"confirmEmailChangeTemplate"`
}

// PasswordAuth configures identity/password login.
type PasswordAuth struct {
	Enabled        bool     `json:"enabled"`
	IdentityFields []string `json:"identityFields"`
}

// OAuth2Config configures OAuth2 login. Providers stay raw until the OAuth2
// capability interprets them.
type OAuth2Config struct {
	Enabled      bool              `json:"enabled"`
	MappedFields map[string]string `json:"mappedFields"`
	Providers    []json.RawMessage `json:"providers"`
}

// MFAConfig configures multi-factor authentication.
type MFAConfig struct {
	Enabled  bool   `json:"enabled"`
	Duration int    `json:"duration"`
	Rule     string `json:"rule"`
}

// OTPConfig configures one-time passwords sent by email.
type OTPConfig struct {
	Enabled       bool          `json:"enabled"`
	Duration      int           `json:"duration"`
	Length        int           `json:"length"`
	EmailTemplate EmailTemplate `json:"emailTemplate"`
}

// AuthAlert configures the new-device login alert.
type AuthAlert struct {
	Enabled       bool          `json:"enabled"`
	EmailTemplate EmailTemplate `json:"emailTemplate"`
}

// EmailTemplate is the subject and HTML body of one kind of email.
type EmailTemplate struct {
	Subject string `json:"subject"`
	Body    string `json:"body"`
}

// TokenConfig is a token kind's lifetime (seconds) and signing secret. The
// secret is never serialised to clients.
type TokenConfig struct {
	Duration int    `json:"duration"`
	Secret   string `json:"secret,omitempty"`
}

// IsAuth reports whether c is an auth collection.
func (c *Collection) IsAuth() bool { return c.Type == TypeAuth }

// IsView reports whether c is a read-only view collection.
func (c *Collection) IsView() bool { return c.Type == TypeView }

// IsSuperusers reports whether c is the _superusers collection.
func (c *Collection) IsSuperusers() bool { return c.Name == SuperusersName }

// Field returns the field named name (case-sensitive), or nil.
func (c *Collection) Field(name string) *Field {
	for _, f := range c.Fields {
		if f.Name == name {
			return f
		}
	}
	return nil
}

// FieldByID returns the field with the given id, or nil.
func (c *Collection) FieldByID(id string) *Field {
	for _, f := range c.Fields {
		if f.ID == id {
			return f
		}
	}
	return nil
}

// Is reports whether nameOrID names c (names are case-insensitive).
func (c *Collection) Is(nameOrID string) bool {
	return c.ID == nameOrID || strings.EqualFold(c.Name, nameOrID)
}

// Clone returns a deep copy of c.
func (c *Collection) Clone() *Collection {
	n := *c
	n.Fields = make([]*Field, len(c.Fields))
	for i, f := range c.Fields {
		n.Fields[i] = f.Clone()
	}
	n.Indexes = append([]string(nil), c.Indexes...)
	cpRule := func(r Rule) Rule {
		if r == nil {
			return nil
		}
		v := *r
		return &v
	}
	n.ListRule, n.ViewRule, n.CreateRule = cpRule(c.ListRule), cpRule(c.ViewRule), cpRule(c.CreateRule)
	n.UpdateRule, n.DeleteRule = cpRule(c.UpdateRule), cpRule(c.DeleteRule)
	if c.Auth != nil {
		a := *c.Auth
		a.AuthRule, a.ManageRule = cpRule(c.Auth.AuthRule), cpRule(c.Auth.ManageRule)
		a.PasswordAuth.IdentityFields = append([]string(nil), c.Auth.PasswordAuth.IdentityFields...)
		n.Auth = &a
	}
	return &n
}

type collectionJSON Collection

// MarshalJSON writes the collection in PocketBase's shape; auth collections
// carry their options inline, without token secrets.
func (c *Collection) MarshalJSON() ([]byte, error) {
	cc := *c
	if cc.Indexes == nil {
		cc.Indexes = []string{}
	}
	if cc.Fields == nil {
		cc.Fields = []*Field{}
	}
	base, err := json.Marshal((*collectionJSON)(&cc))
	if err != nil || c.Auth == nil {
		return base, err
	}
	a := *c.Auth
	for _, t := range []*TokenConfig{&a.AuthToken, &a.PasswordResetToken, &a.EmailChangeToken, &a.VerificationToken, &a.FileToken} {
		t.Secret = ""
	}
	if a.PasswordAuth.IdentityFields == nil {
		a.PasswordAuth.IdentityFields = []string{}
	}
	if a.OAuth2.Providers == nil {
		a.OAuth2.Providers = []json.RawMessage{}
	}
	if a.OAuth2.MappedFields == nil {
		a.OAuth2.MappedFields = map[string]string{}
	}
	extra, err := json.Marshal(&a)
	if err != nil {
		return nil, err
	}
	// Splice the two objects: {base..., extra...}.
	out := make([]byte, 0, len(base)+len(extra))
	out = append(out, base[:len(base)-1]...)
	out = append(out, ',')
	out = append(out, extra[1:]...)
	return out, nil
}

// UnmarshalJSON reads a collection in PocketBase's shape.
func (c *Collection) UnmarshalJSON(b []byte) error {
	var cj collectionJSON
	if err := json.Unmarshal(b, &cj); err != nil {
		return err
	}
	*c = Collection(cj)
	if c.Type == TypeAuth {
		var a AuthOptions
		if err := json.Unmarshal(b, &a); err != nil {
			return err
		}
		c.Auth = &a
	}
	return nil
}

// MarshalStorage writes the collection with its secrets, for the database.
func (c *Collection) MarshalStorage() ([]byte, error) {
	type stored struct {
		*collectionJSON
		Auth *AuthOptions `json:"auth,omitempty"`
	}
	return json.Marshal(stored{(*collectionJSON)(c), c.Auth})
}

// UnmarshalStorage reads what MarshalStorage wrote.
func (c *Collection) UnmarshalStorage(b []byte) error {
	var s struct {
		collectionJSON
		Auth *AuthOptions `json:"auth"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*c = Collection(s.collectionJSON)
	c.Auth = s.Auth
	return nil
}

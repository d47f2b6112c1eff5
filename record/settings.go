package record

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/mail"
	"net/netip"
	"net/url"
	"reflect"
	"slices"
	"strings"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/sqlstore"
)

// Settings are the application settings edited with /api/settings and
// persisted in the _params table under the key "settings".
type Settings struct {
	Meta         MetaSettings         `json:"meta"`
	SMTP         SMTPSettings         `json:"smtp"`
	S3           S3Settings           `json:"s3"`
	Backups      BackupSettings       `json:"backups"`
	Batch        BatchSettings        `json:"batch"`
	RateLimits   RateLimitSettings    `json:"rateLimits"`
	TrustedProxy TrustedProxySettings `json:"trustedProxy"`
	Logs         LogSettings          `json:"logs"`
	// SuperuserIPs, when not empty, are the only addresses and networks
	// ("203.0.113.7", "10.0.0.0/8") from which a superuser may sign in or
	// use a superuser's token. Underhood's own setting: PocketBase has none.
	SuperuserIPs []string `json:"superuserIPs"`
}

// MetaSettings name the application and its sender address.
type MetaSettings struct {
	AppName       string `json:"appName"`
	AppURL        string `json:"appURL"`
	SenderName    string `json:"senderName"`
	SenderAddress string `json:"senderAddress"`
	HideControls  bool   `json:"hideControls"`
}

// SMTPSettings configure outgoing mail. The password is write-only.
type SMTPSettings struct {
	Enabled    bool   `json:"enabled"`
	Host       string `json:"host"`
	Port       int    `json:"port"`
	Username   string `json:"username"`
	Password   string `json:"password,omitempty"`
	AuthMethod string `json:"authMethod"`
	TLS        bool   `json:"tls"`
	LocalName  string `json:"localName"`
}

// S3Settings configure an S3-compatible file store. The secret is write-only.
type S3Settings struct {
	Enabled        bool   `json:"enabled"`
	Bucket         string `json:"bucket"`
	Region         string `json:"region"`
	Endpoint       string `json:"endpoint"`
	AccessKey      string `json:"accessKey"`
	Secret         string `json:"secret,omitempty"`
	ForcePathStyle bool   `json:"forcePathStyle"`
}

// BackupSettings schedule automatic backups.
type BackupSettings struct {
	Cron        string     `json:"cron"`
	CronMaxKeep int        `json:"cronMaxKeep"`
	S3          S3Settings `json:"s3"`
}

// BatchSettings limit POST /api/batch.
type BatchSettings struct {
	Enabled     bool  `json:"enabled"`
	MaxRequests int   `json:"maxRequests"`
	Timeout     int   `json:"timeout"`     // seconds
	MaxBodySize int64 `json:"maxBodySize"` // bytes; 0 = default
}

// RateLimitSettings configure request rate limits.
type RateLimitSettings struct {
	Enabled bool            `json:"enabled"`
	Rules   []RateLimitRule `json:"rules"`
}

// RateLimitRule allows MaxRequests per Duration seconds for a label
// ("/api/", "POST /api/collections/users/auth-with-password", "*:create").
type RateLimitRule struct {
	Label       string `json:"label"`
	Audience    string `json:"audience"`
	Duration    int    `json:"duration"`
	MaxRequests int    `json:"maxRequests"`
}

// TrustedProxySettings say which headers carry the client IP.
type TrustedProxySettings struct {
	Headers       []string `json:"headers"`
	UseLeftmostIP bool     `json:"useLeftmostIP"`
}

// LogSettings configure the request log.
type LogSettings struct {
	MaxDays   int  `json:"maxDays"`
	MinLevel  int  `json:"minLevel"`
	LogIP     bool `json:"logIP"`
	LogAuthID bool `json:"logAuthId"`
}

// DefaultSettings are the settings of a fresh install.
func DefaultSettings() *Settings {
	return &Settings{
		Meta:         MetaSettings{AppName: "Acme", AppURL: "http://localhost:8090", SenderName: "Support", SenderAddress: "support@example.com"},
		SMTP:         SMTPSettings{Host: "smtp.example.com", Port: 587, AuthMethod: "PLAIN"},
		Backups:      BackupSettings{CronMaxKeep: 3},
		Batch:        BatchSettings{Enabled: true, MaxRequests: 50, Timeout: 3},
		RateLimits:   defaultRateLimits(),
		TrustedProxy: TrustedProxySettings{Headers: []string{}},
		Logs:         LogSettings{MaxDays: 5, LogIP: true},
		SuperuserIPs: []string{},
	}
}

const settingsKey = "settings"

func (s *Service) loadSettings(ctx context.Context) error {
	st := DefaultSettings()
	err := s.store.Read(ctx, func(q sqlstore.Querier) error {
		_, err := s.store.GetParam(ctx, q, settingsKey, st)
		return err
	})
	if err != nil {
		return fmt.Errorf("load settings: %w", err)
	}
	s.settings.Store(st)
	return nil
}

// Settings returns the current settings, secrets included. Adapters must
// use PublicSettings for anything they send to a client.
func (s *Service) Settings() Settings { return *s.settings.Load() }

// PublicSettings returns the settings for a superuser's eyes: write-only
// secrets are blanked.
func (s *Service) PublicSettings(auth *underhood.Record) (*Settings, error) {
	if err := s.AuthorizeAdmin(auth); err != nil {
		return nil, err
	}
	st := s.Settings()
	st.SMTP.Password = ""
	st.S3.Secret = ""
	st.Backups.S3.Secret = ""
	return &st, nil
}

// UpdateSettings merges a JSON patch (any subset of the sections) into the
// settings, validates the result and persists it. Write-only secrets sent
// empty keep their stored value.
func (s *Service) UpdateSettings(ctx context.Context, auth *underhood.Record, patch []byte) (_ *Settings, err error) {
	defer underhood.Wrap(&err, "record.UpdateSettings")
	if err := s.AuthorizeAdmin(auth); err != nil {
		return nil, err
	}
	s.schemaMu.Lock()
	defer s.schemaMu.Unlock()
	cur := s.Settings()
	next := cur
	// Decoding reuses a slice's array: give next its own, or a refused
	// patch would still have written into the live settings.
	next.RateLimits.Rules = slices.Clone(cur.RateLimits.Rules)
	next.TrustedProxy.Headers = slices.Clone(cur.TrustedProxy.Headers)
	next.SuperuserIPs = slices.Clone(cur.SuperuserIPs)
	if err := checkSettingsKeys(patch); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(patch))
	if err := dec.Decode(&next); err != nil {
		return nil, underhood.Errorf(underhood.EInvalid, "Failed to load the submitted data due to invalid formatting.")
	}
	if next.SuperuserIPs == nil {
		next.SuperuserIPs = []string{}
	}
	if next.SMTP.Password == "" {
		next.SMTP.Password = cur.SMTP.Password
	}
	if next.S3.Secret == "" {
		next.S3.Secret = cur.S3.Secret
	}
	if next.Backups.S3.Secret == "" {
		next.Backups.S3.Secret = cur.Backups.S3.Secret
	}
	if err := validateSettings(&next); err != nil {
		return nil, err
	}
	if err := refuseUnavailable(&cur, &next); err != nil {
		return nil, err
	}
	err = s.store.Write(ctx, func(q sqlstore.Querier) error {
		return s.store.SetParam(ctx, q, settingsKey, &next)
	})
	if err != nil {
		return nil, err
	}
	s.settings.Store(&next)
	return s.PublicSettings(auth)
}

func validateSettings(st *Settings) error {
	errs := map[string]any{}
	section := func(name string) map[string]any {
		m, _ := errs[name].(map[string]any)
		if m == nil {
			m = map[string]any{}
			errs[name] = m
		}
		return m
	}
	required := underhood.FieldError{Code: "validation_required", Message: "Cannot be blank."}
	if strings.TrimSpace(st.Meta.AppName) == "" {
		section("meta")["appName"] = required
	} else if len(st.Meta.AppName) > 255 {
		section("meta")["appName"] = underhood.FieldError{Code: "validation_length_too_long", Message: "The maximum length is 255."}
	}
	if u, err := url.Parse(st.Meta.AppURL); st.Meta.AppURL == "" || err != nil || u.Scheme == "" || u.Host == "" {
		section("meta")["appURL"] = underhood.FieldError{Code: "validation_is_url", Message: "Must be a valid URL."}
	}
	if st.Meta.SenderAddress != "" {
		if _, err := mail.ParseAddress(st.Meta.SenderAddress); err != nil {
			section("meta")["senderAddress"] = underhood.FieldError{Code: "validation_is_email", Message: "Must be a valid email address."}
		}
	}
	if st.SMTP.Enabled {
		if st.SMTP.Host == "" {
			section("smtp")["host"] = required
		}
		if st.SMTP.Port <= 0 || st.SMTP.Port > 65535 {
			section("smtp")["port"] = underhood.FieldError{Code: "validation_out_of_range", Message: "Must be a valid port."}
		}
	}
	if st.S3.Enabled {
		for name, v := range map[string]string{"bucket": st.S3.Bucket, "region": st.S3.Region, "endpoint": st.S3.Endpoint, "accessKey": st.S3.AccessKey, "secret": st.S3.Secret} {
			if v == "" {
				section("s3")[name] = required
			}
		}
	}
	if st.Batch.Enabled {
		if st.Batch.MaxRequests <= 0 {
			section("batch")["maxRequests"] = underhood.FieldError{Code: "validation_min_greater_equal_than_required", Message: "Must be no less than 1."}
		}
		if st.Batch.Timeout <= 0 {
			section("batch")["timeout"] = underhood.FieldError{Code: "validation_min_greater_equal_than_required", Message: "Must be no less than 1."}
		}
	}
	if st.Batch.MaxBodySize < 0 {
		section("batch")["maxBodySize"] = underhood.FieldError{Code: "validation_min_greater_equal_than_required", Message: "Must be no less than 0."}
	}
	if st.Logs.MaxDays < 0 {
		section("logs")["maxDays"] = underhood.FieldError{Code: "validation_min_greater_equal_than_required", Message: "Must be no less than 0."}
	}
	for i, v := range st.SuperuserIPs {
		if _, ok := parseAddressOrNetwork(v); !ok {
			errs["superuserIPs"] = map[string]any{fmt.Sprint(i): underhood.FieldError{Code: "validation_invalid_ip",
				Message: fmt.Sprintf("%q is not an IP address or a network in CIDR notation.", v)}}
			break
		}
	}
	for i, r := range st.RateLimits.Rules {
		if r.Label == "" || r.MaxRequests <= 0 || r.Duration <= 0 || !validAudience(r.Audience) {
			section("rateLimits")["rules"] = map[string]any{fmt.Sprint(i): underhood.FieldError{Code: "validation_invalid_rule", Message: "A rule needs a label, a positive duration and maxRequests, and an audience of \"\", \"@guest\" or \"@auth\"."}}
			break
		}
	}
	if len(errs) > 0 {
		return underhood.Invalid("An error occurred while submitting the form.", errs)
	}
	return nil
}

// checkSettingsKeys refuses a patch that names a setting Settings does not
// have: such a key used to be accepted and silently dropped, which let a
// caller believe it took effect. The 400 names every unknown key by its
// path ("meta.bogus").
func checkSettingsKeys(patch []byte) error {
	var doc any
	if err := json.Unmarshal(patch, &doc); err != nil {
		return underhood.Errorf(underhood.EInvalid, "Failed to load the submitted data due to invalid formatting.")
	}
	var unknown []string
	unknownKeys(doc, reflect.TypeFor[Settings](), "", &unknown)
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	data := map[string]any{}
	for _, k := range unknown {
		data[k] = underhood.FieldError{Code: "validation_unknown_setting", Message: "Unknown setting."}
	}
	return underhood.Invalid(fmt.Sprintf("Unknown settings: %s.", strings.Join(unknown, ", ")), data)
}

// unknownKeys appends to out the path of every object key in v that has
// no field in t (a struct, a slice of them, or a scalar).
func unknownKeys(v any, t reflect.Type, path string, out *[]string) {
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return // a type mismatch: the decoder reports it
		}
		fields := map[string]reflect.Type{}
		for f := range t.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name != "" && name != "-" {
				fields[name] = f.Type
			}
		}
		for k, kv := range obj {
			ft, ok := fields[k]
			if !ok {
				*out = append(*out, path+k)
				continue
			}
			unknownKeys(kv, ft, path+k+".", out)
		}
	case reflect.Slice:
		list, ok := v.([]any)
		if !ok {
			return
		}
		for i, item := range list {
			unknownKeys(item, t.Elem(), fmt.Sprintf("%s%d.", path, i), out)
		}
	}
}

// refuseUnavailable refuses a change of the settings of features that do
// not exist yet (request logs, backups): accepted, they would be stored
// and do nothing. Their defaults, and values already stored, pass, so a
// client that sends back the whole settings it read is not refused.
func refuseUnavailable(cur, next *Settings) error {
	def := DefaultSettings()
	errs := map[string]any{}
	sections := []struct {
		name          string
		cur, next, df any
		message       string
	}{
		{"logs", cur.Logs, next.Logs, def.Logs, "Request logs are not available yet."},
		{"backups", cur.Backups, next.Backups, def.Backups, "Backups are not available yet."},
	}
	for _, s := range sections {
		changed := changedFields(reflect.ValueOf(s.next), reflect.ValueOf(s.cur), reflect.ValueOf(s.df))
		if len(changed) == 0 {
			continue
		}
		m := map[string]any{}
		for _, f := range changed {
			m[f] = underhood.FieldError{Code: "validation_not_available", Message: s.message}
		}
		errs[s.name] = m
	}
	if len(errs) == 0 {
		return nil
	}
	msg := "Request logs are not available yet."
	if _, ok := errs["backups"]; ok {
		msg = "Backups are not available yet."
		if _, ok := errs["logs"]; ok {
			msg = "Backups and request logs are not available yet."
		}
	}
	return underhood.Invalid(msg+" Their settings keep their defaults.", errs)
}

// changedFields returns the JSON names of the fields of struct next that
// differ from both cur and def.
func changedFields(next, cur, def reflect.Value) []string {
	var out []string
	for i := range next.NumField() {
		n := next.Field(i).Interface()
		if n == cur.Field(i).Interface() || n == def.Field(i).Interface() {
			continue
		}
		name, _, _ := strings.Cut(next.Type().Field(i).Tag.Get("json"), ",")
		out = append(out, name)
	}
	return out
}

// parseAddressOrNetwork parses "203.0.113.7" or "10.0.0.0/8".
func parseAddressOrNetwork(s string) (netip.Prefix, bool) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, false
		}
		return p.Masked(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), true
}

// AddressIn reports whether addr is one of list's addresses or inside one
// of its networks (the form of the superuserIPs setting). Entries that do
// not parse match nothing.
func AddressIn(addr netip.Addr, list []string) bool {
	addr = addr.Unmap()
	for _, v := range list {
		if p, ok := parseAddressOrNetwork(v); ok && p.Contains(addr) {
			return true
		}
	}
	return false
}

package record

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	mrand "math/rand/v2"
	"net/mail"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/underhood/underhood"
)

// Limits applied when a field does not set its own.
const (
	defaultTextMax       = 5000    // text: runes
	defaultEditorMaxSize = 5 << 20 // editor: bytes
	defaultJSONMaxSize   = 1 << 20 // json: bytes
	authPasswordMin      = 8       // system password field of auth collections
	bcryptMaxBytes       = 72      // bcrypt ignores anything longer
)

func invalidValueError(msg string) underhood.FieldError {
	return underhood.FieldError{Code: "validation_invalid_value", Message: msg}
}

var requiredError = underhood.FieldError{Code: "validation_required", Message: "Cannot be blank."}

// ZeroValue returns the value a field holds when nothing was set: "" for
// text-like and single select/relation/file fields, 0 for numbers, false
// for bools, an empty list for multi-value fields, a nil json.RawMessage
// (JSON null) for json and {0,0} for geoPoint.
func ZeroValue(f *underhood.Field) any {
	switch f.Type {
	case underhood.FieldNumber:
		return float64(0)
	case underhood.FieldBool:
		return false
	case underhood.FieldJSON:
		return json.RawMessage(nil)
	case underhood.FieldGeoPoint:
		return underhood.GeoPoint{}
	case underhood.FieldSelect, underhood.FieldRelation, underhood.FieldFile:
		if f.IsMulti() {
			return []string{}
		}
	}
	return ""
}

// NormalizeValue converts a client value, as produced by decoding a JSON
// body into any (float64, string, bool, []any, map[string]any, nil) or a
// multipart form (string, []string), into the Go form the field stores
// (see underhood.Record). A value of the wrong kind is an
// underhood.FieldError; range and format checks are left to ValidateValue.
func NormalizeValue(f *underhood.Field, v any) (any, error) {
	switch f.Type {
	case underhood.FieldNumber:
		return normalizeNumber(v)
	case underhood.FieldBool:
		return normalizeBool(v)
	case underhood.FieldDate, underhood.FieldAutodate:
		return normalizeDate(v)
	case underhood.FieldSelect, underhood.FieldRelation, underhood.FieldFile:
		list, err := valueList(v)
		if err != nil {
			return nil, err
		}
		return listForField(f, list), nil
	case underhood.FieldJSON:
		return normalizeJSON(v)
	case underhood.FieldGeoPoint:
		return normalizeGeoPoint(v)
	case underhood.FieldEditor:
		// Sanitised on write, as the contract says: stored HTML is
		// served to browsers as it is.
		html, err := normalizeString(v)
		if err != nil {
			return nil, err
		}
		return sanitizeHTML(html), nil
	default: // text, email, url, password
		return normalizeString(v)
	}
}

// ApplyModifier returns the value of f after applying a write modifier to
// its current value cur: for numbers "+" adds and "-" subtracts v; for
// select, relation and file fields "+" appends, "+prefix" prepends and "-"
// removes the values in v (a single-value field keeps the last value, so
// "+" replaces it and "-" clears it when it is one of the removed values).
func ApplyModifier(f *underhood.Field, cur any, mod string, v any) (any, error) {
	switch f.Type {
	case underhood.FieldNumber:
		base, err := normalizeNumber(cur)
		if err != nil {
			base = 0
		}
		n, err := normalizeNumber(v)
		if err != nil {
			return nil, err
		}
		switch mod {
		case "+":
			return base + n, nil
		case "-":
			return base - n, nil
		}
	case underhood.FieldSelect, underhood.FieldRelation, underhood.FieldFile:
		current, err := valueList(cur)
		if err != nil {
			current = nil
		}
		values, err := valueList(v)
		if err != nil {
			return nil, err
		}
		switch mod {
		case "+":
			return listForField(f, append(current, values...)), nil
		case "+prefix":
			return listForField(f, append(values, current...)), nil
		case "-":
			drop := make(map[string]bool, len(values))
			for _, s := range values {
				drop[s] = true
			}
			kept := current[:0:0]
			for _, s := range current {
				if !drop[s] {
					kept = append(kept, s)
				}
			}
			return listForField(f, kept), nil
		}
	}
	return nil, underhood.FieldError{
		Code:    "validation_invalid_modifier",
		Message: fmt.Sprintf("The %q modifier is not supported by %s fields.", mod, f.Type),
	}
}

func normalizeString(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case json.Number:
		return x.String(), nil
	case bool:
		return strconv.FormatBool(x), nil
	case []string: // a repeated multipart field: the last one wins
		if len(x) == 0 {
			return "", nil
		}
		return x[len(x)-1], nil
	case []any:
		if len(x) == 0 {
			return "", nil
		}
		return normalizeString(x[len(x)-1])
	}
	return "", invalidValueError("Must be a string.")
}

func normalizeNumber(v any) (float64, error) {
	var n float64
	switch x := v.(type) {
	case nil:
		return 0, nil
	case float64:
		n = x
	case float32:
		n = float64(x)
	case int:
		n = float64(x)
	case int64:
		n = float64(x)
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return 0, invalidValueError("Must be a number.")
		}
		n = f
	case bool:
		if x {
			n = 1
		}
	case string:
		s := strings.TrimSpace(x)
		if s == "" {
			return 0, nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, invalidValueError("Must be a number.")
		}
		n = f
	case []string:
		if len(x) == 0 {
			return 0, nil
		}
		return normalizeNumber(x[len(x)-1])
	default:
		return 0, invalidValueError("Must be a number.")
	}
	if math.IsNaN(n) || math.IsInf(n, 0) {
		return 0, underhood.FieldError{Code: "validation_not_a_number", Message: "The submitted number is not properly formatted."}
	}
	return n, nil
}

func normalizeBool(v any) (bool, error) {
	switch x := v.(type) {
	case nil:
		return false, nil
	case bool:
		return x, nil
	case float64:
		return x != 0, nil
	case int:
		return x != 0, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "true", "1", "on", "yes":
			return true, nil
		case "false", "0", "off", "no", "":
			return false, nil
		}
	case []string:
		if len(x) == 0 {
			return false, nil
		}
		return normalizeBool(x[len(x)-1])
	}
	return false, invalidValueError("Must be a boolean.")
}

func normalizeDate(v any) (string, error) {
	var s string
	switch x := v.(type) {
	case nil:
		return "", nil
	case time.Time:
		return underhood.FormatTime(x), nil
	case string:
		s = strings.TrimSpace(x)
	case []string:
		if len(x) == 0 {
			return "", nil
		}
		return normalizeDate(x[len(x)-1])
	default:
		return "", invalidValueError("Must be a valid datetime.")
	}
	t, err := underhood.ParseTime(s)
	if err != nil {
		return "", invalidValueError("Must be a valid datetime.")
	}
	return underhood.FormatTime(t), nil
}

// valueList turns a select/relation/file value into a list of non-empty,
// unique strings in submission order. A string holding a JSON array (as
// multipart forms send lists) is decoded.
func valueList(v any) ([]string, error) {
	var out []string
	add := func(items ...string) {
		for _, s := range items {
			if s != "" && !listHas(out, s) {
				out = append(out, s)
			}
		}
	}
	switch x := v.(type) {
	case nil:
	case string:
		if t := strings.TrimSpace(x); strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]") {
			var items []any
			if err := json.Unmarshal([]byte(t), &items); err == nil {
				return valueList(items)
			}
		}
		add(x)
	case []string:
		for _, s := range x {
			l, err := valueList(s)
			if err != nil {
				return nil, err
			}
			add(l...)
		}
	case []any:
		for _, item := range x {
			s, err := scalarString(item)
			if err != nil {
				return nil, err
			}
			add(s)
		}
	case float64, json.Number:
		s, _ := scalarString(x)
		add(s)
	default:
		return nil, invalidValueError("Must be a string or a list of strings.")
	}
	return out, nil
}

func scalarString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case json.Number:
		return x.String(), nil
	case nil:
		return "", nil
	}
	return "", invalidValueError("Must be a string or a list of strings.")
}

// listForField returns list deduplicated in the form f stores: the list
// itself for multi-value fields, its last element (or "") otherwise, as
// PocketBase keeps the last selected value.
func listForField(f *underhood.Field, list []string) any {
	out := make([]string, 0, len(list))
	for _, s := range list {
		if s != "" && !listHas(out, s) {
			out = append(out, s)
		}
	}
	if f.IsMulti() {
		return out
	}
	if len(out) == 0 {
		return ""
	}
	return out[len(out)-1]
}

func listHas(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// normalizeJSON stores any JSON value as raw JSON. A string that is itself
// valid JSON is taken as that JSON (multipart forms can only send strings);
// any other string is stored as a JSON string. "" and nil are null.
func normalizeJSON(v any) (json.RawMessage, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		return rawJSON([]byte(x))
	case []byte:
		return rawJSON(x)
	case string:
		t := strings.TrimSpace(x)
		if t == "" {
			return nil, nil
		}
		if json.Valid([]byte(t)) {
			return compactJSON([]byte(t))
		}
		b, err := json.Marshal(x)
		if err != nil {
			return nil, invalidValueError("Must be a valid JSON value.")
		}
		return b, nil
	case []string: // repeated multipart field
		if len(x) == 1 {
			return normalizeJSON(x[0])
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, underhood.FieldError{Code: "validation_invalid_json", Message: "Must be a valid JSON value."}
	}
	return b, nil
}

func rawJSON(b []byte) (json.RawMessage, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	if !json.Valid(b) {
		return nil, underhood.FieldError{Code: "validation_invalid_json", Message: "Must be a valid JSON value."}
	}
	return compactJSON(b)
}

func compactJSON(b []byte) (json.RawMessage, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, underhood.FieldError{Code: "validation_invalid_json", Message: "Must be a valid JSON value."}
	}
	if buf.String() == "null" {
		return nil, nil
	}
	return buf.Bytes(), nil
}

func normalizeGeoPoint(v any) (underhood.GeoPoint, error) {
	bad := underhood.FieldError{Code: "validation_invalid_geo_point", Message: `Must be an object like {"lon":0,"lat":0}.`}
	switch x := v.(type) {
	case nil:
		return underhood.GeoPoint{}, nil
	case underhood.GeoPoint:
		return x, nil
	case *underhood.GeoPoint:
		if x == nil {
			return underhood.GeoPoint{}, nil
		}
		return *x, nil
	case []string:
		if len(x) == 0 {
			return underhood.GeoPoint{}, nil
		}
		return normalizeGeoPoint(x[len(x)-1])
	case string:
		t := strings.TrimSpace(x)
		if t == "" {
			return underhood.GeoPoint{}, nil
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(t), &m); err != nil {
			return underhood.GeoPoint{}, bad
		}
		return normalizeGeoPoint(m)
	case map[string]any:
		var p underhood.GeoPoint
		for key, dst := range map[string]*float64{"lon": &p.Lon, "lat": &p.Lat} {
			raw, ok := x[key]
			if !ok {
				continue
			}
			n, err := normalizeNumber(raw)
			if err != nil {
				return underhood.GeoPoint{}, bad
			}
			*dst = n
		}
		return p, nil
	}
	return underhood.GeoPoint{}, bad
}

// ValidateValue checks a normalised value against f's settings and returns
// the first problem found, or nil. Password fields are checked on their
// plaintext with ValidatePassword instead.
func ValidateValue(f *underhood.Field, v any) *underhood.FieldError {
	if f.Type == underhood.FieldPassword {
		return nil
	}
	if f.Required && isBlank(f, v) {
		fe := requiredError
		return &fe
	}
	var fe *underhood.FieldError
	switch f.Type {
	case underhood.FieldText:
		fe = validateText(f, v)
	case underhood.FieldEmail:
		fe = validateEmail(f, v)
	case underhood.FieldURL:
		fe = validateURL(f, v)
	case underhood.FieldEditor:
		fe = validateEditor(f, v)
	case underhood.FieldNumber:
		fe = validateNumber(f, v)
	case underhood.FieldBool:
		if _, ok := v.(bool); !ok {
			fe = fieldErrPtr(invalidValueError("Must be a boolean."))
		}
	case underhood.FieldDate, underhood.FieldAutodate:
		fe = validateDate(f, v)
	case underhood.FieldSelect, underhood.FieldRelation, underhood.FieldFile:
		fe = validateList(f, v)
	case underhood.FieldJSON:
		fe = validateJSON(f, v)
	case underhood.FieldGeoPoint:
		fe = validateGeoPoint(v)
	}
	return fe
}

func fieldErrPtr(fe underhood.FieldError) *underhood.FieldError { return &fe }

// isBlank reports whether v is the "empty" value of f, which a required
// field refuses: "", 0, false, an empty list, JSON null/""/[]/{} and the
// {0,0} geoPoint.
func isBlank(f *underhood.Field, v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case float64:
		return x == 0
	case bool:
		return !x
	case []string:
		return len(x) == 0
	case json.RawMessage:
		switch strings.TrimSpace(string(x)) {
		case "", "null", `""`, "[]", "{}":
			return true
		}
		return false
	case underhood.GeoPoint:
		return x.Lon == 0 && x.Lat == 0
	}
	return false
}

func validateText(f *underhood.Field, v any) *underhood.FieldError {
	s, ok := v.(string)
	if !ok {
		return fieldErrPtr(invalidValueError("Must be a string."))
	}
	if s == "" {
		return nil
	}
	n := utf8.RuneCountInString(s)
	if f.Min != nil && *f.Min > 0 && n < int(*f.Min) {
		return fieldErrPtr(minLengthError(int(*f.Min)))
	}
	max := defaultTextMax
	if f.Max != nil && *f.Max > 0 {
		max = int(*f.Max)
	}
	if n > max {
		return fieldErrPtr(maxLengthError(max))
	}
	return checkPattern(f.Pattern, s)
}

func minLengthError(min int) underhood.FieldError {
	return underhood.FieldError{
		Code:    "validation_min_text_constraint",
		Message: fmt.Sprintf("Must be at least %d character(s).", min),
		Params:  map[string]any{"min": min},
	}
}

func maxLengthError(max int) underhood.FieldError {
	return underhood.FieldError{
		Code:    "validation_max_text_constraint",
		Message: fmt.Sprintf("Must be no more than %d character(s).", max),
		Params:  map[string]any{"max": max},
	}
}

func checkPattern(pattern, s string) *underhood.FieldError {
	if pattern == "" {
		return nil
	}
	re := defaultIDPatternRe
	if pattern != defaultIDPattern {
		re, _ = regexp.Compile(pattern) // nil when invalid: nothing matches
	}
	if re == nil || !re.MatchString(s) {
		return fieldErrPtr(underhood.FieldError{Code: "validation_invalid_format", Message: "Invalid value format."})
	}
	return nil
}

// validEmail reports whether s is a bare address (no display name, no
// angle brackets) with a dotted or at least non-empty domain.
func validEmail(s string) bool {
	if len(s) > 254 || strings.ContainsAny(s, " <>\"") {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	return at > 0 && validDomain(s[at+1:])
}

var domainLabel = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$`)

func validDomain(d string) bool {
	if d == "" || len(d) > 253 {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if !domainLabel.MatchString(label) {
			return false
		}
	}
	return true
}

func validateEmail(f *underhood.Field, v any) *underhood.FieldError {
	s, ok := v.(string)
	if !ok {
		return fieldErrPtr(invalidValueError("Must be a string."))
	}
	if s == "" {
		return nil
	}
	if !validEmail(s) {
		return fieldErrPtr(underhood.FieldError{Code: "validation_is_email", Message: "Must be a valid email address."})
	}
	domain := s[strings.LastIndexByte(s, '@')+1:]
	if !domainAllowed(domain, f.OnlyDomains, f.ExceptDomains) {
		return fieldErrPtr(underhood.FieldError{Code: "validation_email_domain_not_allowed", Message: "Email domain is not allowed."})
	}
	return nil
}

func validateURL(f *underhood.Field, v any) *underhood.FieldError {
	s, ok := v.(string)
	if !ok {
		return fieldErrPtr(invalidValueError("Must be a string."))
	}
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Hostname() == "" || strings.ContainsAny(s, " \t\n") {
		return fieldErrPtr(underhood.FieldError{Code: "validation_is_url", Message: "Must be a valid url."})
	}
	if !domainAllowed(u.Hostname(), f.OnlyDomains, f.ExceptDomains) {
		return fieldErrPtr(underhood.FieldError{Code: "validation_url_domain_not_allowed", Message: "Url domain is not allowed."})
	}
	return nil
}

func domainAllowed(domain string, only, except []string) bool {
	in := func(list []string) bool {
		for _, d := range list {
			if strings.EqualFold(d, domain) {
				return true
			}
		}
		return false
	}
	if len(only) > 0 {
		return in(only)
	}
	return !in(except)
}

func validateEditor(f *underhood.Field, v any) *underhood.FieldError {
	s, ok := v.(string)
	if !ok {
		return fieldErrPtr(invalidValueError("Must be a string."))
	}
	max := int64(defaultEditorMaxSize)
	if f.MaxSize > 0 {
		max = f.MaxSize
	}
	if int64(len(s)) > max {
		return fieldErrPtr(underhood.FieldError{
			Code:    "validation_content_size_limit",
			Message: fmt.Sprintf("The maximum allowed content size is %d bytes.", max),
			Params:  map[string]any{"maxSize": max},
		})
	}
	return nil
}

func validateNumber(f *underhood.Field, v any) *underhood.FieldError {
	n, ok := v.(float64)
	if !ok {
		return fieldErrPtr(invalidValueError("Must be a number."))
	}
	if math.IsNaN(n) || math.IsInf(n, 0) {
		return fieldErrPtr(underhood.FieldError{Code: "validation_not_a_number", Message: "The submitted number is not properly formatted."})
	}
	// As in PocketBase, 0 is the empty value: only "required" applies to it.
	if n == 0 {
		return nil
	}
	if f.OnlyInt && n != math.Trunc(n) {
		return fieldErrPtr(underhood.FieldError{Code: "validation_only_int_constraint", Message: "Decimal numbers are not allowed."})
	}
	if f.Min != nil && n < *f.Min {
		return fieldErrPtr(underhood.FieldError{
			Code:    "validation_min_number_constraint",
			Message: "Must be larger than " + formatNumber(*f.Min) + ".",
			Params:  map[string]any{"min": *f.Min},
		})
	}
	if f.Max != nil && n > *f.Max {
		return fieldErrPtr(underhood.FieldError{
			Code:    "validation_max_number_constraint",
			Message: "Must be less than " + formatNumber(*f.Max) + ".",
			Params:  map[string]any{"max": *f.Max},
		})
	}
	return nil
}

func formatNumber(n float64) string { return strconv.FormatFloat(n, 'f', -1, 64) }

func validateDate(f *underhood.Field, v any) *underhood.FieldError {
	s, ok := v.(string)
	if !ok {
		return fieldErrPtr(invalidValueError("Must be a valid datetime."))
	}
	if s == "" {
		return nil
	}
	t, err := underhood.ParseTime(s)
	if err != nil {
		return fieldErrPtr(invalidValueError("Must be a valid datetime."))
	}
	if f.Type != underhood.FieldDate {
		return nil
	}
	if min, err := underhood.ParseTime(f.DateMin); err == nil && !min.IsZero() && t.Before(min) {
		return fieldErrPtr(underhood.FieldError{
			Code:    "validation_min_greater_equal_than_required",
			Message: "Must be no less than " + underhood.FormatTime(min) + ".",
			Params:  map[string]any{"threshold": underhood.FormatTime(min)},
		})
	}
	if max, err := underhood.ParseTime(f.DateMax); err == nil && !max.IsZero() && t.After(max) {
		return fieldErrPtr(underhood.FieldError{
			Code:    "validation_max_less_equal_than_required",
			Message: "Must be no greater than " + underhood.FormatTime(max) + ".",
			Params:  map[string]any{"threshold": underhood.FormatTime(max)},
		})
	}
	return nil
}

func validateList(f *underhood.Field, v any) *underhood.FieldError {
	var list []string
	switch x := v.(type) {
	case string:
		if x != "" {
			list = []string{x}
		}
	case []string:
		list = x
	default:
		return fieldErrPtr(invalidValueError("Must be a string or a list of strings."))
	}
	for _, s := range list {
		switch f.Type {
		case underhood.FieldSelect:
			if !listHas(f.Values, s) {
				return fieldErrPtr(underhood.FieldError{
					Code:    "validation_invalid_value",
					Message: fmt.Sprintf("Invalid value %s.", s),
					Params:  map[string]any{"value": s},
				})
			}
		case underhood.FieldRelation:
			if !underhood.ValidID(s) {
				return fieldErrPtr(underhood.FieldError{
					Code:    "validation_invalid_value",
					Message: fmt.Sprintf("Invalid record id %q.", s),
					Params:  map[string]any{"value": s},
				})
			}
		}
	}
	if f.Type == underhood.FieldRelation && f.MinSelect > 0 && len(list) > 0 && len(list) < f.MinSelect {
		return fieldErrPtr(underhood.FieldError{
			Code:    "validation_not_enough_values",
			Message: fmt.Sprintf("Select at least %d.", f.MinSelect),
			Params:  map[string]any{"minSelect": f.MinSelect},
		})
	}
	max := f.MaxSelect
	if max < 1 {
		max = 1
	}
	if len(list) > max {
		return fieldErrPtr(underhood.FieldError{
			Code:    "validation_too_many_values",
			Message: fmt.Sprintf("Select no more than %d.", max),
			Params:  map[string]any{"maxSelect": max},
		})
	}
	return nil
}

func validateJSON(f *underhood.Field, v any) *underhood.FieldError {
	raw, ok := v.(json.RawMessage)
	if !ok {
		return fieldErrPtr(underhood.FieldError{Code: "validation_invalid_json", Message: "Must be a valid JSON value."})
	}
	if len(raw) == 0 {
		return nil
	}
	if !json.Valid(raw) {
		return fieldErrPtr(underhood.FieldError{Code: "validation_invalid_json", Message: "Must be a valid JSON value."})
	}
	max := int64(defaultJSONMaxSize)
	if f.MaxSize > 0 {
		max = f.MaxSize
	}
	if int64(len(raw)) > max {
		return fieldErrPtr(underhood.FieldError{
			Code:    "validation_json_size_limit",
			Message: fmt.Sprintf("The maximum allowed JSON size is %d bytes.", max),
			Params:  map[string]any{"maxSize": max},
		})
	}
	return nil
}

func validateGeoPoint(v any) *underhood.FieldError {
	p, ok := v.(underhood.GeoPoint)
	if !ok {
		return fieldErrPtr(underhood.FieldError{Code: "validation_invalid_geo_point", Message: `Must be an object like {"lon":0,"lat":0}.`})
	}
	if p.Lon < -180 || p.Lon > 180 || p.Lat < -90 || p.Lat > 90 || math.IsNaN(p.Lon) || math.IsNaN(p.Lat) {
		return fieldErrPtr(underhood.FieldError{
			Code:    "validation_invalid_geo_point",
			Message: "Invalid coordinates: lon must be between -180 and 180 and lat between -90 and 90.",
		})
	}
	return nil
}

// ValidatePassword checks a submitted plaintext password against f before
// it is hashed: required, min length in characters (8 by default for the
// system password field of auth collections), max length (never more than
// the 72 bytes bcrypt reads) and pattern.
func ValidatePassword(f *underhood.Field, plain string) *underhood.FieldError {
	if plain == "" {
		if f.Required {
			fe := requiredError
			return &fe
		}
		return nil
	}
	min := 0
	if f.Min != nil {
		min = int(*f.Min)
	} else if f.System {
		min = authPasswordMin
	}
	if n := utf8.RuneCountInString(plain); min > 0 && n < min {
		return fieldErrPtr(minLengthError(min))
	}
	if f.Max != nil && *f.Max > 0 && utf8.RuneCountInString(plain) > int(*f.Max) {
		return fieldErrPtr(maxLengthError(int(*f.Max)))
	}
	if len(plain) > bcryptMaxBytes {
		return fieldErrPtr(underhood.FieldError{
			Code:    "validation_max_text_constraint",
			Message: fmt.Sprintf("Must be no more than %d bytes.", bcryptMaxBytes),
			Params:  map[string]any{"max": bcryptMaxBytes},
		})
	}
	return checkPattern(f.Pattern, plain)
}

// Autogenerate returns a random string matching pattern, a small subset of
// regular expressions that covers what autogenerate patterns use: literal
// characters (escaped with \ when special), character classes with ranges
// ([a-z0-9], [A-Z_-]), the \d \w \s shorthands, and {n} or {n,m} counts.
// An unsupported pattern yields a 15 character [a-z0-9] string; use
// PrepareCollection (which rejects such patterns) to catch them early.
func Autogenerate(pattern string) string {
	items := defaultIDItems
	if pattern != defaultIDGenerator {
		var err error
		if items, err = parseAutogenerate(pattern); err != nil {
			return underhood.NewID()
		}
	}
	// One read of the system's randomness seeds a ChaCha8 stream, itself
	// a cryptographically secure generator, for the whole value.
	var seed [32]byte
	_, _ = rand.Read(seed[:])
	rng := mrand.New(mrand.NewChaCha8(seed))
	var b strings.Builder
	for _, it := range items {
		n := it.min
		if it.max > it.min {
			n += rng.IntN(it.max - it.min + 1)
		}
		for i := 0; i < n; i++ {
			b.WriteRune(it.chars[rng.IntN(len(it.chars))])
		}
	}
	return b.String()
}

// The id of every record is generated and checked with the default
// patterns unless its collection sets others: they are parsed once, not
// on every create.
var (
	defaultIDPatternRe = regexp.MustCompile(defaultIDPattern)
	defaultIDItems     = mustParseAutogenerate(defaultIDGenerator)
)

func mustParseAutogenerate(pattern string) []genItem {
	items, err := parseAutogenerate(pattern)
	if err != nil {
		panic(fmt.Sprintf("autogenerate pattern %q: %v", pattern, err))
	}
	return items
}

// genItem is one element of an autogenerate pattern: a set of characters
// repeated between min and max times.
type genItem struct {
	chars    []rune
	min, max int
}

const maxAutogenerateRepeat = 1000

// parseAutogenerate parses the pattern subset Autogenerate supports.
func parseAutogenerate(pattern string) ([]genItem, error) {
	if pattern == "" {
		return nil, fmt.Errorf("empty pattern")
	}
	rs := []rune(pattern)
	var items []genItem
	for i := 0; i < len(rs); {
		var set []rune
		switch rs[i] {
		case '[':
			end := i + 1
			for end < len(rs) && rs[end] != ']' {
				if rs[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(rs) {
				return nil, fmt.Errorf("unterminated character class at %d", i+1)
			}
			s, err := parseClass(rs[i+1 : end])
			if err != nil {
				return nil, err
			}
			set = s
			i = end + 1
		case '\\':
			if i+1 >= len(rs) {
				return nil, fmt.Errorf("trailing backslash")
			}
			set = escapeSet(rs[i+1])
			i += 2
		case '(', ')', '|', '*', '+', '?', '{', '}', '.', '^', '$', ']':
			return nil, fmt.Errorf("unsupported %q at %d", rs[i], i+1)
		default:
			set = []rune{rs[i]}
			i++
		}
		it := genItem{chars: set, min: 1, max: 1}
		if i < len(rs) && rs[i] == '{' {
			end := i + 1
			for end < len(rs) && rs[end] != '}' {
				end++
			}
			if end >= len(rs) {
				return nil, fmt.Errorf("unterminated count at %d", i+1)
			}
			lo, hi, err := parseCount(string(rs[i+1 : end]))
			if err != nil {
				return nil, err
			}
			it.min, it.max = lo, hi
			i = end + 1
		}
		items = append(items, it)
	}
	return items, nil
}

func parseCount(s string) (int, int, error) {
	lo, hi, ranged := strings.Cut(s, ",")
	a, err := strconv.Atoi(strings.TrimSpace(lo))
	if err != nil || a < 0 || a > maxAutogenerateRepeat {
		return 0, 0, fmt.Errorf("invalid count {%s}", s)
	}
	if !ranged {
		return a, a, nil
	}
	b, err := strconv.Atoi(strings.TrimSpace(hi))
	if err != nil || b < a || b > maxAutogenerateRepeat {
		return 0, 0, fmt.Errorf("invalid count {%s}", s)
	}
	return a, b, nil
}

const (
	digitChars = "0123456789"
	lowerChars = "abcdefghijklmnopqrstuvwxyz"
	upperChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
)

func escapeSet(r rune) []rune {
	switch r {
	case 'd':
		return []rune(digitChars)
	case 'w':
		return []rune(lowerChars + upperChars + digitChars + "_")
	case 's':
		return []rune(" ")
	}
	return []rune{r}
}

func parseClass(rs []rune) ([]rune, error) {
	if len(rs) == 0 {
		return nil, fmt.Errorf("empty character class")
	}
	if rs[0] == '^' {
		return nil, fmt.Errorf("negated character classes are not supported")
	}
	var set []rune
	add := func(r ...rune) {
		for _, x := range r {
			if !strings.ContainsRune(string(set), x) {
				set = append(set, x)
			}
		}
	}
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		if r == '\\' && i+1 < len(rs) {
			add(escapeSet(rs[i+1])...)
			i++
			continue
		}
		if i+2 < len(rs) && rs[i+1] == '-' {
			hi := rs[i+2]
			if hi < r {
				return nil, fmt.Errorf("invalid range %c-%c", r, hi)
			}
			for x := r; x <= hi; x++ {
				add(x)
			}
			i += 2
			continue
		}
		add(r)
	}
	return set, nil
}

// randomInt returns a uniform random int in [0, n) from crypto/rand.
func randomInt(n int) int {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		// crypto/rand does not fail on supported platforms.
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return int(v.Int64())
}

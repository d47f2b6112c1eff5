package record

import (
	"encoding/json"
	"fmt"
	"math"
	"net/mail"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/underhood/underhood"
)

// This file checks a normalised value against its field's settings.

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

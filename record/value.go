package record

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/underhood/underhood"
)

// This file turns what a client sends into the stored form of a field's
// value (NormalizeValue), and applies the field modifiers (+, -).

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

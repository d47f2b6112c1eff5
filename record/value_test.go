package record

import (
	"encoding/json"
	"errors"
	"math"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/underhood/underhood"
)

func valField(typ string, opts ...func(*underhood.Field)) *underhood.Field {
	f := &underhood.Field{ID: typ + "1", Name: "f", Type: typ}
	for _, o := range opts {
		o(f)
	}
	return f
}

func withMaxSelect(n int) func(*underhood.Field) { return func(f *underhood.Field) { f.MaxSelect = n } }

func asRequired(f *underhood.Field) { f.Required = true }

// fieldErrorCode returns the FieldError code of err ("" for nil, "?" for
// an error of another type).
func fieldErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var fe underhood.FieldError
	if errors.As(err, &fe) {
		return fe.Code
	}
	return "?"
}

func TestNormalizeValue(t *testing.T) {
	tests := []struct {
		name    string
		field   *underhood.Field
		in      any
		want    any
		wantErr string
	}{
		{"text string", valField("text"), "hello", "hello", ""},
		{"text nil", valField("text"), nil, "", ""},
		{"text number", valField("text"), 12.5, "12.5", ""},
		{"text integer number", valField("text"), float64(3), "3", ""},
		{"text bool", valField("text"), true, "true", ""},
		{"text repeated multipart keeps last", valField("text"), []string{"a", "b"}, "b", ""},
		{"text object", valField("text"), map[string]any{"a": 1}, nil, "validation_invalid_value"},
		{"email", valField("email"), "a@b.co", "a@b.co", ""},
		{"editor", valField("editor"), "<p>x</p>", "<p>x</p>", ""},
		{"number float", valField("number"), 1.5, 1.5, ""},
		{"number string", valField("number"), " 42 ", float64(42), ""},
		{"number empty string", valField("number"), "", float64(0), ""},
		{"number nil", valField("number"), nil, float64(0), ""},
		{"number bad string", valField("number"), "12abc", nil, "validation_invalid_value"},
		{"number NaN string", valField("number"), "NaN", nil, "validation_not_a_number"},
		{"number list", valField("number"), []any{1.0}, nil, "validation_invalid_value"},
		{"number multipart", valField("number"), []string{"7"}, float64(7), ""},
		{"bool true", valField("bool"), true, true, ""},
		{"bool string true", valField("bool"), "true", true, ""},
		{"bool string 1", valField("bool"), "1", true, ""},
		{"bool string on", valField("bool"), "on", true, ""},
		{"bool string false", valField("bool"), "false", false, ""},
		{"bool string 0", valField("bool"), "0", false, ""},
		{"bool empty", valField("bool"), "", false, ""},
		{"bool number", valField("bool"), float64(1), true, ""},
		{"bool garbage", valField("bool"), "maybe", nil, "validation_invalid_value"},
		{"date layout", valField("date"), "2024-01-02 03:04:05.678Z", "2024-01-02 03:04:05.678Z", ""},
		{"date rfc3339 offset", valField("date"), "2024-01-02T05:04:05+02:00", "2024-01-02 03:04:05.000Z", ""},
		{"date only", valField("date"), "2024-01-02", "2024-01-02 00:00:00.000Z", ""},
		{"date no zone", valField("date"), "2024-01-02 03:04:05", "2024-01-02 03:04:05.000Z", ""},
		{"date empty", valField("date"), "", "", ""},
		{"date garbage", valField("date"), "tomorrow", nil, "validation_invalid_value"},
		{"date number", valField("date"), 5.0, nil, "validation_invalid_value"},
		{"single select string", valField("select"), "a", "a", ""},
		{"single select list keeps last", valField("select"), []any{"a", "b"}, "b", ""},
		{"single select empty list", valField("select"), []any{}, "", ""},
		{"single relation nil", valField("relation"), nil, "", ""},
		{"multi select string", valField("select", withMaxSelect(3)), "a", []string{"a"}, ""},
		{"multi select list dedup", valField("select", withMaxSelect(3)), []any{"a", "b", "a", ""}, []string{"a", "b"}, ""},
		{"multi select json string", valField("select", withMaxSelect(3)), `["a","b"]`, []string{"a", "b"}, ""},
		{"multi select multipart", valField("select", withMaxSelect(3)), []string{"a", `["b","c"]`}, []string{"a", "b", "c"}, ""},
		{"multi select nil", valField("select", withMaxSelect(3)), nil, []string{}, ""},
		{"multi select empty string", valField("select", withMaxSelect(3)), "", []string{}, ""},
		{"multi select object item", valField("select", withMaxSelect(3)), []any{map[string]any{}}, nil, "validation_invalid_value"},
		{"multi relation numbers", valField("relation", withMaxSelect(3)), []any{1.0}, []string{"1"}, ""},
		{"multi file", valField("file", withMaxSelect(2)), []string{"a.png"}, []string{"a.png"}, ""},
		{"geo object", valField("geoPoint"), map[string]any{"lon": 1.5, "lat": -2.0}, underhood.GeoPoint{Lon: 1.5, Lat: -2}, ""},
		{"geo string", valField("geoPoint"), `{"lon":10,"lat":20}`, underhood.GeoPoint{Lon: 10, Lat: 20}, ""},
		{"geo nil", valField("geoPoint"), nil, underhood.GeoPoint{}, ""},
		{"geo bad", valField("geoPoint"), "x", nil, "validation_invalid_geo_point"},
		{"geo bad lat", valField("geoPoint"), map[string]any{"lat": "x"}, nil, "validation_invalid_geo_point"},
		{"password", valField("password"), "secret", "secret", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizeValue(tt.field, tt.in)
			if code := fieldErrorCode(err); code != tt.wantErr {
				t.Fatalf("NormalizeValue(%v) error = %v, want code %q", tt.in, err, tt.wantErr)
			}
			if tt.wantErr != "" {
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("NormalizeValue(%v) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestNormalizeJSON(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want string // "" means null (nil RawMessage)
	}{
		{"object", map[string]any{"a": 1.0}, `{"a":1}`},
		{"array", []any{1.0, "x"}, `[1,"x"]`},
		{"number", 3.5, `3.5`},
		{"bool", false, `false`},
		{"nil", nil, ""},
		{"json text string", `{"a": [1, 2]}`, `{"a":[1,2]}`},
		{"json number string", `123`, `123`},
		{"plain string", `hello`, `"hello"`},
		{"empty string", ``, ""},
		{"null string", `null`, ""},
		{"raw message", json.RawMessage(`[ 1 ]`), `[1]`},
		{"multipart", []string{`{"x":true}`}, `{"x":true}`},
	}
	f := valField("json")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizeValue(f, tt.in)
			if err != nil {
				t.Fatalf("NormalizeValue(%v) error: %v", tt.in, err)
			}
			raw, ok := got.(json.RawMessage)
			if !ok {
				t.Fatalf("NormalizeValue(%v) = %T, want json.RawMessage", tt.in, got)
			}
			if string(raw) != tt.want {
				t.Errorf("NormalizeValue(%v) = %q, want %q", tt.in, raw, tt.want)
			}
			if tt.want == "" && raw != nil {
				t.Errorf("NormalizeValue(%v) = %q, want nil", tt.in, raw)
			}
		})
	}
	if _, err := NormalizeValue(f, json.RawMessage(`{bad`)); fieldErrorCode(err) != "validation_invalid_json" {
		t.Errorf("NormalizeValue(invalid raw) error = %v, want validation_invalid_json", err)
	}
}

func TestApplyModifier(t *testing.T) {
	tests := []struct {
		name    string
		field   *underhood.Field
		cur     any
		mod     string
		v       any
		want    any
		wantErr string
	}{
		{"number add", valField("number"), 10.0, "+", 5.0, 15.0, ""},
		{"number add string", valField("number"), 10.0, "+", "2.5", 12.5, ""},
		{"number subtract", valField("number"), 10.0, "-", 4.0, 6.0, ""},
		{"number from nil", valField("number"), nil, "+", 1.0, 1.0, ""},
		{"number bad value", valField("number"), 1.0, "+", "x", nil, "validation_invalid_value"},
		{"number prefix unsupported", valField("number"), 1.0, "+prefix", 1.0, nil, "validation_invalid_modifier"},
		{"text unsupported", valField("text"), "a", "+", "b", nil, "validation_invalid_modifier"},
		{"multi append", valField("select", withMaxSelect(5)), []string{"a"}, "+", "b", []string{"a", "b"}, ""},
		{"multi append list dedup", valField("select", withMaxSelect(5)), []string{"a", "b"}, "+", []any{"b", "c"}, []string{"a", "b", "c"}, ""},
		{"multi prepend", valField("relation", withMaxSelect(5)), []string{"a"}, "+prefix", []any{"b", "c"}, []string{"b", "c", "a"}, ""},
		{"multi prepend existing moves nothing", valField("relation", withMaxSelect(5)), []string{"a", "b"}, "+prefix", "b", []string{"b", "a"}, ""},
		{"multi remove", valField("file", withMaxSelect(5)), []string{"a", "b", "c"}, "-", []any{"a", "c"}, []string{"b"}, ""},
		{"multi remove json string", valField("file", withMaxSelect(5)), []string{"a", "b"}, "-", `["b"]`, []string{"a"}, ""},
		{"multi remove missing", valField("select", withMaxSelect(5)), []string{"a"}, "-", "z", []string{"a"}, ""},
		{"multi remove does not alias", valField("select", withMaxSelect(5)), []string{"a", "b"}, "-", "a", []string{"b"}, ""},
		{"multi from nil", valField("select", withMaxSelect(5)), nil, "+", "a", []string{"a"}, ""},
		{"single replace", valField("select"), "a", "+", "b", "b", ""},
		{"single remove equal", valField("relation"), "abc", "-", "abc", "", ""},
		{"single remove other", valField("relation"), "abc", "-", "xyz", "abc", ""},
		{"single prefix keeps current", valField("select"), "a", "+prefix", "b", "a", ""},
		{"multi bad value", valField("select", withMaxSelect(2)), []string{}, "+", map[string]any{}, nil, "validation_invalid_value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before []string
			if s, ok := tt.cur.([]string); ok {
				before = append([]string(nil), s...)
			}
			got, err := ApplyModifier(tt.field, tt.cur, tt.mod, tt.v)
			if code := fieldErrorCode(err); code != tt.wantErr {
				t.Fatalf("ApplyModifier(%v, %q, %v) error = %v, want code %q", tt.cur, tt.mod, tt.v, err, tt.wantErr)
			}
			if tt.wantErr != "" {
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ApplyModifier(%v, %q, %v) mismatch (-want +got):\n%s", tt.cur, tt.mod, tt.v, diff)
			}
			if s, ok := tt.cur.([]string); ok && !cmp.Equal(before, s) {
				t.Errorf("ApplyModifier modified the current value: %v, was %v", s, before)
			}
		})
	}
}

func TestValidateValue(t *testing.T) {
	lim := limitOf
	tests := []struct {
		name  string
		field *underhood.Field
		v     any
		want  string // FieldError code, "" = valid
	}{
		{"text ok", valField("text"), "abc", ""},
		{"text required blank", valField("text", asRequired), "", "validation_required"},
		{"text optional blank", valField("text", func(f *underhood.Field) { f.Min = lim(3) }), "", ""},
		{"text min", valField("text", func(f *underhood.Field) { f.Min = lim(3) }), "ab", "validation_min_text_constraint"},
		{"text min counts runes", valField("text", func(f *underhood.Field) { f.Min = lim(3) }), "äöü", ""},
		{"text max", valField("text", func(f *underhood.Field) { f.Max = lim(3) }), "abcd", "validation_max_text_constraint"},
		{"text max counts runes", valField("text", func(f *underhood.Field) { f.Max = lim(3) }), "äöü", ""},
		{"text default max", valField("text"), strings.Repeat("a", 5001), "validation_max_text_constraint"},
		{"text pattern ok", valField("text", func(f *underhood.Field) { f.Pattern = `^[a-z]+$` }), "abc", ""},
		{"text pattern bad", valField("text", func(f *underhood.Field) { f.Pattern = `^[a-z]+$` }), "ab1", "validation_invalid_format"},
		{"text wrong type", valField("text"), 1.0, "validation_invalid_value"},
		{"email ok", valField("email"), "john@example.com", ""},
		{"email invalid", valField("email"), "john@", "validation_is_email"},
		{"email display name", valField("email"), "John <john@example.com>", "validation_is_email"},
		{"email only domains ok", valField("email", func(f *underhood.Field) { f.OnlyDomains = []string{"example.com"} }), "a@Example.com", ""},
		{"email only domains refused", valField("email", func(f *underhood.Field) { f.OnlyDomains = []string{"example.com"} }), "a@other.com", "validation_email_domain_not_allowed"},
		{"email except domains", valField("email", func(f *underhood.Field) { f.ExceptDomains = []string{"spam.com"} }), "a@spam.com", "validation_email_domain_not_allowed"},
		{"email required", valField("email", asRequired), "", "validation_required"},
		{"url ok", valField("url"), "https://example.com/a?b=c", ""},
		{"url no scheme", valField("url"), "example.com", "validation_is_url"},
		{"url garbage", valField("url"), "http://", "validation_is_url"},
		{"url only domains", valField("url", func(f *underhood.Field) { f.OnlyDomains = []string{"example.com"} }), "https://evil.com", "validation_url_domain_not_allowed"},
		{"url except domains", valField("url", func(f *underhood.Field) { f.ExceptDomains = []string{"evil.com"} }), "https://evil.com:8080/x", "validation_url_domain_not_allowed"},
		{"editor max size", valField("editor", func(f *underhood.Field) { f.MaxSize = 5 }), "<p>xx</p>", "validation_content_size_limit"},
		{"editor default max", valField("editor"), strings.Repeat("a", 5<<20+1), "validation_content_size_limit"},
		{"editor ok", valField("editor"), "<p>x</p>", ""},
		{"number ok", valField("number"), 5.0, ""},
		{"number required zero", valField("number", asRequired), 0.0, "validation_required"},
		{"number min", valField("number", func(f *underhood.Field) { f.Min = lim(10) }), 5.0, "validation_min_number_constraint"},
		{"number max", valField("number", func(f *underhood.Field) { f.Max = lim(10) }), 11.0, "validation_max_number_constraint"},
		{"number negative max", valField("number", func(f *underhood.Field) { f.Min = lim(-5) }), -6.0, "validation_min_number_constraint"},
		{"number zero skips bounds", valField("number", func(f *underhood.Field) { f.Min = lim(10) }), 0.0, ""},
		{"number only int", valField("number", func(f *underhood.Field) { f.OnlyInt = true }), 1.5, "validation_only_int_constraint"},
		{"number only int ok", valField("number", func(f *underhood.Field) { f.OnlyInt = true }), 2.0, ""},
		{"number NaN", valField("number"), math.NaN(), "validation_not_a_number"},
		{"number wrong type", valField("number"), "1", "validation_invalid_value"},
		{"bool required false", valField("bool", asRequired), false, "validation_required"},
		{"bool required true", valField("bool", asRequired), true, ""},
		{"date ok", valField("date"), "2024-01-01 00:00:00.000Z", ""},
		{"date required", valField("date", asRequired), "", "validation_required"},
		{"date min", valField("date", func(f *underhood.Field) { f.DateMin = "2024-01-01 00:00:00.000Z" }), "2023-12-31 23:59:59.999Z", "validation_min_greater_equal_than_required"},
		{"date max", valField("date", func(f *underhood.Field) { f.DateMax = "2024-01-01 00:00:00.000Z" }), "2024-01-01 00:00:00.001Z", "validation_max_less_equal_than_required"},
		{"date within", valField("date", func(f *underhood.Field) {
			f.DateMin, f.DateMax = "2024-01-01 00:00:00.000Z", "2024-12-31 00:00:00.000Z"
		}), "2024-06-01 00:00:00.000Z", ""},
		{"date garbage", valField("date"), "nope", "validation_invalid_value"},
		{"select ok", valField("select", func(f *underhood.Field) { f.Values = []string{"a", "b"} }), "a", ""},
		{"select unknown", valField("select", func(f *underhood.Field) { f.Values = []string{"a", "b"} }), "c", "validation_invalid_value"},
		{"select multi unknown", valField("select", withMaxSelect(2), func(f *underhood.Field) { f.Values = []string{"a", "b"} }), []string{"a", "z"}, "validation_invalid_value"},
		{"select too many", valField("select", withMaxSelect(2), func(f *underhood.Field) { f.Values = []string{"a", "b", "c"} }), []string{"a", "b", "c"}, "validation_too_many_values"},
		{"select required empty", valField("select", withMaxSelect(2), asRequired), []string{}, "validation_required"},
		{"select required single", valField("select", asRequired, func(f *underhood.Field) { f.Values = []string{"a"} }), "", "validation_required"},
		{"relation ok", valField("relation", withMaxSelect(3)), []string{"abc123def456ghi"}, ""},
		{"relation bad id", valField("relation"), "a/b", "validation_invalid_value"},
		{"relation min select", valField("relation", withMaxSelect(5), func(f *underhood.Field) { f.MinSelect = 2 }), []string{"a"}, "validation_not_enough_values"},
		{"relation min select empty optional", valField("relation", withMaxSelect(5), func(f *underhood.Field) { f.MinSelect = 2 }), []string{}, ""},
		{"relation max select", valField("relation", withMaxSelect(2)), []string{"a", "b", "c"}, "validation_too_many_values"},
		{"relation single list", valField("relation"), []string{"a", "b"}, "validation_too_many_values"},
		{"file too many", valField("file", withMaxSelect(2)), []string{"a", "b", "c"}, "validation_too_many_values"},
		{"json ok", valField("json"), json.RawMessage(`{"a":1}`), ""},
		{"json null optional", valField("json"), json.RawMessage(nil), ""},
		{"json required null", valField("json", asRequired), json.RawMessage(nil), "validation_required"},
		{"json required empty array", valField("json", asRequired), json.RawMessage(`[]`), "validation_required"},
		{"json required empty string", valField("json", asRequired), json.RawMessage(`""`), "validation_required"},
		{"json size", valField("json", func(f *underhood.Field) { f.MaxSize = 4 }), json.RawMessage(`[1,2,3]`), "validation_json_size_limit"},
		{"json default size", valField("json"), json.RawMessage(`"` + strings.Repeat("a", 1<<20) + `"`), "validation_json_size_limit"},
		{"json invalid", valField("json"), json.RawMessage(`{x`), "validation_invalid_json"},
		{"geo ok", valField("geoPoint"), underhood.GeoPoint{Lon: 180, Lat: -90}, ""},
		{"geo lon", valField("geoPoint"), underhood.GeoPoint{Lon: 181}, "validation_invalid_geo_point"},
		{"geo lat", valField("geoPoint"), underhood.GeoPoint{Lat: 90.5}, "validation_invalid_geo_point"},
		{"geo required zero", valField("geoPoint", asRequired), underhood.GeoPoint{}, "validation_required"},
		{"password skipped", valField("password", asRequired), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fe := ValidateValue(tt.field, tt.v)
			got := ""
			if fe != nil {
				got = fe.Code
				if fe.Message == "" {
					t.Errorf("ValidateValue(%.40v) has an empty message", tt.v)
				}
			}
			if got != tt.want {
				t.Errorf("ValidateValue(%.40v) = %v, want code %q", tt.v, fe, tt.want)
			}
		})
	}
}

func TestValidateValueErrorJSON(t *testing.T) {
	f := valField("select", withMaxSelect(2), func(f *underhood.Field) { f.Values = []string{"a", "b", "c"} })
	fe := ValidateValue(f, []string{"a", "b", "c"})
	if fe == nil {
		t.Fatal("ValidateValue = nil, want too many values")
	}
	b, err := json.Marshal(fe)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"code":"validation_too_many_values","message":"Select no more than 2.","params":{"maxSelect":2}}`
	if string(b) != want {
		t.Errorf("json = %s, want %s", b, want)
	}
}

func TestValidatePassword(t *testing.T) {
	system := newPasswordField()
	custom := &underhood.Field{Name: "pin", Type: underhood.FieldPassword}
	tests := []struct {
		name  string
		field *underhood.Field
		plain string
		want  string
	}{
		{"system ok", system, "12345678", ""},
		{"system too short", system, "1234567", "validation_min_text_constraint"},
		{"system required", system, "", "validation_required"},
		{"system default min without explicit min", &underhood.Field{Name: "password", Type: underhood.FieldPassword, System: true}, "short", "validation_min_text_constraint"},
		{"custom optional blank", custom, "", ""},
		{"custom no min", custom, "1", ""},
		{"bcrypt limit", custom, strings.Repeat("a", 73), "validation_max_text_constraint"},
		{"bcrypt limit multibyte", custom, strings.Repeat("ä", 37), "validation_max_text_constraint"},
		{"at bcrypt limit", custom, strings.Repeat("a", 72), ""},
		{"explicit max", &underhood.Field{Type: underhood.FieldPassword, Max: limitOf(10)}, strings.Repeat("a", 11), "validation_max_text_constraint"},
		{"pattern", &underhood.Field{Type: underhood.FieldPassword, Pattern: `\d`}, "abcdefgh", "validation_invalid_format"},
		{"pattern ok", &underhood.Field{Type: underhood.FieldPassword, Pattern: `\d`}, "abcdefg1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fe := ValidatePassword(tt.field, tt.plain)
			got := ""
			if fe != nil {
				got = fe.Code
			}
			if got != tt.want {
				t.Errorf("ValidatePassword(%q) = %v, want code %q", tt.plain, fe, tt.want)
			}
		})
	}
}

func TestZeroValue(t *testing.T) {
	tests := []struct {
		field *underhood.Field
		want  any
	}{
		{valField("text"), ""},
		{valField("email"), ""},
		{valField("date"), ""},
		{valField("password"), ""},
		{valField("number"), float64(0)},
		{valField("bool"), false},
		{valField("select"), ""},
		{valField("select", withMaxSelect(2)), []string{}},
		{valField("relation", withMaxSelect(2)), []string{}},
		{valField("file"), ""},
		{valField("json"), json.RawMessage(nil)},
		{valField("geoPoint"), underhood.GeoPoint{}},
	}
	for _, tt := range tests {
		got := ZeroValue(tt.field)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ZeroValue(%s, maxSelect %d) mismatch (-want +got):\n%s", tt.field.Type, tt.field.MaxSelect, diff)
		}
		// The zero value must itself be a valid, non-required value.
		if fe := ValidateValue(tt.field, got); fe != nil {
			t.Errorf("ValidateValue(ZeroValue(%s)) = %v, want nil", tt.field.Type, fe)
		}
	}
}

func TestAutogenerate(t *testing.T) {
	tests := []struct {
		pattern string
		match   string
	}{
		{"[a-z0-9]{15}", `^[a-z0-9]{15}$`},
		{"[a-zA-Z0-9]{50}", `^[a-zA-Z0-9]{50}$`},
		{"post_[a-z]{5}", `^post_[a-z]{5}$`},
		{"[A-F]{3}-[0-9]{2}x", `^[A-F]{3}-[0-9]{2}x$`},
		{`\d{4}`, `^\d{4}$`},
		{"[a-c_-]{20}", `^[a-c_-]{20}$`},
		{"[ab]{2,4}", `^[ab]{2,4}$`},
		{"abc", `^abc$`},
	}
	for _, tt := range tests {
		re := regexp.MustCompile(tt.match)
		seen := map[string]bool{}
		for range 20 {
			got := Autogenerate(tt.pattern)
			if !re.MatchString(got) {
				t.Fatalf("Autogenerate(%q) = %q, want a match of %s", tt.pattern, got, tt.match)
			}
			seen[got] = true
		}
		if strings.Contains(tt.pattern, "[") && !strings.Contains(tt.pattern, "{2,4}") && len(seen) < 2 {
			t.Errorf("Autogenerate(%q) returned the same value 20 times", tt.pattern)
		}
	}
	for _, bad := range []string{"", "(a|b)", "[a-z", "a{x}", "[^a]{3}", "a*", "[z-a]"} {
		if _, err := parseAutogenerate(bad); err == nil {
			t.Errorf("parseAutogenerate(%q) = nil error, want one", bad)
		}
	}
}

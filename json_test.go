package underhood

import (
	"encoding/json"
	"math"
	"testing"
)

// TestAppendJSONAsEncodingJSON checks that the encoder writes the bytes
// encoding/json writes, which it replaces in the hot paths.
func TestAppendJSONAsEncodingJSON(t *testing.T) {
	values := []any{
		"", "plain", `quote " backslash \ slash /`, "<b>&amp;</b>", "tab\tnew\nline\rcr\bbs\fff",
		"\x00\x01\x1f\x7f", "é ü 日本 🎉", "line\u2028para\u2029", "bad \xff\xfe utf8", "\xed\xa0\x80",
		0.0, math.Copysign(0, -1), 1.0, -3.5, 1234567.0, 1e20, 1e21, 1.5e300, 1e-6, 1e-7, 3.14e-9, -2.5e-10, 0.1 + 0.2,
		true, false, nil, []string{}, []string{"a", "<b>"},
		json.RawMessage(`{"a":[1,2]}`), map[string]any{"x": 1.0}, []any{"a", 2.0},
	}
	for _, v := range values {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal(%#v) = %v", v, err)
		}
		if got := AppendJSON(nil, v); string(got) != string(want) {
			t.Errorf("AppendJSON(%#v) = %s, want %s", v, got, want)
		}
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if got := AppendJSON(nil, f); string(got) != "null" {
			t.Errorf("AppendJSON(%v) = %s, want null", f, got)
		}
	}
}

package underhood_test

import (
	"strings"
	"testing"

	"github.com/underhood/underhood"
)

func TestJSONLimitsCheck(t *testing.T) {
	lim := underhood.JSONLimits{MaxDepth: 3, MaxValues: 5}
	tests := []struct {
		doc  string
		want string // a part of the error, "" for none
	}{
		{`{"a":[1,[2]]}`, ""},
		{`{"a":[1,[[2]]]}`, "nested too deeply: the limit is 3 levels"},
		{`{"a":"[[[[[[,,,,,,,,"}`, ""},                      // brackets and commas in strings
		{`{"a":"\"[[[[[\\"}`, ""},                           // escaped quotes and backslashes
		{`{"a":"\\",  "b":[[[[1]]]]}`, "nested too deeply"}, // a string ending in a backslash
		{`[1,2,3,4]`, ""},
		{`[1,2,3,4,5,6]`, "too many values: the limit is 5"},
		{strings.Repeat("[", 100_000), "nested too deeply"},
	}
	for _, tt := range tests {
		err := lim.Check([]byte(tt.doc))
		if got := ""; err != nil {
			got = err.Error()
			if tt.want == "" || !strings.Contains(got, tt.want) || underhood.ErrorCode(err) != underhood.EInvalid {
				t.Errorf("Check(%.40q) = %v, want %q", tt.doc, err, tt.want)
			}
		} else if tt.want != "" {
			t.Errorf("Check(%.40q) = nil, want %q", tt.doc, tt.want)
		}
	}
	if err := (underhood.JSONLimits{}).Check([]byte(strings.Repeat("[", 64))); err != nil {
		t.Errorf("default limits: 64 levels = %v, want nil", err)
	}
	if err := (underhood.JSONLimits{}).Check([]byte(strings.Repeat("[", 65))); err == nil {
		t.Errorf("default limits: 65 levels = nil, want an error")
	}
}

package filter_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/filter"
)

// render writes a parsed tree in a compact bracketed form:
// (L && R), [L ?= R], 'string', 5, null, name:mod, f(a, b).
func render(n any) string {
	switch n := n.(type) {
	case *filter.Logical:
		return "(" + render(n.L) + " " + n.Op + " " + render(n.R) + ")"
	case *filter.Compare:
		op := n.Op
		if n.Any {
			op = "?" + op
		}
		return "[" + render(n.L) + " " + op + " " + render(n.R) + "]"
	case *filter.Literal:
		switch v := n.Value.(type) {
		case nil:
			return "null"
		case string:
			return strconv.Quote(v)
		case float64:
			return strconv.FormatFloat(v, 'g', -1, 64)
		case bool:
			return strconv.FormatBool(v)
		}
		return fmt.Sprintf("<literal %T>", n.Value)
	case *filter.Ident:
		return strings.Join(append([]string{n.Name}, n.Modifiers...), ":")
	case *filter.Call:
		args := make([]string, len(n.Args))
		for i, a := range n.Args {
			args[i] = render(a)
		}
		return n.Name + "(" + strings.Join(args, ", ") + ")"
	}
	return fmt.Sprintf("<%T>", n)
}

func TestParse(t *testing.T) {
	tests := []struct {
		src  string
		want string
	}{
		// every operator, plain and "?"
		{"title = 'a'", `[title = "a"]`},
		{"title != 'a'", `[title != "a"]`},
		{"views > 1", `[views > 1]`},
		{"views >= 1", `[views >= 1]`},
		{"views < 1", `[views < 1]`},
		{"views <= 1", `[views <= 1]`},
		{"title ~ 'a'", `[title ~ "a"]`},
		{"title !~ 'a'", `[title !~ "a"]`},
		{"tags ?= 'a'", `[tags ?= "a"]`},
		{"tags ?!= 'a'", `[tags ?!= "a"]`},
		{"tags ?> 'a'", `[tags ?> "a"]`},
		{"tags ?>= 'a'", `[tags ?>= "a"]`},
		{"tags ?< 'a'", `[tags ?< "a"]`},
		{"tags ?<= 'a'", `[tags ?<= "a"]`},
		{"tags ?~ 'a'", `[tags ?~ "a"]`},
		{"tags ?!~ 'a'", `[tags ?!~ "a"]`},
		{"views>=1&&views<=2", `([views >= 1] && [views <= 2])`},

		// precedence: && binds tighter than ||, both associate left
		{"a = 1 && b = 2 || c = 3", `(([a = 1] && [b = 2]) || [c = 3])`},
		{"a = 1 || b = 2 && c = 3", `([a = 1] || ([b = 2] && [c = 3]))`},
		{"a = 1 || b = 2 || c = 3", `(([a = 1] || [b = 2]) || [c = 3])`},
		{"a = 1 && b = 2 && c = 3", `(([a = 1] && [b = 2]) && [c = 3])`},
		{"(a = 1 || b = 2) && c = 3", `(([a = 1] || [b = 2]) && [c = 3])`},
		{"a = 1 && (b = 2 || c = 3)", `([a = 1] && ([b = 2] || [c = 3]))`},
		{"((((a = 1))))", `[a = 1]`},
		{"\n\t a = 1 \r\n", `[a = 1]`},

		// strings: both quotes, escapes of the quote and the backslash only
		{`title = "double"`, `[title = "double"]`},
		{`title = 'it\'s'`, `[title = "it's"]`},
		{`title = "say \"hi\""`, `[title = "say \"hi\""]`},
		{`title = 'say "hi"'`, `[title = "say \"hi\""]`},
		{`title = "it's"`, `[title = "it's"]`},
		{`title = 'a\\b'`, `[title = "a\\b"]`},
		{`title = 'a\nb'`, `[title = "a\\nb"]`},
		{`title = 'a\"b'`, `[title = "a\\\"b"]`},
		{`title = ''`, `[title = ""]`},
		{`title = 'ünï 日本'`, `[title = "ünï 日本"]`},
		{`title = '&& || ( ) //'`, `[title = "&& || ( ) //"]`},
		{`title = '%_\%'`, `[title = "%_\\%"]`},

		// numbers
		{"views = 0", `[views = 0]`},
		{"views = 12.5", `[views = 12.5]`},
		{"views = -5", `[views = -5]`},
		{"views=-5", `[views = -5]`},
		{"views = +5", `[views = 5]`},
		{"views = .5", `[views = 0.5]`},
		{"views = -.5", `[views = -0.5]`},
		{"views = 1e3", `[views = 1000]`},
		{"views = -1.5e-3", `[views = -0.0015]`},
		{"views = 1E+2", `[views = 100]`},
		{"-1 < views", `[-1 < views]`},
		{"views = 123456789012345678901234567890", `[views = 1.2345678901234568e+29]`},

		// comments run to the end of the line
		{"title = 'a' // the title", `[title = "a"]`},
		{"// first\ntitle = 'a' // second\n&& views > 1", `([title = "a"] && [views > 1])`},
		{"title = 'http://x' // not in strings", `[title = "http://x"]`},

		// literals and modifiers
		{"title = null", `[title = null]`},
		{"published = true || published = false", `([published = true] || [published = false])`},
		{"tags:each ?= 'a'", `[tags:each ?= "a"]`},
		{"tags:length > 1", `[tags:length > 1]`},
		{"title:lower = 'a'", `[title:lower = "a"]`},
		{"tags:each:lower ?= 'a'", `[tags:each:lower ?= "a"]`},
		{"@request.body.title:isset = true", `[@request.body.title:isset = true]`},
		{"@request.body.title:changed = false", `[@request.body.title:changed = false]`},
		{"author.team.name = 'x'", `[author.team.name = "x"]`},
		{"comments_via_post.body ?= 'x'", `[comments_via_post.body ?= "x"]`},

		// @request, @collection and macros
		{"author = @request.auth.id", `[author = @request.auth.id]`},
		{"@request.headers.x_token = 'a'", `[@request.headers.x_token = "a"]`},
		{"@collection.users.name = title", `[@collection.users.name = title]`},
		{"@collection.users:u.name = title", `[@collection.users:u.name = title]`},
		{"@collection.users:u.name:lower = title", `[@collection.users:u.name:lower = title]`},
		{"@collection.users:u.team.name = 'x'", `[@collection.users:u.team.name = "x"]`},
		{"created > @now && created < @todayEnd", `([created > @now] && [created < @todayEnd])`},

		// functions
		{"geoDistance(loc.lon, loc.lat, 24.5, -3.25) < 10", `[geoDistance(loc.lon, loc.lat, 24.5, -3.25) < 10]`},
		{"strftime('%Y', created) = '2024'", `[strftime("%Y", created) = "2024"]`},
		{"strftime('%Y', created, 'start of year', '+1 day') != ''", `[strftime("%Y", created, "start of year", "+1 day") != ""]`},
		{"strftime('%Y', strftime('%Y-%m-%d', created)) = '2024'", `[strftime("%Y", strftime("%Y-%m-%d", created)) = "2024"]`},
		{"nothing() = 1", `[nothing() = 1]`},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			e, err := filter.Parse(tt.src)
			if err != nil {
				t.Fatalf("Parse(%q) = %v, want %s", tt.src, err, tt.want)
			}
			if got := render(e); got != tt.want {
				t.Errorf("Parse(%q) = %s, want %s", tt.src, got, tt.want)
			}
		})
	}
}

// TestParsePositions checks the 1-based positions the tree reports: a
// comparison and a logical operator are at their operator.
func TestParsePositions(t *testing.T) {
	e, err := filter.Parse("title = 'a' && (views > -1 || geoDistance(1, 2, 3, 4) < 5)")
	if err != nil {
		t.Fatalf("Parse = %v", err)
	}
	and := e.(*filter.Logical)
	title := and.L.(*filter.Compare)
	or := and.R.(*filter.Logical)
	views := or.L.(*filter.Compare)
	geo := or.R.(*filter.Compare)
	tests := []struct {
		name string
		node interface{ Pos() int }
		want int
	}{
		{"&&", and, 13},
		{"=", title, 7},
		{"title", title.L, 1},
		{"'a'", title.R, 9},
		{"||", or, 28},
		{">", views, 23},
		{"-1", views.R, 25},
		{"geoDistance", geo.L, 31},
		{"geoDistance's 3rd argument", geo.L.(*filter.Call).Args[2], 49},
		{"<", geo, 55},
	}
	for _, tt := range tests {
		if got := tt.node.Pos(); got != tt.want {
			t.Errorf("Pos() of %s = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	deep := strings.Repeat("(", 65) + "a = 1" + strings.Repeat(")", 65)
	deepCall := "a = " + strings.Repeat("f(", 65) + strings.Repeat(")", 65)
	tests := []struct {
		src string
		pos int
	}{
		{"", 1},
		{"   ", 4},
		{"// only a comment", 18},
		{"title", 6},
		{"title =", 8},
		{"title = ", 9},
		{"= 'a'", 1},
		{"title = 'abc", 9},
		{`title = "abc\"`, 9},
		{"title & 'a'", 7},
		{"title = 'a' | views = 1", 13},
		{"title = 'a' &&", 15},
		{"title = 'a' && views > 1 ||", 28},
		{"(title = 'a'", 13},
		{"(title = 'a' && (views = 1)", 28},
		{"title = 'a')", 12},
		{"()", 2},
		{"title == 'a'", 8},
		{"title = 5x", 9},
		{"title = 1.2.3", 9},
		{"title = 5-3", 10},
		{"title # 'a'", 7},
		{"title ! 'a'", 7},
		{"title = 'a' views = 1", 13},
		{"title = 'a' 'b'", 13},
		{"title: = 1", 1},
		{"title::lower = 1", 1},
		{"title. = 1", 1},
		{"a..b = 1", 1},
		{".title = 1", 1},
		{"views = 1 && é = 1", 14},
		{"geoDistance(1, 2", 17},
		{"geoDistance(1 2) = 1", 15},
		{"geoDistance(1,) = 1", 15},
		{"title = ('a')", 9},
		{deep, 65},
		{deepCall, 5 + 2*64 + 1},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			e, err := filter.Parse(tt.src)
			if err == nil {
				t.Fatalf("Parse(%q) = %s, want an error at position %d", tt.src, render(e), tt.pos)
			}
			if got := errorPosition(t, err, "filter"); got != tt.pos {
				t.Errorf("Parse(%q) = %v, want an error at position %d", tt.src, err, tt.pos)
			}
		})
	}
}

// errorPosition returns the position an EInvalid *underhood.Error gives
// for key ("filter" or "sort"), failing the test for any other error.
func errorPosition(t testing.TB, err error, key string) int {
	t.Helper()
	var e *underhood.Error
	if !errors.As(err, &e) || e.Code != underhood.EInvalid {
		t.Fatalf("error %v (%T) is not an *underhood.Error with code %q", err, err, underhood.EInvalid)
	}
	fe, ok := e.Data[key].(underhood.FieldError)
	if !ok {
		t.Fatalf("error %v has no underhood.FieldError at Data[%q]: %#v", err, key, e.Data)
	}
	pos, ok := fe.Params["position"].(int)
	if !ok {
		t.Fatalf("error %v has no int position: %#v", err, fe.Params)
	}
	if !strings.Contains(e.Message, fmt.Sprintf("(position %d)", pos)) {
		t.Errorf("error message %q does not state position %d", e.Message, pos)
	}
	return pos
}

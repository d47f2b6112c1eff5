package filter_test

import (
	"context"
	"testing"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/filter"
)

// TestMatchWithoutLoader checks that Match needs no Loader for filters on
// the record and the request alone, and reports an internal error rather
// than guessing when one reads related records.
func TestMatchWithoutLoader(t *testing.T) {
	s := newSchema()
	o := compileOptions(s)
	rec := &underhood.Record{Collection: o.Collection, Data: map[string]any{
		"id": "p1", "title": "Hello", "views": 7.0, "tags": []string{"db", "go"}, "author": "u1",
	}}
	tests := []struct {
		src  string
		want bool
	}{
		{"title = 'Hello'", true},
		{"title ~ 'ell' && views >= 7", true},
		{"tags:each ?= 'go' && tags:length = 2", true},
		{"author = @request.auth.id && @request.body.views < views", false},
		{"author = @request.auth.id && @request.body.tags:changed = false", true},
		{"secret = '' && created = ''", true}, // absent values are stored as zero values
	}
	for _, tt := range tests {
		e, err := filter.Parse(tt.src)
		if err != nil {
			t.Fatalf("Parse(%q) = %v", tt.src, err)
		}
		got, err := filter.Match(context.Background(), e, o, rec, nil)
		if err != nil || got != tt.want {
			t.Errorf("Match(%q) = %v, %v; want %v", tt.src, got, err, tt.want)
		}
	}
	for _, src := range []string{"author.name = 'x'", "comments_via_post.body ?= 'x'", "@collection.users.name ?= 'x'"} {
		e, err := filter.Parse(src)
		if err != nil {
			t.Fatalf("Parse(%q) = %v", src, err)
		}
		if got, err := filter.Match(context.Background(), e, o, rec, nil); underhood.ErrorCode(err) != underhood.EInternal {
			t.Errorf("Match(%q) without a loader = %v, %v; want an %s error", src, got, err, underhood.EInternal)
		}
	}
}

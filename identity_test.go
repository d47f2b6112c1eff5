package underhood

import (
	"context"
	"testing"
)

func TestIdentity(t *testing.T) {
	ctx := context.Background()
	if got := Identity(ctx); got != nil {
		t.Errorf("Identity(empty context) = %v, want nil (a guest)", got)
	}
	rec := &Record{Data: map[string]any{"id": "u1"}}
	if got := Identity(WithIdentity(ctx, rec)); got != rec {
		t.Errorf("Identity(WithIdentity(rec)) = %v, want rec", got)
	}
	if got := WithIdentity(ctx, nil); got != ctx {
		t.Errorf("WithIdentity(nil) returned a new context, want ctx unchanged")
	}
}

func TestRequireSuperuser(t *testing.T) {
	su := &Record{Collection: &Collection{Name: SuperusersName}, Data: map[string]any{"id": "s"}}
	user := &Record{Collection: &Collection{Name: "users"}, Data: map[string]any{"id": "u"}}
	for _, tt := range []struct {
		name   string
		caller *Record
		want   string
	}{
		{"guest", nil, EUnauthorized},
		{"user", user, EForbidden},
		{"superuser", su, ""},
	} {
		if got := ErrorCode(RequireSuperuser(tt.caller)); got != tt.want {
			t.Errorf("RequireSuperuser(%s) code = %q, want %q", tt.name, got, tt.want)
		}
	}
}

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

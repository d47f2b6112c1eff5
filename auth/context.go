package auth

import (
	"context"

	"github.com/underhood/underhood"
)

// identityKey is the context key of the caller's record.
type identityKey struct{}

// WithIdentity returns a copy of ctx carrying rec as the caller. A nil rec
// leaves ctx as it is (a guest).
func WithIdentity(ctx context.Context, rec *underhood.Record) context.Context {
	if rec == nil {
		return ctx
	}
	return context.WithValue(ctx, identityKey{}, rec)
}

// IdentityFrom returns the caller stored by WithIdentity, or nil for a guest.
func IdentityFrom(ctx context.Context) *underhood.Record {
	rec, _ := ctx.Value(identityKey{}).(*underhood.Record)
	return rec
}

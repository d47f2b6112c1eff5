package underhood

import "context"

// identityKey is the context key of the caller's record.
type identityKey struct{}

// WithIdentity returns a copy of ctx carrying rec as the caller: the record
// a request's token was issued to. A nil rec leaves ctx as it is (a guest).
// The server stores the caller once per request; every layer reads it back
// with Identity, so there is one way to ask who is calling.
func WithIdentity(ctx context.Context, rec *Record) context.Context {
	if rec == nil {
		return ctx
	}
	return context.WithValue(ctx, identityKey{}, rec)
}

// Identity returns the caller stored by WithIdentity, or nil for a guest.
func Identity(ctx context.Context) *Record {
	rec, _ := ctx.Value(identityKey{}).(*Record)
	return rec
}

// RequireSuperuser is the one check of the actions only superusers may
// take (administering collections, settings and webhooks): nil for a
// superuser, EUnauthorized for a guest (caller nil), EForbidden for any
// other record. The service that owns an action calls it.
func RequireSuperuser(caller *Record) error {
	if caller == nil {
		return Errorf(EUnauthorized, "The request requires valid record authorization token.")
	}
	if !caller.IsSuperuser() {
		return Errorf(EForbidden, "The authorized record is not allowed to perform this action.")
	}
	return nil
}

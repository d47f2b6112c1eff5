package record

import (
	"context"
	"fmt"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/sqlstore"
)

// Names of the system collections that hold the state of the auth flows.
// Each row belongs to one auth record, named by collectionRef (the auth
// collection's id) and recordRef (the record's id): a plain reference, not
// a relation field, because any auth collection may own rows.
const (
	MFAsName          = "_mfas"          // pending multi-factor logins
	OTPsName          = "_otps"          // one-time passwords sent by email
	ExternalAuthsName = "_externalAuths" // OAuth2 identities linked to records
	AuthOriginsName   = "_authOrigins"   // devices a record has logged in from
	TOTPsName         = "_totps"         // authenticator-app secrets (our addition)
)

// ownRowRule lets an auth record see its own rows of a system collection.
const ownRowRule = "@request.auth.id != '' && recordRef = @request.auth.id && collectionRef = @request.auth.collectionId"

// SystemCollections returns the system collections of the auth flows,
// ready to store. They are created on every start when missing, so a data
// directory from an older version gains them too.
func SystemCollections() []*underhood.Collection {
	text := func(name string, hidden bool) *underhood.Field {
		return &underhood.Field{Name: name, Type: underhood.FieldText, System: true, Required: true, Hidden: hidden}
	}
	refs := func(extra ...*underhood.Field) []*underhood.Field {
		fields := []*underhood.Field{newIDField(), text("collectionRef", false), text("recordRef", false)}
		fields = append(fields, extra...)
		return append(fields, newAutodateField("created", false), newAutodateField("updated", true))
	}
	own := underhood.RuleOf(ownRowRule)
	list := []*underhood.Collection{
		{ID: "pbc_uh_mfas", Name: MFAsName, Type: underhood.TypeBase, System: true,
			Fields:  refs(text("method", false)),
			Indexes: []string{"CREATE INDEX idx_mfas_ref ON _mfas (collectionRef, recordRef)"}},
		{ID: "pbc_uh_otps", Name: OTPsName, Type: underhood.TypeBase, System: true,
			Fields: refs(
				// Min 1: a one-time password may be shorter than an account's.
				&underhood.Field{Name: "password", Type: underhood.FieldPassword, System: true, Hidden: true, Required: true, Min: limitOf(1)},
				&underhood.Field{Name: "sentTo", Type: underhood.FieldText, System: true, Hidden: true}),
			Indexes: []string{"CREATE INDEX idx_otps_ref ON _otps (collectionRef, recordRef)"}},
		{ID: "pbc_uh_external_auths", Name: ExternalAuthsName, Type: underhood.TypeBase, System: true,
			ListRule: own, ViewRule: own, DeleteRule: own,
			Fields: refs(text("provider", false), text("providerId", false)),
			Indexes: []string{
				"CREATE UNIQUE INDEX idx_external_auths_provider ON _externalAuths (collectionRef, provider, providerId)",
				"CREATE UNIQUE INDEX idx_external_auths_record ON _externalAuths (collectionRef, recordRef, provider)",
			}},
		{ID: "pbc_uh_auth_origins", Name: AuthOriginsName, Type: underhood.TypeBase, System: true,
			ListRule: own, ViewRule: own, DeleteRule: own,
			Fields:  refs(text("fingerprint", false)),
			Indexes: []string{"CREATE UNIQUE INDEX idx_auth_origins_fingerprint ON _authOrigins (collectionRef, recordRef, fingerprint)"}},
		{ID: "pbc_uh_totps", Name: TOTPsName, Type: underhood.TypeBase, System: true,
			Fields: refs(
				text("secret", true),
				&underhood.Field{Name: "confirmed", Type: underhood.FieldBool, System: true},
				&underhood.Field{Name: "lastCounter", Type: underhood.FieldNumber, System: true, Hidden: true, OnlyInt: true},
				&underhood.Field{Name: "recoveryCodes", Type: underhood.FieldJSON, System: true, Hidden: true}),
			Indexes: []string{"CREATE UNIQUE INDEX idx_totps_record ON _totps (collectionRef, recordRef)"}},
	}
	var out []*underhood.Collection
	for _, c := range list {
		prepared, err := PrepareCollection(nil, c, out, nil)
		if err != nil {
			// The definitions are constants of the program: failing here is a bug.
			panic(fmt.Sprintf("system collection %s: %v", c.Name, err))
		}
		out = append(out, prepared)
	}
	return out
}

// ensureSystemCollections creates the system collections that are missing.
func (s *Service) ensureSystemCollections(ctx context.Context) error {
	var missing []*underhood.Collection
	for _, c := range SystemCollections() {
		if s.schema.Load().FindCollection(c.Name) == nil {
			missing = append(missing, c)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	err := s.store.Write(ctx, func(q sqlstore.Querier) error {
		// Another node may have created them since the snapshot was read.
		if err := s.store.LockSchema(ctx, q); err != nil {
			return err
		}
		have, err := s.store.LoadCollections(ctx, q)
		if err != nil {
			return err
		}
		for _, c := range missing {
			if newSchema(have).FindCollection(c.Name) != nil {
				continue
			}
			if err := s.store.SaveCollection(ctx, q, nil, c); err != nil {
				return fmt.Errorf("create system collection %s: %w", c.Name, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.reloadSchema(ctx)
}

// deleteAuthState deletes the rows of the auth system collections that
// belong to the auth record r, in the transaction that deletes r.
func (s *Service) deleteAuthState(ctx context.Context, q sqlstore.Querier, r *underhood.Record) error {
	owned := sqlstore.And(sqlstore.Eq("collectionRef", r.Collection.ID), sqlstore.Eq("recordRef", r.ID()))
	for _, name := range []string{MFAsName, OTPsName, ExternalAuthsName, AuthOriginsName, TOTPsName} {
		c := s.schema.Load().FindCollection(name)
		if c == nil {
			continue
		}
		if _, err := s.store.DeleteWhere(ctx, q, c, owned); err != nil {
			return fmt.Errorf("delete %s of %s: %w", name, r.ID(), err)
		}
	}
	return nil
}

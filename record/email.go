package record

import (
	"context"
	"fmt"
	"strings"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/sqlstore"
)

// The email of an auth record is unique regardless of case, and found by
// it regardless of case, with one rule for both: the engine's NOCASE
// comparison (SQLite's NOCASE collation, lower() on PostgreSQL; both fold
// ASCII letters). The collection's unique email index says so with
// COLLATE NOCASE, and writes check it too (checkEmailUnique), so that a
// database whose existing records kept the index from being created (see
// migrateEmailIndexes) still takes no new conflict.

// emailIgnoresCase reports whether c's email index is unique regardless
// of case.
func emailIgnoresCase(c *underhood.Collection) bool {
	for _, raw := range c.Indexes {
		ix, err := parseIndex(raw)
		if err == nil && isEmailIndex(ix) && ix.Columns[0].Collate == "NOCASE" {
			return true
		}
	}
	return false
}

// isEmailIndex reports whether ix is a unique index of the email column
// alone.
func isEmailIndex(ix *sqlstore.Index) bool {
	return ix.Unique && len(ix.Columns) == 1 && strings.EqualFold(ix.Columns[0].Name, "email")
}

// findByEmail returns the record of c whose email is email regardless of
// case. Among records that differ only in case (left by an older version,
// see migrateEmailIndexes) only an exact match is returned, so that no
// one's login, reset or one-time password goes to another's account.
func (s *Service) findByEmail(ctx context.Context, c *underhood.Collection, email string) (*underhood.Record, error) {
	var found *underhood.Record
	err := s.store.Read(ctx, func(q sqlstore.Querier) error {
		list, err := s.store.Find(ctx, q, sqlstore.Query{Collection: c, Where: sqlstore.EmailIs(email), Limit: 2})
		if err != nil {
			return err
		}
		for _, r := range list {
			if len(list) == 1 || r.String("email") == email {
				found = r
			}
		}
		if found == nil {
			return errNotFound()
		}
		return nil
	})
	return found, err
}

// checkEmailUnique refuses r, a record of an auth collection being
// created (old nil) or updated, when another record has its email
// regardless of case.
func (s *Service) checkEmailUnique(ctx context.Context, q sqlstore.Querier, r, old *underhood.Record) error {
	c := r.Collection
	email := r.String("email")
	if !c.IsAuth() || c.Field("email") == nil || email == "" || (old != nil && old.String("email") == email) {
		return nil
	}
	others := sqlstore.And(sqlstore.EmailIs(email), sqlstore.Compare("id", sqlstore.OpNe, r.ID()))
	n, err := s.store.Count(ctx, q, sqlstore.Query{Collection: c, Where: others})
	if err != nil {
		return fmt.Errorf("check email unique: %w", err)
	}
	if n > 0 {
		return underhood.Invalid("Failed to save record.", map[string]any{
			"email": underhood.FieldError{Code: "validation_not_unique", Message: "Value must be unique."},
		})
	}
	return nil
}

// maxConflictsLogged bounds the groups of conflicting records one warning
// lists.
const maxConflictsLogged = 20

// migrateEmailIndexes gives every auth collection whose email index is
// case-sensitive (made by an older version) the case-insensitive one. A
// collection whose records already hold emails that differ only in case
// keeps its index, and a warning names the collection and the ids of
// those records (never the emails) at every start until they are
// resolved; the server serves all the same, and writes refuse new
// conflicts (checkEmailUnique).
func (s *Service) migrateEmailIndexes(ctx context.Context) error {
	changed := false
	for _, c := range s.Collections() {
		if !c.IsAuth() || c.Field("email") == nil || emailIgnoresCase(c) {
			continue
		}
		migrated, conflicts, err := s.migrateEmailIndex(ctx, c.ID)
		switch {
		case err != nil:
			s.log.Warn("email index: emails stay unique only as typed; the next start tries again", "collection", c.Name, "err", err)
		case len(conflicts) > 0:
			shown := conflicts[:min(len(conflicts), maxConflictsLogged)]
			s.log.Warn("email index: records have emails that differ only in case, so emails stay unique only as typed; "+
				"new conflicts are refused and logins find exact matches only; change or delete all but one record of each group and restart",
				"collection", c.Name, "groups", len(conflicts), "record_ids", fmt.Sprint(shown))
		default:
			changed = changed || migrated
		}
	}
	if !changed {
		return nil
	}
	return s.reloadSchema(ctx)
}

// migrateEmailIndex makes the email index of the collection id
// case-insensitive unless records conflict, and returns whether it did,
// or the ids of the conflicting records, grouped.
func (s *Service) migrateEmailIndex(ctx context.Context, id string) (migrated bool, conflicts [][]string, err error) {
	s.schemaMu.Lock()
	defer s.schemaMu.Unlock()
	err = s.store.Write(ctx, func(q sqlstore.Querier) error {
		// Nodes starting together migrate once.
		if err := s.store.LockSchema(ctx, q); err != nil {
			return err
		}
		all, err := s.store.LoadCollections(ctx, q)
		if err != nil {
			return err
		}
		old := newSchema(all).FindCollection(id)
		if old == nil || emailIgnoresCase(old) {
			return nil
		}
		if conflicts, err = s.emailConflicts(ctx, q, old); err != nil || len(conflicts) > 0 {
			return err
		}
		c := old.Clone()
		for i, raw := range c.Indexes {
			if ix, err := parseIndex(raw); err == nil && isEmailIndex(ix) {
				ix.Columns[0].Collate = "NOCASE"
				c.Indexes[i] = ix.String()
				break
			}
		}
		if _, err := s.saveCollectionTx(ctx, q, old, c, all); err != nil {
			return err
		}
		migrated = true
		return nil
	})
	return migrated, conflicts, err
}

// emailConflicts returns the ids of the records of c whose emails differ
// only in case, grouped by email.
func (s *Service) emailConflicts(ctx context.Context, q sqlstore.Querier, c *underhood.Collection) ([][]string, error) {
	return s.store.EmailConflicts(ctx, q, c)
}

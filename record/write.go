package record

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/filter"
	"github.com/underhood/underhood/sqlstore"
)

// DefaultPasswordCost is the bcrypt cost of password fields without one.
const DefaultPasswordCost = bcrypt.DefaultCost

// CheckPassword reports whether password matches a stored bcrypt hash.
func CheckPassword(hash, password string) bool {
	if hash == "" {
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}

func (s *Service) create(ctx context.Context, q sqlstore.Querier, req *Request, c *underhood.Collection, data map[string]any, pre hashes) (*underhood.Record, error) {
	r, errs, err := s.newRecord(req, c, data, pre)
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, s.invalidRecord(ctx, q, r, errs)
	}
	if err := s.insert(ctx, q, req, r, data); err != nil {
		return nil, err
	}
	return r, nil
}

// newRecord builds and validates a new record of c from data, returning
// the field errors. It needs no transaction, so Create runs it before
// taking the writer: only the checks that read other rows (relations, the
// create rule) wait for the write.
func (s *Service) newRecord(req *Request, c *underhood.Collection, data map[string]any, pre hashes) (*underhood.Record, map[string]any, error) {
	if c.IsView() {
		return nil, nil, underhood.Errorf(underhood.EInvalid, "View collections are read only.")
	}
	if !isSuperuser(req) && c.CreateRule == nil {
		return nil, nil, errSuperusersOnly()
	}
	r := underhood.NewRecord(c)
	for _, f := range c.Fields {
		r.Data[f.Name] = ZeroValue(f)
	}
	errs, err := s.assignValues(req, r, nil, data, pre, isSuperuser(req))
	if err != nil {
		return nil, nil, err
	}
	return r, errs, nil
}

// invalidRecord returns the error of a new record with field errors,
// adding the relations that point to missing records, so that a client
// learns about every bad field at once.
func (s *Service) invalidRecord(ctx context.Context, q sqlstore.Querier, r *underhood.Record, errs map[string]any) error {
	fail := func(name string, err error) {
		if _, seen := errs[name]; !seen {
			errs[name] = asFieldError(err)
		}
	}
	if err := s.checkRelations(ctx, q, r, nil, fail); err != nil {
		return err
	}
	return underhood.Invalid("Failed to create record.", errs)
}

// insert checks r's relations, inserts it and checks the create rule,
// which sees the stored record and data, the body r was made from, with
// its modifiers applied.
func (s *Service) insert(ctx context.Context, q sqlstore.Querier, req *Request, r *underhood.Record, data map[string]any) error {
	c := r.Collection
	if err := s.checkFiles(req, r, nil); err != nil {
		return withMessage(err, "Failed to create record.")
	}
	errs := map[string]any{}
	fail := func(name string, err error) {
		if _, seen := errs[name]; !seen {
			errs[name] = asFieldError(err)
		}
	}
	if err := s.checkRelations(ctx, q, r, nil, fail); err != nil {
		return err
	}
	if len(errs) > 0 {
		return withMessage(underhood.Invalid("Failed to save record.", errs), "Failed to create record.")
	}
	if err := s.checkEmailUnique(ctx, q, r, nil); err != nil {
		return withMessage(err, "Failed to create record.")
	}
	if err := s.store.InsertRecord(ctx, q, r); err != nil {
		return withMessage(err, "Failed to create record.")
	}
	if err := s.noteChange(ctx, q, ActionCreate, r); err != nil {
		return err
	}
	if !isSuperuser(req) && strings.TrimSpace(*c.CreateRule) != "" {
		if _, err := s.findVisible(ctx, q, ruleRequest(req, c, nil, data), c, c.CreateRule, r.ID()); err != nil {
			if underhood.ErrorCode(err) == underhood.ENotFound || underhood.ErrorCode(err) == underhood.EForbidden {
				return underhood.Errorf(underhood.EInvalid, "Failed to create record.")
			}
			return err
		}
	}
	return nil
}

func (s *Service) update(ctx context.Context, q sqlstore.Querier, req *Request, c *underhood.Collection, id string, data map[string]any, pre hashes) (*underhood.Record, error) {
	if c.IsView() {
		return nil, underhood.Errorf(underhood.EInvalid, "View collections are read only.")
	}
	if !isSuperuser(req) && c.UpdateRule == nil {
		return nil, errSuperusersOnly()
	}
	// The rules judge the body as the write will apply it, so a modifier
	// needs the stored value it applies to.
	var stored *underhood.Record
	if hasModifiers(c, data) {
		var err error
		if stored, err = s.findByID(ctx, q, c, id); err != nil {
			return nil, err
		}
	}
	req = ruleRequest(req, c, stored, data)
	old, err := s.findVisible(ctx, q, req, c, c.UpdateRule, id)
	if err != nil {
		return nil, err
	}
	r := old.Clone()
	manager, err := s.canManage(ctx, q, req, c, id)
	if err != nil {
		return nil, err
	}
	if err := s.assign(ctx, q, req, r, old, data, pre, manager); err != nil {
		return nil, withMessage(err, "Failed to update record.")
	}
	if err := s.checkFiles(req, r, old); err != nil {
		return nil, withMessage(err, "Failed to update record.")
	}
	if err := s.checkEmailUnique(ctx, q, r, old); err != nil {
		return nil, withMessage(err, "Failed to update record.")
	}
	if err := s.store.UpdateRecord(ctx, q, r); err != nil {
		return nil, withMessage(err, "Failed to update record.")
	}
	if err := s.noteUpdate(ctx, q, old, r); err != nil {
		return nil, err
	}
	return r, nil
}

// findByID loads record id of c, whatever its rules say.
func (s *Service) findByID(ctx context.Context, q sqlstore.Querier, c *underhood.Collection, id string) (*underhood.Record, error) {
	list, err := s.store.Find(ctx, q, sqlstore.Query{Collection: c, Where: sqlstore.Eq("id", id), Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, errNotFound()
	}
	return list[0], nil
}

// assign applies a client's data to r (old is the stored record on
// update, nil on create), fills automatic values and validates the result.
// Field errors are collected so the client sees all of them at once.
func (s *Service) assign(ctx context.Context, q sqlstore.Querier, req *Request, r, old *underhood.Record, data map[string]any, pre hashes, manager bool) error {
	errs, err := s.assignValues(req, r, old, data, pre, manager)
	if err != nil {
		return err
	}
	fail := func(name string, err error) {
		if _, seen := errs[name]; !seen {
			errs[name] = asFieldError(err)
		}
	}
	if err := s.checkRelations(ctx, q, r, old, fail); err != nil {
		return err
	}
	if len(errs) > 0 {
		return underhood.Invalid("Failed to save record.", errs)
	}
	return nil
}

// assignValues applies data to r (old is the stored record, nil on
// create): values, modifiers, autodates, generated values and passwords,
// then validates every field. It returns the field errors; err is an
// internal error.
func (s *Service) assignValues(req *Request, r, old *underhood.Record, data map[string]any, pre hashes, manager bool) (errs map[string]any, err error) {
	c := r.Collection
	creating := old == nil
	errs = map[string]any{}
	fail := func(name string, err error) {
		if _, seen := errs[name]; !seen {
			errs[name] = asFieldError(err)
		}
	}

	passwords := map[string]string{} // field name → submitted plaintext
	for _, key := range orderedKeys(data) {
		name, mod := splitModifier(key)
		f := c.Field(name)
		if f == nil || !s.canSet(r, f, creating, manager) {
			continue
		}
		v := data[key]
		if f.Type == underhood.FieldPassword {
			plain, ok := v.(string)
			if !ok {
				fail(f.Name, underhood.FieldError{Code: "validation_invalid_value", Message: "Must be a string."})
				continue
			}
			passwords[f.Name] = plain
			continue
		}
		var (
			val any
			err error
		)
		if mod == "" {
			val, err = NormalizeValue(f, v)
		} else {
			val, err = ApplyModifier(f, r.Data[f.Name], mod, v)
		}
		if err != nil {
			fail(f.Name, err)
			continue
		}
		if f.Name == "id" && !creating {
			if val != old.ID() {
				fail("id", underhood.FieldError{Code: "validation_id_change", Message: "The record id cannot be changed."})
			}
			continue
		}
		r.Data[f.Name] = val
	}

	now := underhood.FormatTime(s.now())
	for _, f := range c.Fields {
		switch {
		case f.Type == underhood.FieldAutodate:
			if (creating && f.OnCreate) || f.OnUpdate {
				r.Data[f.Name] = now
			}
		case f.Type == underhood.FieldText && f.AutogeneratePattern != "" && creating && r.String(f.Name) == "":
			r.Data[f.Name] = Autogenerate(f.AutogeneratePattern)
		}
	}
	if creating && r.ID() == "" {
		r.Data["id"] = underhood.NewID()
	}

	if c.IsAuth() {
		s.assignPasswords(req, r, old, data, passwords, pre, manager, fail)
		// A new email address, like a new password, revokes every token
		// issued before it.
		if old != nil && !strings.EqualFold(r.String("email"), old.String("email")) {
			r.Data["tokenKey"] = Autogenerate("[a-zA-Z0-9]{50}")
		}
	}
	for _, f := range c.Fields {
		if f.Type == underhood.FieldPassword {
			continue
		}
		if fe := ValidateValue(f, r.Data[f.Name]); fe != nil {
			fail(f.Name, *fe)
		}
	}
	if !c.IsAuth() {
		for name, plain := range passwords {
			f := c.Field(name)
			if fe := ValidatePassword(f, plain); fe != nil {
				fail(name, *fe)
				continue
			}
			hash, err := pre.hash(f, plain)
			if err != nil {
				return nil, err
			}
			r.Data[name] = hash
		}
		for _, f := range c.Fields {
			if f.Type == underhood.FieldPassword && f.Required && r.String(f.Name) == "" {
				fail(f.Name, underhood.FieldError{Code: "validation_required", Message: "Cannot be blank."})
			}
		}
	}
	return errs, nil
}

// canSet reports whether the caller may write field f of r. Fields the
// system owns are silently left alone, as PocketBase does with them.
func (s *Service) canSet(r *underhood.Record, f *underhood.Field, creating, manager bool) bool {
	switch f.Type {
	case underhood.FieldAutodate:
		return false
	}
	if !r.Collection.IsAuth() {
		return true
	}
	switch f.Name {
	case "tokenKey":
		return false
	case "verified":
		return manager
	case "email":
		// Changing an email needs the confirm-email-change flow unless a
		// superuser or a manager (manageRule) does it.
		return creating || manager
	}
	return true
}

// assignPasswords handles the password of an auth record: required on
// create, confirmed by passwordConfirm, and on update by the record
// itself also by oldPassword. A new password rotates tokenKey, which
// revokes every token issued before.
func (s *Service) assignPasswords(req *Request, r, old *underhood.Record, data map[string]any, passwords map[string]string, pre hashes, manager bool, fail func(string, error)) {
	f := r.Collection.Field("password")
	if f == nil {
		return
	}
	plain, given := passwords["password"]
	if !given {
		if old == nil {
			fail("password", underhood.FieldError{Code: "validation_required", Message: "Cannot be blank."})
		}
		return
	}
	if fe := ValidatePassword(f, plain); fe != nil {
		fail("password", *fe)
		return
	}
	if confirm, _ := data["passwordConfirm"].(string); confirm != plain {
		fail("passwordConfirm", underhood.FieldError{Code: "validation_values_mismatch", Message: "Values don't match."})
		return
	}
	switch {
	case old == nil || manager:
		// a new record, or a superuser or manager: no old password needed
	case isSelf(req, old):
		oldPlain, _ := data["oldPassword"].(string)
		if !CheckPassword(old.String("password"), oldPlain) {
			fail("oldPassword", underhood.FieldError{Code: "validation_invalid_old_password", Message: "Missing or invalid old password."})
			return
		}
	default:
		// An update rule may let others edit a record; its password is
		// only its owner's, a superuser's or a manager's to change.
		fail("password", underhood.FieldError{Code: "validation_forbidden", Message: "Only the record itself, a superuser or a manager (manageRule) can change the password."})
		return
	}
	hash, err := pre.hash(f, plain)
	if err != nil {
		fail("password", err)
		return
	}
	r.Data["password"] = hash
	if old != nil {
		r.Data["tokenKey"] = Autogenerate("[a-zA-Z0-9]{50}")
	}
}

// hashes are bcrypt hashes computed before a write transaction opens, by
// field name, so the slow hashing never holds the database writer.
type hashes map[string]prehash

type prehash struct{ plain, hash string }

// prehashPasswords hashes the plaintext passwords in data ahead of a write.
// Values that would fail validation are left for the write to report.
func prehashPasswords(c *underhood.Collection, data map[string]any) hashes {
	var out hashes
	for _, f := range c.Fields {
		plain, ok := data[f.Name].(string)
		if f.Type != underhood.FieldPassword || !ok || ValidatePassword(f, plain) != nil {
			continue
		}
		h, err := hashPassword(f, plain)
		if err != nil {
			continue
		}
		if out == nil {
			out = hashes{}
		}
		out[f.Name] = prehash{plain: plain, hash: h}
	}
	return out
}

// hash returns the precomputed hash of plain for f, or computes it.
func (h hashes) hash(f *underhood.Field, plain string) (string, error) {
	if p, ok := h[f.Name]; ok && p.plain == plain {
		return p.hash, nil
	}
	return hashPassword(f, plain)
}

func hashPassword(f *underhood.Field, plain string) (string, error) {
	cost := f.Cost
	if cost == 0 {
		cost = DefaultPasswordCost
	}
	h, err := bcrypt.GenerateFromPassword([]byte(plain), cost)
	if err != nil {
		return "", underhood.FieldError{Code: "validation_invalid_value", Message: "Invalid password."}
	}
	return string(h), nil
}

// checkRelations verifies that every relation id that changed points to an
// existing record of the target collection.
func (s *Service) checkRelations(ctx context.Context, q sqlstore.Querier, r, old *underhood.Record, fail func(string, error)) error {
	for _, f := range r.Collection.Fields {
		if f.Type != underhood.FieldRelation {
			continue
		}
		ids := r.Strings(f.Name)
		if len(ids) == 0 || (old != nil && sameStrings(ids, old.Strings(f.Name))) {
			continue
		}
		target := s.schema.Load().FindCollection(f.CollectionID)
		if target == nil {
			fail(f.Name, underhood.FieldError{Code: "validation_missing_rel_collection", Message: "The related collection no longer exists."})
			continue
		}
		n, err := s.countIDs(ctx, q, target, ids)
		if err != nil {
			return err
		}
		if n != len(ids) {
			fail(f.Name, underhood.FieldError{Code: "validation_missing_rel_records", Message: "Failed to find all relation records with the provided ids."})
		}
	}
	return nil
}

func (s *Service) countIDs(ctx context.Context, q sqlstore.Querier, c *underhood.Collection, ids []string) (int, error) {
	return s.store.Count(ctx, q, sqlstore.Query{Collection: c, Where: sqlstore.In("id", ids)})
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// asFieldError turns a validation failure into the FieldError a client sees.
func asFieldError(err error) underhood.FieldError {
	var fe underhood.FieldError
	if errors.As(err, &fe) {
		return fe
	}
	var pfe *underhood.FieldError
	if errors.As(err, &pfe) && pfe != nil {
		return *pfe
	}
	return underhood.FieldError{Code: "validation_invalid_value", Message: underhood.ErrorMessage(err)}
}

// orderedKeys returns the keys of data in the order a write applies them:
// plain values first, then the modifiers, each group sorted.
func orderedKeys(data map[string]any) []string {
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		mi, mj := isModifierKey(keys[i]), isModifierKey(keys[j])
		if mi != mj {
			return !mi
		}
		return keys[i] < keys[j]
	})
	return keys
}

func isModifierKey(k string) bool {
	_, mod := splitModifier(k)
	return mod != ""
}

// splitModifier splits a body key into a field name and its modifier:
// "views+" → ("views", "+"), "+tags" → ("tags", "+prefix"), "tags-" → ("tags", "-").
func splitModifier(key string) (name, mod string) {
	switch {
	case strings.HasPrefix(key, "+"):
		return key[1:], "+prefix"
	case strings.HasSuffix(key, "+"):
		return key[:len(key)-1], "+"
	case strings.HasSuffix(key, "-"):
		return key[:len(key)-1], "-"
	}
	return key, ""
}

// delete removes record id of c if the delete rule lets req do so.
func (s *Service) delete(ctx context.Context, q sqlstore.Querier, req *Request, c *underhood.Collection, id string) error {
	if c.IsView() {
		return underhood.Errorf(underhood.EInvalid, "View collections are read only.")
	}
	r, err := s.findVisible(ctx, q, req, c, c.DeleteRule, id)
	if err != nil {
		return err
	}
	return s.deleteCascade(ctx, q, r, map[string]bool{})
}

// deleteCascade deletes r after resolving every relation that points to
// it: cascading deletes where the field asks for it, otherwise removing
// the reference, and refusing when a required reference would be left empty.
func (s *Service) deleteCascade(ctx context.Context, q sqlstore.Querier, r *underhood.Record, seen map[string]bool) error {
	key := r.Collection.ID + "/" + r.ID()
	if seen[key] {
		return nil
	}
	seen[key] = true
	for _, o := range s.Collections() {
		if o.IsView() {
			continue
		}
		for _, f := range o.Fields {
			if f.Type != underhood.FieldRelation || f.CollectionID != r.Collection.ID {
				continue
			}
			refs, err := s.referencing(ctx, q, o, f, r.ID())
			if err != nil {
				return err
			}
			for _, ref := range refs {
				if f.CascadeDelete {
					if err := s.deleteCascade(ctx, q, ref, seen); err != nil {
						return err
					}
					continue
				}
				if seen[o.ID+"/"+ref.ID()] {
					continue
				}
				kept := removeString(ref.Strings(f.Name), r.ID())
				if f.Required && len(kept) == 0 {
					return underhood.Errorf(underhood.EInvalid,
						"The record cannot be deleted because it is required by record %q of collection %q (field %q).", ref.ID(), o.Name, f.Name)
				}
				if f.IsMulti() {
					ref.Data[f.Name] = kept
				} else {
					ref.Data[f.Name] = ""
				}
				if err := s.store.UpdateRecord(ctx, q, ref); err != nil {
					return err
				}
				if err := s.noteChange(ctx, q, ActionUpdate, ref); err != nil {
					return err
				}
			}
		}
	}
	if r.Collection.IsAuth() {
		if err := s.deleteAuthState(ctx, q, r); err != nil {
			return err
		}
	}
	if err := s.store.DeleteRecord(ctx, q, r.Collection, r.ID()); err != nil {
		return err
	}
	return s.noteChange(ctx, q, ActionDelete, r)
}

// referencing returns the records of o whose relation field f holds id.
func (s *Service) referencing(ctx context.Context, q sqlstore.Querier, o *underhood.Collection, f *underhood.Field, id string) ([]*underhood.Record, error) {
	cond, err := s.containsID(o, f, []string{id})
	if err != nil {
		return nil, err
	}
	return s.store.Find(ctx, q, sqlstore.Query{Collection: o, Where: cond})
}

// containsID returns a condition matching records of o whose relation
// field f holds any of ids. It goes through the filter compiler so the
// dialect decides how a JSON array is searched; ids are bound as values.
func (s *Service) containsID(o *underhood.Collection, f *underhood.Field, ids []string) (sqlstore.Cond, error) {
	body := make(map[string]any, len(ids))
	terms := make([]string, len(ids))
	for i, id := range ids {
		k := fmt.Sprintf("id%d", i)
		body[k] = id
		if f.IsMulti() {
			terms[i] = f.Name + ":each ?= @request.body." + k
		} else {
			terms[i] = f.Name + " = @request.body." + k
		}
	}
	e, err := s.parseRule(strings.Join(terms, " || "))
	if err != nil {
		return nil, err
	}
	opts := s.filterOptions(o, &Request{Body: body})
	opts.Superuser = true
	x, err := filter.Compile(e, opts)
	if err != nil {
		return nil, err
	}
	return sqlstore.Filter(x), nil
}

func removeString(list []string, v string) []string {
	out := list[:0:0]
	for _, s := range list {
		if s != v {
			out = append(out, s)
		}
	}
	return out
}

// canManage reports whether the caller may manage auth record id of c as
// a superuser would (change its email, password without the old one, or
// verified state): a superuser, or a caller the collection's manageRule
// lets through. A null manageRule lets nobody else; it never fails open.
func (s *Service) canManage(ctx context.Context, q sqlstore.Querier, req *Request, c *underhood.Collection, id string) (bool, error) {
	if isSuperuser(req) {
		return true, nil
	}
	if !c.IsAuth() || c.Auth == nil || c.Auth.ManageRule == nil || req == nil || req.Auth == nil {
		return false, nil
	}
	_, err := s.findVisible(ctx, q, req, c, c.Auth.ManageRule, id)
	switch underhood.ErrorCode(err) {
	case "":
		return true, nil
	case underhood.ENotFound, underhood.EForbidden:
		return false, nil
	}
	return false, err
}

package record

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"strings"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/filter"
	"github.com/underhood/underhood/sqlstore"
)

// AuthorizeAdmin returns nil when auth may administer the project (read
// and change its collections and settings), and otherwise the error to
// answer: 401 for a guest, 403 for any record but a superuser. Every
// administrative method of the service checks it itself; an adapter calls
// it first only where it must refuse before reading a request, so that a
// guest meets 401 whatever body or query it sends.
func (s *Service) AuthorizeAdmin(auth *underhood.Record) error {
	return underhood.RequireSuperuser(auth)
}

// CollectionPage is one page of the collections list.
type CollectionPage struct {
	Page       int
	PerPage    int
	TotalItems int // -1 when the list was asked with SkipTotal
	TotalPages int // -1 when the list was asked with SkipTotal
	Items      []*underhood.Collection
}

// ListCollections returns, to a superuser, the page of collections that p
// asks for: p.Filter is the filter language over id, name, type, system,
// created and updated; p.Sort orders by name, type, created, updated or
// id ("-name,created"), creation order otherwise; paging is as for
// records (p.Expand does not apply).
func (s *Service) ListCollections(ctx context.Context, auth *underhood.Record, p ListParams) (_ *CollectionPage, err error) {
	defer underhood.Wrap(&err, "record.ListCollections")
	if err := s.AuthorizeAdmin(auth); err != nil {
		return nil, err
	}
	if p.Page < 1 {
		p.Page = 1
	}
	if p.PerPage < 1 {
		p.PerPage = DefaultPerPage
	}
	if p.PerPage > MaxPerPage {
		p.PerPage = MaxPerPage
	}
	list, err := s.filterCollections(ctx, p.Filter)
	if err != nil {
		return nil, err
	}
	sortCollections(list, p.Sort)
	total := len(list)
	from := min((p.Page-1)*p.PerPage, total)
	to := min(from+p.PerPage, total)
	page := &CollectionPage{Page: p.Page, PerPage: p.PerPage, TotalItems: total, TotalPages: (total + p.PerPage - 1) / p.PerPage, Items: list[from:to]}
	if p.SkipTotal {
		page.TotalItems, page.TotalPages = -1, -1
	}
	return page, nil
}

// sortCollections orders collections by a sort parameter over name
// (ignoring case), type, created, updated or id; a term it does not know
// leaves the order as it is, and the default is creation order.
func sortCollections(list []*underhood.Collection, spec string) {
	terms := strings.Split(spec, ",")
	// Stable sorts from the last term to the first leave the first term
	// deciding, the next one breaking its ties, and so on.
	for i := len(terms) - 1; i >= 0; i-- {
		t := strings.TrimSpace(terms[i])
		desc := strings.HasPrefix(t, "-")
		t = strings.TrimLeft(t, "+-")
		key := func(c *underhood.Collection) string {
			switch t {
			case "name":
				return strings.ToLower(c.Name)
			case "type":
				return c.Type
			case "created":
				return c.Created
			case "updated":
				return c.Updated
			case "id":
				return c.ID
			}
			return ""
		}
		sort.SliceStable(list, func(i, j int) bool {
			if desc {
				return key(list[i]) > key(list[j])
			}
			return key(list[i]) < key(list[j])
		})
	}
}

// ViewCollection returns collection nameOrID to a superuser. Anyone else
// is refused before the name is looked up, so that a guest cannot learn
// which collections exist.
func (s *Service) ViewCollection(ctx context.Context, auth *underhood.Record, nameOrID string) (_ *underhood.Collection, err error) {
	defer underhood.Wrap(&err, "record.ViewCollection(%s)", nameOrID)
	if err := s.AuthorizeAdmin(auth); err != nil {
		return nil, err
	}
	c, err := s.Collection(nameOrID)
	if err != nil {
		return nil, underhood.Errorf(underhood.ENotFound, "The requested resource wasn't found.")
	}
	return c, nil
}

// Scaffolds returns to a superuser the templates a new collection of each
// type starts from (ScaffoldCollections).
func (s *Service) Scaffolds(auth *underhood.Record) (map[string]*underhood.Collection, error) {
	if err := s.AuthorizeAdmin(auth); err != nil {
		return nil, err
	}
	return ScaffoldCollections(), nil
}

// ruleChecker returns a function that compiles rule against a schema in
// which c replaces its stored version, so rules may refer to fields added
// in the same change.
func (s *Service) ruleChecker(all []*underhood.Collection) func(c *underhood.Collection, rule string) error {
	return func(c *underhood.Collection, rule string) error {
		list := make([]*underhood.Collection, 0, len(all)+1)
		for _, o := range all {
			if o.ID != c.ID && !strings.EqualFold(o.Name, c.Name) {
				list = append(list, o)
			}
		}
		list = append(list, c)
		e, err := filter.Parse(rule)
		if err != nil {
			return err
		}
		_, err = filter.Compile(e, filter.Options{
			Schema: newSchema(list), Collection: c, Alias: "r", Dialect: s.dialect, Request: &filter.Request{},
		})
		return err
	}
}

// SaveCollection creates (when no collection has c's id or, for updates
// by path, the name given in target) or updates a collection and migrates
// its table in one transaction. target is the collection being updated
// ("" to create).
func (s *Service) SaveCollection(ctx context.Context, auth *underhood.Record, target string, c *underhood.Collection) (_ *underhood.Collection, err error) {
	defer underhood.Wrap(&err, "record.SaveCollection(%s)", c.Name)
	if err := s.AuthorizeAdmin(auth); err != nil {
		return nil, err
	}
	s.schemaMu.Lock()
	defer s.schemaMu.Unlock()

	var old *underhood.Collection
	if target != "" {
		old = s.schema.Load().FindCollection(target)
		if old == nil {
			return nil, underhood.Errorf(underhood.ENotFound, "The requested resource wasn't found.")
		}
		if c.ID == "" {
			c.ID = old.ID
		}
		if c.ID != old.ID {
			return nil, underhood.Invalid("Failed to update collection.", map[string]any{
				"id": underhood.FieldError{Code: "validation_id_change", Message: "Collection id cannot be changed."}})
		}
	}
	var saved *underhood.Collection
	err = s.store.Write(ctx, func(q sqlstore.Querier) error {
		var err error
		saved, err = s.saveCollectionTx(ctx, q, old, c, s.Collections())
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := s.reloadSchema(ctx); err != nil {
		return nil, err
	}
	return s.schema.Load().FindCollection(saved.ID), nil
}

func (s *Service) saveCollectionTx(ctx context.Context, q sqlstore.Querier, old, c *underhood.Collection, all []*underhood.Collection) (*underhood.Collection, error) {
	if c.Type == underhood.TypeView || (old != nil && old.Type == underhood.TypeView && c.Type == "") {
		if strings.TrimSpace(c.ViewQuery) == "" {
			return nil, underhood.Invalid("Failed to save collection.", map[string]any{
				"viewQuery": underhood.FieldError{Code: "validation_required", Message: "Cannot be blank."}})
		}
		fields, err := s.store.ViewFields(ctx, q, c.ViewQuery, all)
		if err != nil {
			return nil, err
		}
		c.Fields = fields
	}
	if old != nil {
		// A field sent without an id but with the name and type of an
		// existing field is that field: clients often resend the schema
		// without ids, and matching by name keeps the column and its data.
		for _, f := range c.Fields {
			if f.ID != "" {
				continue
			}
			if o := old.Field(f.Name); o != nil && o.Type == f.Type && c.FieldByID(o.ID) == nil {
				f.ID = o.ID
			}
		}
	}
	prepared, err := PrepareCollection(old, c, all, s.ruleChecker(all))
	if err != nil {
		return nil, err
	}
	if err := s.store.SaveCollection(ctx, q, old, prepared); err != nil {
		return nil, err
	}
	return prepared, nil
}

// DeleteCollection drops a collection and its table. System collections and
// collections that other collections' relation fields point to are refused.
func (s *Service) DeleteCollection(ctx context.Context, auth *underhood.Record, nameOrID string) (err error) {
	defer underhood.Wrap(&err, "record.DeleteCollection(%s)", nameOrID)
	if err := s.AuthorizeAdmin(auth); err != nil {
		return err
	}
	s.schemaMu.Lock()
	defer s.schemaMu.Unlock()
	c := s.schema.Load().FindCollection(nameOrID)
	if c == nil {
		return underhood.Errorf(underhood.ENotFound, "The requested resource wasn't found.")
	}
	if c.System {
		return underhood.Errorf(underhood.EInvalid, "System collection %q cannot be deleted.", c.Name)
	}
	if ref := referencingCollection(c, s.Collections()); ref != "" {
		return underhood.Errorf(underhood.EInvalid, "Collection %q is referenced by a relation field of %q and cannot be deleted.", c.Name, ref)
	}
	err = s.store.Write(ctx, func(q sqlstore.Querier) error {
		return s.store.DeleteCollection(ctx, q, c)
	})
	if err != nil {
		return err
	}
	return s.reloadSchema(ctx)
}

func referencingCollection(c *underhood.Collection, all []*underhood.Collection) string {
	for _, o := range all {
		if o.ID == c.ID {
			continue
		}
		for _, f := range o.Fields {
			if f.Type == underhood.FieldRelation && f.CollectionID == c.ID {
				return o.Name
			}
		}
	}
	return ""
}

// TruncateCollection deletes every record of a collection.
func (s *Service) TruncateCollection(ctx context.Context, auth *underhood.Record, nameOrID string) (err error) {
	defer underhood.Wrap(&err, "record.TruncateCollection(%s)", nameOrID)
	if err := s.AuthorizeAdmin(auth); err != nil {
		return err
	}
	c, err := s.Collection(nameOrID)
	if err != nil {
		return err
	}
	if c.IsView() {
		return underhood.Errorf(underhood.EInvalid, "View collections cannot be truncated.")
	}
	return s.store.Write(ctx, func(q sqlstore.Querier) error {
		return s.store.TruncateCollection(ctx, q, c)
	})
}

// ImportCollections creates or updates every collection in list (matched by
// id, then by name) in one transaction; with deleteMissing, collections not
// in list (other than system ones) are deleted. Nothing changes on error.
func (s *Service) ImportCollections(ctx context.Context, auth *underhood.Record, list []*underhood.Collection, deleteMissing bool) (err error) {
	defer underhood.Wrap(&err, "record.ImportCollections")
	if err := s.AuthorizeAdmin(auth); err != nil {
		return err
	}
	if len(list) == 0 {
		return underhood.Invalid("Failed to import collections.", map[string]any{
			"collections": underhood.FieldError{Code: "validation_required", Message: "Cannot be blank."}})
	}
	s.schemaMu.Lock()
	defer s.schemaMu.Unlock()
	err = s.store.Write(ctx, func(q sqlstore.Querier) error {
		all := append([]*underhood.Collection(nil), s.Collections()...)
		find := func(c *underhood.Collection) (int, *underhood.Collection) {
			for i, o := range all {
				if (c.ID != "" && o.ID == c.ID) || (c.ID == "" && strings.EqualFold(o.Name, c.Name)) {
					return i, o
				}
			}
			return -1, nil
		}
		// Pass one creates each new collection bare (no relation fields,
		// no rules) so that pass two can save every collection in full,
		// whatever order the list has and even when they refer to each other.
		for i, c := range list {
			if _, old := find(c); old != nil {
				continue
			}
			if c.ID == "" {
				c.ID = "pbc_" + underhood.RandomString(10)
			}
			for _, f := range c.Fields {
				if f.ID == "" {
					f.ID = f.Type + underhood.RandomString(10)
				}
			}
			bare := c.Clone()
			bare.ListRule, bare.ViewRule, bare.CreateRule, bare.UpdateRule, bare.DeleteRule = nil, nil, nil, nil, nil
			if bare.Auth != nil {
				bare.Auth.AuthRule, bare.Auth.ManageRule = nil, nil
			}
			bare.Fields = bare.Fields[:0]
			for _, f := range c.Fields {
				if f.Type != underhood.FieldRelation {
					bare.Fields = append(bare.Fields, f.Clone())
				}
			}
			bare.Indexes = nil
			if bare.IsView() {
				continue // views are created in pass two, once their sources exist
			}
			saved, err := s.saveCollectionTx(ctx, q, nil, bare, all)
			if err != nil {
				return importError(i, err)
			}
			all = append(all, saved)
		}
		for i, c := range list {
			idx, old := find(c)
			saved, err := s.saveCollectionTx(ctx, q, old, c.Clone(), all)
			if err != nil {
				return importError(i, err)
			}
			if idx >= 0 {
				all[idx] = saved
			} else {
				all = append(all, saved)
			}
		}
		if !deleteMissing {
			return nil
		}
		for _, o := range all {
			if o.System || containsCollection(list, o) {
				continue
			}
			if err := s.store.DeleteCollection(ctx, q, o); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.reloadSchema(ctx)
}

func containsCollection(list []*underhood.Collection, c *underhood.Collection) bool {
	for _, o := range list {
		if o.ID == c.ID || (o.ID == "" && strings.EqualFold(o.Name, c.Name)) {
			return true
		}
	}
	return false
}

func importError(i int, err error) error {
	var ue *underhood.Error
	if !errors.As(err, &ue) || ue.Code != underhood.EInvalid {
		return err
	}
	return underhood.Invalid("Failed to import collections.", map[string]any{
		"collections": map[string]any{strconv.Itoa(i): ue.Data},
	})
}

// collectionsMeta describes collections as records, so the collections
// list can be filtered with the same language as records.
var collectionsMeta = &underhood.Collection{
	ID: "_collections", Name: "_collections", Type: underhood.TypeBase,
	Fields: []*underhood.Field{
		{Name: "id", Type: underhood.FieldText},
		{Name: "name", Type: underhood.FieldText},
		{Name: "type", Type: underhood.FieldText},
		{Name: "system", Type: underhood.FieldBool},
		{Name: "created", Type: underhood.FieldText},
		{Name: "updated", Type: underhood.FieldText},
	},
}

// filterCollections returns the collections matching a filter over their
// id, name, type, system, created and updated properties.
func (s *Service) filterCollections(ctx context.Context, src string) ([]*underhood.Collection, error) {
	all := s.Collections()
	list := make([]*underhood.Collection, 0, len(all))
	if strings.TrimSpace(src) == "" {
		return append(list, all...), nil
	}
	e, err := filter.Parse(src)
	if err != nil {
		return nil, filterError(err)
	}
	opts := filter.Options{Schema: newSchema([]*underhood.Collection{collectionsMeta}), Collection: collectionsMeta,
		Alias: "r", Dialect: s.dialect, Superuser: true, Now: s.now()}
	for _, c := range all {
		r := &underhood.Record{Collection: collectionsMeta, Data: map[string]any{
			"id": c.ID, "name": c.Name, "type": c.Type, "system": c.System, "created": c.Created, "updated": c.Updated,
		}}
		ok, err := filter.Match(ctx, e, opts, r, nil)
		if err != nil {
			return nil, filterError(err)
		}
		if ok {
			list = append(list, c)
		}
	}
	return list, nil
}

package record

import (
	"errors"
	"fmt"
	"hash/crc32"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/sqlstore"
)

const (
	maxNameLength      = 100
	maxIndexNameLength = 64
	maxTokenDuration   = 94670856 // ~3 years, as PocketBase
	minTokenDuration   = 10
	minSecretLength    = 30
	maxSecretLength    = 255
	maxPasswordCost    = 31
	minPasswordCost    = 4
	defaultIDPattern   = "^[a-z0-9]+$"
	defaultIDGenerator = "[a-z0-9]{15}"
)

var (
	collectionNameRe = regexp.MustCompile(`^[a-zA-Z0-9_]+$`)
	fieldNameRe      = regexp.MustCompile(`^\w+$`)
	collectionIDRe   = regexp.MustCompile(`^\w+$`)
	thumbRe          = regexp.MustCompile(`^(\d+)x(\d+)(t|b|f)?$`)
)

// reservedFieldNames are names a field cannot take: record keys the API
// adds and filter literals.
var reservedFieldNames = []string{"expand", "collectionId", "collectionName", "null", "true", "false"}

// systemColumnNames are the hidden columns every table has on one of the
// engines: SQLite's row id under its three names and PostgreSQL's system
// columns. A field of that name would shadow the row id the store orders
// by, or fail to be created (or added) on one engine but not the other.
var systemColumnNames = []string{"rowid", "_rowid_", "oid", "ctid", "xmin", "xmax", "cmin", "cmax", "tableoid"}

// reservedAuthFieldNames are body keys auth collections use for themselves.
var reservedAuthFieldNames = []string{"passwordConfirm", "oldPassword"}

// reservedTableNames are tables of the system that no collection may shadow.
var reservedTableNames = []string{"_collections", "_params", "_migrations"}

// PrepareCollection validates c (a new collection when old is nil, else
// the replacement of old) against all, the stored collections, and returns
// the normalised copy to store: the type defaulted, ids given to the
// collection and its new fields, the system fields of base and auth
// collections ensured, relation targets resolved to ids, date bounds and
// indexes normalised (auth collections get their unique tokenKey and email
// indexes), auth options defaulted (token secrets generated or kept from
// old) and created/updated stamped. Rules are compiled with checkRule
// (nil skips that check). c itself is not modified.
//
// Every problem found is reported at once in a *underhood.Error EInvalid
// whose data mirrors the collection JSON: {"name": FieldError,
// "fields": {"2": {"name": FieldError}}, "indexes": {"0": FieldError},
// "listRule": FieldError, "passwordAuth": {"identityFields": FieldError}, …}.
func PrepareCollection(old, c *underhood.Collection, all []*underhood.Collection, checkRule func(c *underhood.Collection, rule string) error) (*underhood.Collection, error) {
	if c == nil {
		return nil, underhood.Errorf(underhood.EInvalid, "Failed to save collection.")
	}
	p := &preparer{old: old, c: c.Clone(), errs: map[string]any{}, now: time.Now().UTC()}
	for _, o := range all {
		if o == nil || (old != nil && o.ID == old.ID) {
			continue
		}
		p.others = append(p.others, o)
	}
	if c.Auth != nil && c.Auth.OAuth2.MappedFields != nil {
		p.c.Auth.OAuth2.MappedFields = make(map[string]string, len(c.Auth.OAuth2.MappedFields))
		for k, v := range c.Auth.OAuth2.MappedFields {
			p.c.Auth.OAuth2.MappedFields[k] = v
		}
	}

	if !p.prepareType() {
		return nil, p.result()
	}
	p.prepareID()
	p.prepareName()
	p.prepareFields()
	p.prepareIndexes()
	p.prepareAuth()
	if len(p.fieldErrs) == 0 && p.listErr == nil {
		p.prepareRules(checkRule) // rules cannot be judged against broken fields
	}
	p.stamp()
	if err := p.result(); err != nil {
		return nil, err
	}
	return p.c, nil
}

// preparer carries one PrepareCollection call.
type preparer struct {
	old    *underhood.Collection
	c      *underhood.Collection // the copy being normalised
	others []*underhood.Collection
	now    time.Time

	errs      map[string]any
	fieldErrs map[string]any // per field index, merged into errs["fields"]
	listErr   *underhood.FieldError
	indexes   []*sqlstore.Index // parsed c.Indexes, for identity field checks
}

func (p *preparer) result() error {
	// An error about the list as a whole (a system field removed, two
	// primary keys) is the cause of any per-field ones, so it wins.
	if p.listErr != nil {
		p.errs["fields"] = *p.listErr
	} else if len(p.fieldErrs) > 0 {
		p.errs["fields"] = p.fieldErrs
	}
	if len(p.errs) == 0 {
		return nil
	}
	return underhood.Invalid("Failed to save collection.", p.errs)
}

// fail records the first error of a top-level key.
func (p *preparer) fail(key string, fe underhood.FieldError) {
	if _, ok := p.errs[key]; !ok {
		p.errs[key] = fe
	}
}

// failIn records the first error of key.sub (e.g. "passwordAuth"."identityFields").
func (p *preparer) failIn(key, sub string, fe underhood.FieldError) {
	m, ok := p.errs[key].(map[string]any)
	if !ok {
		if _, taken := p.errs[key]; taken {
			return
		}
		m = map[string]any{}
		p.errs[key] = m
	}
	if _, ok := m[sub]; !ok {
		m[sub] = fe
	}
}

// failField records the first error of property prop of field i.
func (p *preparer) failField(i int, prop string, fe underhood.FieldError) {
	if p.fieldErrs == nil {
		p.fieldErrs = map[string]any{}
	}
	key := strconv.Itoa(i)
	m, ok := p.fieldErrs[key].(map[string]any)
	if !ok {
		m = map[string]any{}
		p.fieldErrs[key] = m
	}
	if _, ok := m[prop]; !ok {
		m[prop] = fe
	}
}

// failFields records an error about the field list as a whole.
func (p *preparer) failFields(fe underhood.FieldError) {
	if p.listErr == nil {
		p.listErr = &fe
	}
}

func (p *preparer) prepareType() bool {
	c := p.c
	if c.Type == "" {
		c.Type = underhood.TypeBase
		if p.old != nil {
			c.Type = p.old.Type
		}
	}
	switch c.Type {
	case underhood.TypeBase, underhood.TypeAuth, underhood.TypeView:
	default:
		p.fail("type", underhood.FieldError{Code: "validation_in_invalid", Message: "Must be one of base, auth or view."})
		return false
	}
	if p.old != nil && c.Type != p.old.Type {
		p.fail("type", underhood.FieldError{Code: "validation_collection_type_change", Message: "Collection type cannot be changed."})
		return false
	}
	return true
}

func (p *preparer) prepareID() {
	c := p.c
	if p.old != nil {
		if c.ID == "" {
			c.ID = p.old.ID
		}
		if c.ID != p.old.ID {
			p.fail("id", underhood.FieldError{Code: "validation_id_change", Message: "Collection id cannot be changed."})
			c.ID = p.old.ID
		}
		if c.System != p.old.System {
			p.fail("system", underhood.FieldError{Code: "validation_collection_system_flag_change", Message: "System collection state cannot be changed."})
			c.System = p.old.System
		}
		return
	}
	if c.ID == "" {
		c.ID = p.newCollectionID()
		return
	}
	switch {
	case len(c.ID) > maxNameLength || !collectionIDRe.MatchString(c.ID):
		p.fail("id", underhood.FieldError{Code: "validation_invalid_id", Message: "The id must be 1-100 letters, digits or underscores."})
	case p.findOther(c.ID) != nil:
		p.fail("id", underhood.FieldError{Code: "validation_not_unique", Message: "The id is already in use."})
	}
}

// newCollectionID derives PocketBase's id, "pbc_" and the CRC-32 of type
// and name, numbered when another collection already has it.
func (p *preparer) newCollectionID() string {
	base := "pbc_" + crc32String(p.c.Type+p.c.Name)
	id := base
	for i := 2; p.findOther(id) != nil; i++ {
		id = base + strconv.Itoa(i)
	}
	return id
}

func crc32String(s string) string {
	return strconv.FormatUint(uint64(crc32.ChecksumIEEE([]byte(s))), 10)
}

// findOther returns another collection whose id or name (case-insensitive) is key.
func (p *preparer) findOther(key string) *underhood.Collection {
	for _, o := range p.others {
		if o.ID == key {
			return o
		}
	}
	for _, o := range p.others {
		if strings.EqualFold(o.Name, key) {
			return o
		}
	}
	return nil
}

func (p *preparer) prepareName() {
	c := p.c
	name := c.Name
	lower := strings.ToLower(name)
	invalid := func(msg string) {
		p.fail("name", underhood.FieldError{Code: "validation_invalid_name", Message: msg})
	}
	switch {
	case name == "":
		p.fail("name", requiredError)
	case len(name) > maxNameLength:
		p.fail("name", underhood.FieldError{
			Code: "validation_length_out_of_range", Message: "The length must be between 1 and 100.",
			Params: map[string]any{"min": 1, "max": maxNameLength},
		})
	case !collectionNameRe.MatchString(name):
		invalid("Only letters, digits and underscores are allowed.")
	case strings.Contains(lower, "_via_"):
		p.fail("name", underhood.FieldError{Code: "validation_found_via", Message: `The value cannot contain "_via_".`})
	case strings.HasPrefix(lower, "sqlite_") || listHasFold(reservedTableNames, name):
		invalid("The name is reserved for internal use.")
	case strings.HasPrefix(name, "_") && !c.System:
		invalid("Only system collections may start with an underscore.")
	case p.old != nil && p.old.System && name != p.old.Name:
		p.fail("name", underhood.FieldError{Code: "validation_collection_system_name_change", Message: "System collection name cannot be changed."})
	default:
		for _, o := range p.others {
			if strings.EqualFold(o.Name, name) {
				p.fail("name", underhood.FieldError{Code: "validation_collection_name_exists", Message: "Collection name must be unique (case insensitive)."})
				return
			}
			if o.ID == name {
				p.fail("name", underhood.FieldError{Code: "validation_collection_name_id_duplicate", Message: "The name must not match an existing collection id."})
				return
			}
		}
	}
}

func listHasFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// systemFieldSpec describes a field every collection of a type must have.
type systemFieldSpec struct {
	name    string
	typ     string
	make    func() *underhood.Field
	enforce func(f *underhood.Field)
}

var idFieldSpec = systemFieldSpec{
	name: "id", typ: underhood.FieldText, make: newIDField,
	enforce: func(f *underhood.Field) {
		f.System, f.Required, f.PrimaryKey, f.Hidden = true, true, true, false
		if f.Pattern == "" {
			f.Pattern = defaultIDPattern
		}
	},
}

var authFieldSpecs = []systemFieldSpec{
	{name: "password", typ: underhood.FieldPassword, make: newPasswordField,
		enforce: func(f *underhood.Field) { f.System, f.Hidden, f.Required = true, true, true }},
	{name: "tokenKey", typ: underhood.FieldText, make: newTokenKeyField,
		enforce: func(f *underhood.Field) {
			f.System, f.Hidden, f.Required = true, true, true
			if f.AutogeneratePattern == "" {
				f.AutogeneratePattern = "[a-zA-Z0-9]{50}"
			}
		}},
	{name: "email", typ: underhood.FieldEmail, make: newEmailField,
		enforce: func(f *underhood.Field) { f.System, f.Hidden = true, false }},
	{name: "emailVisibility", typ: underhood.FieldBool, make: func() *underhood.Field { return newSystemBool("emailVisibility") },
		enforce: func(f *underhood.Field) { f.System = true }},
	{name: "verified", typ: underhood.FieldBool, make: func() *underhood.Field { return newSystemBool("verified") },
		enforce: func(f *underhood.Field) { f.System = true }},
}

// ensureSystemField makes sure c has the field spec describes: a missing
// one is taken back from old (keeping its id) or created, an existing one
// gets its system properties enforced.
func (p *preparer) ensureSystemField(spec systemFieldSpec, prepend bool) {
	c := p.c
	for i, f := range c.Fields {
		if f == nil || f.Name != spec.name {
			continue
		}
		if f.Type != spec.typ {
			p.failField(i, "type", underhood.FieldError{
				Code:    "validation_invalid_system_field",
				Message: fmt.Sprintf("The system field %q must be of type %s.", spec.name, spec.typ),
			})
			return
		}
		spec.enforce(f)
		return
	}
	var f *underhood.Field
	if p.old != nil {
		if of := p.old.Field(spec.name); of != nil && of.Type == spec.typ && c.FieldByID(of.ID) == nil {
			f = of.Clone()
		}
	}
	if f == nil {
		f = spec.make()
	}
	spec.enforce(f)
	if prepend {
		c.Fields = append([]*underhood.Field{f}, c.Fields...)
	} else {
		c.Fields = append(c.Fields, f)
	}
}

func (p *preparer) prepareFields() {
	c := p.c
	switch c.Type {
	case underhood.TypeView:
		if len(c.Fields) == 0 {
			p.failFields(requiredError)
		}
	default:
		p.ensureSystemField(idFieldSpec, true)
		if c.Type == underhood.TypeAuth {
			for _, spec := range authFieldSpecs {
				p.ensureSystemField(spec, false)
			}
		}
	}
	if c.Type != underhood.TypeView {
		c.ViewQuery = ""
	}

	if p.old != nil && c.Type != underhood.TypeView {
		for _, of := range p.old.Fields {
			if !of.System {
				continue
			}
			if nf := c.FieldByID(of.ID); nf == nil || nf.Name != of.Name {
				p.failFields(underhood.FieldError{Code: "validation_system_field_change", Message: "System fields cannot be deleted or renamed."})
				break
			}
		}
	}

	taken := map[string]bool{}
	for _, f := range c.Fields {
		if f != nil && f.ID != "" {
			taken[f.ID] = true
		}
	}
	if p.old != nil {
		for _, f := range p.old.Fields {
			taken[f.ID] = true
		}
	}
	ids := map[string]bool{}
	names := map[string]bool{}
	for i, f := range c.Fields {
		if f == nil {
			p.failField(i, "type", underhood.FieldError{Code: "validation_invalid_field", Message: "Invalid field."})
			continue
		}
		// View fields are inferred from the query: two columns copied from
		// fields of different collections may share an id.
		if f.ID == "" || (c.Type == underhood.TypeView && ids[f.ID]) {
			f.ID = newFieldID(f, taken)
			taken[f.ID] = true
		}
		switch {
		case len(f.ID) > maxNameLength:
			p.failField(i, "id", underhood.FieldError{Code: "validation_length_out_of_range", Message: "The length must be between 1 and 100."})
		case ids[f.ID]:
			p.failField(i, "id", underhood.FieldError{Code: "validation_duplicated_field_id", Message: fmt.Sprintf("Duplicated or invalid field id %q.", f.ID)})
		}
		ids[f.ID] = true

		if fe := p.checkFieldName(f); fe != nil {
			p.failField(i, "name", *fe)
		} else if names[strings.ToLower(f.Name)] {
			p.failField(i, "name", underhood.FieldError{
				Code: "validation_duplicated_field_name", Message: fmt.Sprintf("Duplicated or invalid field name %s.", f.Name),
				Params: map[string]any{"fieldName": f.Name},
			})
		}
		names[strings.ToLower(f.Name)] = true

		if !listHas(underhood.FieldTypes, f.Type) {
			p.failField(i, "type", underhood.FieldError{Code: "validation_invalid_field_type", Message: fmt.Sprintf("Unknown field type %q.", f.Type)})
			continue
		}
		// The columns of a view follow its query, so their types may change.
		if p.old != nil && c.Type != underhood.TypeView {
			if of := p.old.FieldByID(f.ID); of != nil {
				if of.Type != f.Type {
					p.failField(i, "type", underhood.FieldError{Code: "validation_field_type_change", Message: "Field type cannot be changed."})
					continue
				}
				if of.System {
					f.System = true
				}
			}
		}
		p.checkFieldSettings(i, f)
	}
}

// newFieldID returns PocketBase's default field id, the type and the
// CRC-32 of the name, or the type and random characters when that id is
// taken (by another field or a field of the stored collection).
func newFieldID(f *underhood.Field, taken map[string]bool) string {
	id := f.Type + crc32String(f.Name)
	for taken[id] {
		id = f.Type + underhood.RandomString(10)
	}
	return id
}

func (p *preparer) checkFieldName(f *underhood.Field) *underhood.FieldError {
	name := f.Name
	switch {
	case name == "":
		return fieldErrPtr(requiredError)
	case len(name) > maxNameLength:
		return fieldErrPtr(underhood.FieldError{Code: "validation_length_out_of_range", Message: "The length must be between 1 and 100."})
	case !fieldNameRe.MatchString(name):
		return fieldErrPtr(underhood.FieldError{Code: "validation_invalid_name", Message: "Only letters, digits and underscores are allowed."})
	case strings.Contains(strings.ToLower(name), "_via_"):
		return fieldErrPtr(underhood.FieldError{Code: "validation_found_via", Message: `The value cannot contain "_via_".`})
	case listHasFold(systemColumnNames, name):
		return fieldErrPtr(underhood.FieldError{Code: "validation_reserved_field_name",
			Message: fmt.Sprintf("The field name %q is reserved for a system column of the database and cannot be used.", name)})
	case listHasFold(reservedFieldNames, name),
		p.c.Type == underhood.TypeAuth && listHasFold(reservedAuthFieldNames, name):
		return fieldErrPtr(underhood.FieldError{Code: "validation_reserved_field_name", Message: "The field name is reserved and cannot be used."})
	}
	return nil
}

func minError(min float64) underhood.FieldError {
	return underhood.FieldError{
		Code: "validation_min_greater_equal_than_required", Message: "Must be no less than " + formatNumber(min) + ".",
		Params: map[string]any{"threshold": min},
	}
}

func maxError(max float64) underhood.FieldError {
	return underhood.FieldError{
		Code: "validation_max_less_equal_than_required", Message: "Must be no greater than " + formatNumber(max) + ".",
		Params: map[string]any{"threshold": max},
	}
}

func regexError(err error) underhood.FieldError {
	return underhood.FieldError{Code: "validation_invalid_regex", Message: "Invalid regular expression: " + err.Error() + "."}
}

func floatOr(p *float64, def float64) float64 {
	if p == nil {
		return def
	}
	return *p
}

// checkFieldSettings validates the type-specific properties of field i.
func (p *preparer) checkFieldSettings(i int, f *underhood.Field) {
	switch f.Type {
	case underhood.FieldText:
		p.checkLengths(i, f, 0)
		if f.Pattern != "" {
			if _, err := regexp.Compile(f.Pattern); err != nil {
				p.failField(i, "pattern", regexError(err))
			}
		}
		// Only "id" may be the primary key, which also rules out composite keys.
		if f.PrimaryKey && f.Name != "id" {
			p.failField(i, "primaryKey", underhood.FieldError{Code: "validation_in_invalid", Message: `The primary key must be named "id".`})
		}
		p.checkAutogenerate(i, f)
	case underhood.FieldPassword:
		p.checkLengths(i, f, bcryptMaxBytes)
		if f.Pattern != "" {
			if _, err := regexp.Compile(f.Pattern); err != nil {
				p.failField(i, "pattern", regexError(err))
			}
		}
		switch {
		case f.Cost == 0:
		case f.Cost < minPasswordCost:
			p.failField(i, "cost", minError(minPasswordCost))
		case f.Cost > maxPasswordCost:
			p.failField(i, "cost", maxError(maxPasswordCost))
		}
	case underhood.FieldNumber:
		for _, b := range []struct {
			prop string
			v    *float64
		}{{"min", f.Min}, {"max", f.Max}} {
			if b.v != nil && f.OnlyInt && *b.v != float64(int64(*b.v)) {
				p.failField(i, b.prop, underhood.FieldError{Code: "validation_only_int_constraint", Message: "Decimal numbers are not allowed."})
			}
		}
		if f.Min != nil && f.Max != nil && *f.Max < *f.Min {
			p.failField(i, "max", minError(*f.Min))
		}
	case underhood.FieldEmail, underhood.FieldURL:
		if len(f.OnlyDomains) > 0 && len(f.ExceptDomains) > 0 {
			p.failField(i, "exceptDomains", underhood.FieldError{Code: "validation_empty", Message: "Must be empty when onlyDomains is set."})
		}
		for _, list := range []struct {
			prop    string
			domains []string
		}{{"onlyDomains", f.OnlyDomains}, {"exceptDomains", f.ExceptDomains}} {
			for _, d := range list.domains {
				if !validDomain(d) {
					p.failField(i, list.prop, underhood.FieldError{
						Code: "validation_is_domain", Message: fmt.Sprintf("Invalid domain %q.", d),
						Params: map[string]any{"domain": d},
					})
					break
				}
			}
		}
	case underhood.FieldEditor, underhood.FieldJSON:
		if f.MaxSize < 0 {
			p.failField(i, "maxSize", minError(0))
		}
	case underhood.FieldDate:
		p.checkDateBounds(i, f)
	case underhood.FieldSelect:
		p.checkSelect(i, f)
	case underhood.FieldFile:
		if f.MaxSize < 0 {
			p.failField(i, "maxSize", minError(0))
		}
		if f.MaxSelect < 0 {
			p.failField(i, "maxSelect", minError(0))
		}
		for _, t := range f.Thumbs {
			m := thumbRe.FindStringSubmatch(t)
			if m == nil || (m[1] == "0" && m[2] == "0") {
				p.failField(i, "thumbs", underhood.FieldError{
					Code: "validation_invalid_thumb_format", Message: fmt.Sprintf("Invalid thumb size %q (expected WxH, WxHt, WxHb, WxHf, 0xH or Wx0).", t),
				})
				break
			}
		}
	case underhood.FieldRelation:
		p.checkRelation(i, f)
	}
}

// checkLengths validates min/max lengths of text and password fields; limit
// is the highest max allowed (0 = none).
func (p *preparer) checkLengths(i int, f *underhood.Field, limit float64) {
	min, max := floatOr(f.Min, 0), floatOr(f.Max, 0)
	if min < 0 {
		p.failField(i, "min", minError(0))
	}
	switch {
	case max < 0:
		p.failField(i, "max", minError(0))
	case limit > 0 && max > limit:
		p.failField(i, "max", maxError(limit))
	case max > 0 && max < min:
		p.failField(i, "max", minError(min))
	}
	if limit > 0 && min > limit {
		p.failField(i, "min", maxError(limit))
	}
}

func (p *preparer) checkAutogenerate(i int, f *underhood.Field) {
	if f.AutogeneratePattern == "" {
		return
	}
	if _, err := parseAutogenerate(f.AutogeneratePattern); err != nil {
		p.failField(i, "autogeneratePattern", underhood.FieldError{Code: "validation_invalid_autogenerate_pattern", Message: "Unsupported autogenerate pattern: " + err.Error() + "."})
		return
	}
	// The generated values must satisfy the field's own checks.
	probe := f.Clone()
	probe.Required = false
	for range 10 {
		v := Autogenerate(f.AutogeneratePattern)
		if fe := validateText(probe, v); fe != nil {
			p.failField(i, "autogeneratePattern", underhood.FieldError{
				Code:    "validation_invalid_autogenerate_pattern_value",
				Message: fmt.Sprintf("The autogenerate pattern could produce invalid field values, e.g. %q.", v),
			})
			return
		}
	}
}

func (p *preparer) checkDateBounds(i int, f *underhood.Field) {
	var bounds [2]time.Time
	for j, b := range []struct {
		prop string
		v    *string
	}{{"min", &f.DateMin}, {"max", &f.DateMax}} {
		t, err := underhood.ParseTime(strings.TrimSpace(*b.v))
		if err != nil {
			p.failField(i, b.prop, underhood.FieldError{Code: "validation_invalid_date", Message: "Must be a valid datetime."})
			continue
		}
		*b.v = underhood.FormatTime(t)
		bounds[j] = t
	}
	if !bounds[0].IsZero() && !bounds[1].IsZero() && bounds[1].Before(bounds[0]) {
		p.failField(i, "max", underhood.FieldError{
			Code: "validation_min_greater_equal_than_required", Message: "Must be no less than " + f.DateMin + ".",
			Params: map[string]any{"threshold": f.DateMin},
		})
	}
}

func (p *preparer) checkSelect(i int, f *underhood.Field) {
	if len(f.Values) == 0 {
		p.failField(i, "values", requiredError)
	}
	seen := map[string]bool{}
	for _, v := range f.Values {
		if strings.TrimSpace(v) == "" {
			p.failField(i, "values", underhood.FieldError{Code: "validation_required", Message: "Values cannot be blank."})
			break
		}
		if seen[v] {
			p.failField(i, "values", underhood.FieldError{
				Code: "validation_not_unique", Message: fmt.Sprintf("Duplicated value %q.", v),
				Params: map[string]any{"value": v},
			})
			break
		}
		seen[v] = true
	}
	switch {
	case f.MaxSelect < 0:
		p.failField(i, "maxSelect", minError(0))
	case len(f.Values) > 0 && f.MaxSelect > len(f.Values):
		p.failField(i, "maxSelect", maxError(float64(len(f.Values))))
	}
}

func (p *preparer) checkRelation(i int, f *underhood.Field) {
	c := p.c
	var target *underhood.Collection
	switch {
	case f.CollectionID == "":
		p.failField(i, "collectionId", requiredError)
	case f.CollectionID == c.ID || strings.EqualFold(f.CollectionID, c.Name):
		target = c
	default:
		target = p.findOther(f.CollectionID)
	}
	if f.CollectionID != "" && target == nil {
		p.failField(i, "collectionId", underhood.FieldError{Code: "validation_field_invalid_relation", Message: "The relation collection doesn't exist."})
	}
	if target != nil {
		f.CollectionID = target.ID
		if p.old != nil && c.Type != underhood.TypeView {
			if of := p.old.FieldByID(f.ID); of != nil && of.Type == f.Type && of.CollectionID != f.CollectionID {
				p.failField(i, "collectionId", underhood.FieldError{Code: "validation_field_relation_change", Message: "The relation collection cannot be changed."})
			}
		}
	}
	switch {
	case c.Type == underhood.TypeView:
		f.CascadeDelete = false // records of a view are never deleted
	case target != nil && target.Type == underhood.TypeView && f.CascadeDelete:
		p.failField(i, "cascadeDelete", underhood.FieldError{Code: "validation_view_cascade_delete", Message: "Relations to a view collection cannot cascade delete."})
	}
	if f.MinSelect < 0 {
		p.failField(i, "minSelect", minError(0))
	}
	switch {
	case f.MaxSelect < 0:
		p.failField(i, "maxSelect", minError(0))
	case f.MinSelect > 1 && f.MaxSelect < f.MinSelect:
		p.failField(i, "maxSelect", minError(float64(f.MinSelect)))
	case f.MaxSelect > 0 && f.MaxSelect < f.MinSelect:
		p.failField(i, "maxSelect", minError(float64(f.MinSelect)))
	}
}

// prepareRules refuses write rules on views and changes to the rules of
// system collections, then compiles every non-empty rule with checkRule.
func (p *preparer) prepareRules(checkRule func(c *underhood.Collection, rule string) error) {
	c := p.c
	type ruleRef struct {
		key  string
		rule underhood.Rule
		old  underhood.Rule
	}
	var oldC underhood.Collection
	if p.old != nil {
		oldC = *p.old
	}
	rules := []ruleRef{
		{"listRule", c.ListRule, oldC.ListRule},
		{"viewRule", c.ViewRule, oldC.ViewRule},
		{"createRule", c.CreateRule, oldC.CreateRule},
		{"updateRule", c.UpdateRule, oldC.UpdateRule},
		{"deleteRule", c.DeleteRule, oldC.DeleteRule},
	}
	if c.Auth != nil {
		var oldAuth underhood.AuthOptions
		if oldC.Auth != nil {
			oldAuth = *oldC.Auth
		}
		rules = append(rules, ruleRef{"authRule", c.Auth.AuthRule, oldAuth.AuthRule}, ruleRef{"manageRule", c.Auth.ManageRule, oldAuth.ManageRule})
		if c.Auth.ManageRule != nil && strings.TrimSpace(*c.Auth.ManageRule) == "" {
			p.fail("manageRule", underhood.FieldError{Code: "validation_nil_or_not_empty_required", Message: "Must be null or a non-empty rule."})
		}
	}
	if c.Type == underhood.TypeView {
		for _, r := range rules[2:5] {
			if r.rule != nil {
				p.fail(r.key, underhood.FieldError{Code: "validation_nil", Message: "View collections are read only: the rule must be null."})
			}
		}
	}
	for _, r := range rules {
		if p.old != nil && p.old.System && !sameRule(r.rule, r.old) {
			p.fail(r.key, underhood.FieldError{Code: "validation_collection_system_rule_change", Message: "System collection API rule cannot be changed."})
			continue
		}
		if r.rule == nil || strings.TrimSpace(*r.rule) == "" || checkRule == nil {
			continue
		}
		if _, failed := p.errs[r.key]; failed {
			continue
		}
		if err := checkRule(c, *r.rule); err != nil {
			p.fail(r.key, underhood.FieldError{Code: "validation_invalid_rule", Message: ruleErrorMessage(err)})
		}
	}
	if c.Auth != nil && c.Auth.MFA.Enabled && strings.TrimSpace(c.Auth.MFA.Rule) != "" && checkRule != nil {
		if err := checkRule(c, c.Auth.MFA.Rule); err != nil {
			p.failIn("mfa", "rule", underhood.FieldError{Code: "validation_invalid_rule", Message: ruleErrorMessage(err)})
		}
	}
}

func sameRule(a, b underhood.Rule) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

// ruleErrorMessage is the client-safe text of a rule compile error.
func ruleErrorMessage(err error) string {
	var e *underhood.Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	return err.Error()
}

// prepareIndexes parses and normalises the indexes of c: each names known
// columns, index names are unique (SQLite index names are global, so
// across collections too), the table is always c's current name, and auth
// collections get their unique tokenKey and email indexes.
func (p *preparer) prepareIndexes() {
	c := p.c
	if c.Type == underhood.TypeView {
		if len(c.Indexes) > 0 {
			p.fail("indexes", underhood.FieldError{Code: "validation_indexes_not_supported", Message: "View collections don't support indexes."})
		}
		c.Indexes = nil
		return
	}
	errs := map[string]any{}
	failAt := func(i int, fe underhood.FieldError) {
		if _, ok := errs[strconv.Itoa(i)]; !ok {
			errs[strconv.Itoa(i)] = fe
		}
	}
	names := map[string]bool{}
	defs := map[string]bool{}
	var parsed []*sqlstore.Index
	for i, raw := range c.Indexes {
		ix, err := parseIndex(raw)
		if err != nil {
			failAt(i, underhood.FieldError{Code: "validation_invalid_index_expression", Message: "Invalid CREATE INDEX expression: " + err.Error() + "."})
			continue
		}
		ix.Table = c.Name
		for j := range ix.Columns {
			f := fieldByNameFold(c, ix.Columns[j].Name)
			if f == nil {
				failAt(i, underhood.FieldError{
					Code: "validation_missing_index_field", Message: fmt.Sprintf("Unknown column %q.", ix.Columns[j].Name),
					Params: map[string]any{"fieldName": ix.Columns[j].Name},
				})
				break
			}
			ix.Columns[j].Name = f.Name
		}
		lname := strings.ToLower(ix.Name)
		if names[lname] {
			failAt(i, underhood.FieldError{Code: "validation_duplicated_index_name", Message: "The index name already exists."})
		}
		names[lname] = true
		if owner := p.indexOwner(ix.Name); owner != "" {
			failAt(i, underhood.FieldError{
				Code: "validation_existing_index_name", Message: fmt.Sprintf("The index name is already used in %s collection.", owner),
				Params: map[string]any{"usedTableName": owner},
			})
		}
		def := ix.Definition()
		if defs[def] {
			failAt(i, underhood.FieldError{Code: "validation_duplicated_index_definition", Message: "The index definition already exists."})
		}
		defs[def] = true
		parsed = append(parsed, ix)
	}
	if len(errs) > 0 {
		p.errs["indexes"] = errs
		return
	}
	if c.Type == underhood.TypeAuth {
		if !hasSingleUniqueIndex(parsed, "tokenKey") {
			parsed = append(parsed, &sqlstore.Index{Unique: true, Name: authIndexName("tokenKey", c), Table: c.Name, Columns: []sqlstore.IndexColumn{{Name: "tokenKey"}}})
		}
		if !hasSingleUniqueIndex(parsed, "email") {
			parsed = append(parsed, &sqlstore.Index{Unique: true, Name: authIndexName("email", c), Table: c.Name, Columns: []sqlstore.IndexColumn{{Name: "email", Collate: "NOCASE"}}, Where: "email != ''"})
		}
		p.emailIndexIgnoringCase(parsed)
	}
	p.indexes = parsed
	c.Indexes = make([]string, len(parsed))
	for i, ix := range parsed {
		c.Indexes[i] = ix.String()
	}
}

// emailIndexIgnoringCase makes the unique email index of an auth
// collection unique regardless of case (email.go), unless the collection
// already has a case-sensitive one: then its records hold emails that
// differ only in case, which keep the index from being created until
// they are resolved (migrateEmailIndexes), and the collection must stay
// editable meanwhile.
func (p *preparer) emailIndexIgnoringCase(parsed []*sqlstore.Index) {
	var first *sqlstore.Index
	for _, ix := range parsed {
		if !isEmailIndex(ix) {
			continue
		}
		if ix.Columns[0].Collate == "NOCASE" {
			return
		}
		if first == nil {
			first = ix
		}
	}
	if first == nil || (p.old != nil && p.old.IsAuth() && !emailIgnoresCase(p.old) && hasEmailIndex(p.old)) {
		return
	}
	first.Columns[0].Collate = "NOCASE"
}

// hasEmailIndex reports whether c has a unique index of its email.
func hasEmailIndex(c *underhood.Collection) bool {
	for _, raw := range c.Indexes {
		if ix, err := parseIndex(raw); err == nil && isEmailIndex(ix) {
			return true
		}
	}
	return false
}

// indexOwner returns the name of another collection that has an index
// called name, or "".
func (p *preparer) indexOwner(name string) string {
	for _, o := range p.others {
		for _, raw := range o.Indexes {
			if ix, err := parseIndex(raw); err == nil && strings.EqualFold(ix.Name, name) {
				return o.Name
			}
		}
	}
	return ""
}

// authIndexName is PocketBase's name of the unique index on a system field
// of an auth collection; based on the id, it survives renames.
func authIndexName(field string, c *underhood.Collection) string {
	name := "idx_" + field + "_" + c.ID
	if len(name) > maxIndexNameLength {
		name = name[:maxIndexNameLength]
	}
	return name
}

func fieldByNameFold(c *underhood.Collection, name string) *underhood.Field {
	for _, f := range c.Fields {
		if f != nil && strings.EqualFold(f.Name, name) {
			return f
		}
	}
	return nil
}

func hasSingleUniqueIndex(list []*sqlstore.Index, field string) bool {
	for _, ix := range list {
		if ix.Unique && len(ix.Columns) == 1 && strings.EqualFold(ix.Columns[0].Name, field) {
			return true
		}
	}
	return false
}

// prepareAuth fills the auth options of auth collections (and drops them
// from the others): defaults for what a new collection left zero, token
// secrets kept from old or generated, bounds checked.
func (p *preparer) prepareAuth() {
	c := p.c
	if c.Type != underhood.TypeAuth {
		c.Auth = nil
		return
	}
	fresh := p.old == nil || p.old.Auth == nil
	defaults := defaultAuthOptions(c.IsSuperusers())
	if c.Auth == nil {
		if !fresh {
			c.Auth = p.old.Clone().Auth
		} else {
			c.Auth = defaultAuthOptions(c.IsSuperusers())
		}
	}
	a := c.Auth
	if fresh {
		// A new collection sent without these options gets PocketBase's
		// defaults; zero values cannot be told apart from "not sent".
		if a.AuthRule == nil {
			a.AuthRule = underhood.RuleOf("")
		}
		if !a.PasswordAuth.Enabled && len(a.PasswordAuth.IdentityFields) == 0 {
			a.PasswordAuth = defaults.PasswordAuth
		}
		if !a.AuthAlert.Enabled && a.AuthAlert.EmailTemplate == (underhood.EmailTemplate{}) {
			a.AuthAlert = defaults.AuthAlert
		}
	}
	var oldAuth underhood.AuthOptions
	if p.old != nil && p.old.Auth != nil {
		oldAuth = *p.old.Auth
	}
	tokens := []struct {
		key      string
		cur, old *underhood.TokenConfig
		def      underhood.TokenConfig
	}{
		{"authToken", &a.AuthToken, &oldAuth.AuthToken, defaults.AuthToken},
		{"passwordResetToken", &a.PasswordResetToken, &oldAuth.PasswordResetToken, defaults.PasswordResetToken},
		{"emailChangeToken", &a.EmailChangeToken, &oldAuth.EmailChangeToken, defaults.EmailChangeToken},
		{"verificationToken", &a.VerificationToken, &oldAuth.VerificationToken, defaults.VerificationToken},
		{"fileToken", &a.FileToken, &oldAuth.FileToken, defaults.FileToken},
	}
	// Changing who may authenticate revokes the tokens issued so far, as
	// PocketBase does, unless the client chose a new secret itself.
	if p.old != nil && p.old.Auth != nil && !sameRule(a.AuthRule, p.old.Auth.AuthRule) && a.AuthToken.Secret == "" {
		oldAuth.AuthToken.Secret = ""
	}
	for _, t := range tokens {
		if t.cur.Duration == 0 {
			t.cur.Duration = t.def.Duration
		}
		switch {
		case t.cur.Duration < minTokenDuration:
			p.failIn(t.key, "duration", minError(minTokenDuration))
		case t.cur.Duration > maxTokenDuration:
			p.failIn(t.key, "duration", maxError(maxTokenDuration))
		}
		if t.cur.Secret == "" {
			t.cur.Secret = t.old.Secret
		}
		if t.cur.Secret == "" {
			t.cur.Secret = t.def.Secret
		}
		if n := len(t.cur.Secret); n < minSecretLength || n > maxSecretLength {
			p.failIn(t.key, "secret", underhood.FieldError{
				Code: "validation_length_out_of_range", Message: "The length must be between 30 and 255.",
				Params: map[string]any{"min": minSecretLength, "max": maxSecretLength},
			})
		}
	}

	if a.MFA.Duration == 0 {
		a.MFA.Duration = defaults.MFA.Duration
	}
	if a.OTP.Duration == 0 {
		a.OTP.Duration = defaults.OTP.Duration
	}
	if a.OTP.Length == 0 {
		a.OTP.Length = defaults.OTP.Length
	}
	if a.MFA.Duration < minTokenDuration || a.MFA.Duration > 86400 {
		p.failIn("mfa", "duration", underhood.FieldError{Code: "validation_out_of_range", Message: "Must be between 10 and 86400."})
	}
	if a.OTP.Duration < minTokenDuration || a.OTP.Duration > 86400 {
		p.failIn("otp", "duration", underhood.FieldError{Code: "validation_out_of_range", Message: "Must be between 10 and 86400."})
	}
	if a.OTP.Length < 4 {
		p.failIn("otp", "length", minError(4))
	}
	if a.MFA.Enabled {
		methods := 0
		for _, on := range []bool{a.PasswordAuth.Enabled, a.OAuth2.Enabled, a.OTP.Enabled} {
			if on {
				methods++
			}
		}
		if methods < 2 {
			p.failIn("mfa", "enabled", underhood.FieldError{Code: "validation_mfa_not_enough_auths", Message: "MFA requires at least 2 auth methods to be enabled."})
		}
	}

	for _, t := range []struct {
		dst *underhood.EmailTemplate
		def underhood.EmailTemplate
	}{
		{&a.VerificationTemplate, defaults.VerificationTemplate},
		{&a.ResetPasswordTemplate, defaults.ResetPasswordTemplate},
		{&a.ConfirmEmailChangeTemplate, defaults.ConfirmEmailChangeTemplate},
		{&a.OTP.EmailTemplate, defaults.OTP.EmailTemplate},
		{&a.AuthAlert.EmailTemplate, defaults.AuthAlert.EmailTemplate},
	} {
		if t.dst.Subject == "" {
			t.dst.Subject = t.def.Subject
		}
		if t.dst.Body == "" {
			t.dst.Body = t.def.Body
		}
	}

	var identity []string
	for _, name := range a.PasswordAuth.IdentityFields {
		if name != "" && !listHas(identity, name) {
			identity = append(identity, name)
		}
	}
	a.PasswordAuth.IdentityFields = identity
	if a.PasswordAuth.Enabled {
		if len(identity) == 0 {
			p.failIn("passwordAuth", "identityFields", requiredError)
		}
		for _, name := range identity {
			if c.Field(name) == nil {
				p.failIn("passwordAuth", "identityFields", underhood.FieldError{
					Code: "validation_missing_field", Message: fmt.Sprintf("Invalid or missing field %s.", name),
					Params: map[string]any{"fieldName": name},
				})
				break
			}
			if _, bad := p.errs["indexes"]; !bad && !hasSingleUniqueIndex(p.indexes, name) {
				p.failIn("passwordAuth", "identityFields", underhood.FieldError{
					Code: "validation_missing_unique_constraint", Message: fmt.Sprintf("The field %s doesn't have a UNIQUE constraint.", name),
					Params: map[string]any{"fieldName": name},
				})
				break
			}
		}
	}
	for k, name := range a.OAuth2.MappedFields {
		if name != "" && c.Field(name) == nil {
			delete(a.OAuth2.MappedFields, k)
		}
	}
}

func (p *preparer) stamp() {
	now := underhood.FormatTime(p.now)
	if p.old != nil {
		p.c.Created = p.old.Created
	} else {
		p.c.Created = now
	}
	p.c.Updated = now
}

// parseIndex parses an index of a collection with the store's parser
// and accepts only the forms an index of ours may take: every entry a
// column (no expression) and collations that are plain names.
func parseIndex(src string) (*sqlstore.Index, error) {
	ix, err := sqlstore.ParseIndex(src)
	if err != nil {
		return nil, err
	}
	for _, col := range ix.Columns {
		if col.Name == "" {
			return nil, errors.New("expected a column name")
		}
		if col.Collate != "" && !fieldNameRe.MatchString(col.Collate) {
			return nil, errors.New("invalid collation")
		}
	}
	return ix, nil
}

package underhood

import (
	"encoding/json"
	"fmt"
)

// Field types.
const (
	FieldText     = "text"
	FieldNumber   = "number"
	FieldBool     = "bool"
	FieldEmail    = "email"
	FieldURL      = "url"
	FieldEditor   = "editor"
	FieldDate     = "date"
	FieldAutodate = "autodate"
	FieldSelect   = "select"
	FieldFile     = "file"
	FieldRelation = "relation"
	FieldJSON     = "json"
	FieldGeoPoint = "geoPoint"
	FieldPassword = "password"
)

// FieldTypes lists every field type in the order the schema editor shows them.
var FieldTypes = []string{
	FieldText, FieldEditor, FieldNumber, FieldBool, FieldEmail, FieldURL,
	FieldDate, FieldAutodate, FieldSelect, FieldFile, FieldRelation,
	FieldJSON, FieldGeoPoint, FieldPassword,
}

// Field is one column of a collection. Only the properties that belong to
// Type are meaningful (and serialised); the rest stay zero.
type Field struct {
	ID          string
	Name        string
	Type        string
	System      bool
	Hidden      bool
	Presentable bool
	Required    bool

	// text, password: Min/Max are lengths (0 = no limit).
	// number: Min/Max are values (nil = no limit).
	Min, Max *float64
	// date: bounds as datetime strings ("" = no limit).
	DateMin, DateMax string

	Pattern             string // text, password
	AutogeneratePattern string // text
	PrimaryKey          bool   // text
	OnlyInt             bool   // number

	OnlyDomains, ExceptDomains []string // email, url

	MaxSize     int64 // editor, file, json (bytes; 0 = default)
	ConvertURLs bool  // editor

	OnCreate, OnUpdate bool // autodate

	Values    []string // select
	MaxSelect int      // select, file, relation
	MinSelect int      // relation

	MimeTypes []string // file
	Thumbs    []string // file
	Protected bool     // file

	CollectionID  string // relation
	CascadeDelete bool   // relation

	Cost int // password (bcrypt cost, 0 = default)
}

// IsMulti reports whether the field stores a list of values (a JSON array):
// select, file and relation fields with MaxSelect > 1.
func (f *Field) IsMulti() bool {
	switch f.Type {
	case FieldSelect, FieldFile, FieldRelation:
		return f.MaxSelect > 1
	}
	return false
}

// Storage is the kind of column a field is kept in, which every engine
// maps to a column type of its own.
type Storage int

// Storage kinds.
const (
	StoredText   Storage = iota // text, email, url, editor, date, select, file, relation (one value), password, autodate
	StoredNumber                // number
	StoredBool                  // bool
	StoredMulti                 // a JSON array: select, file and relation fields with MaxSelect > 1
	StoredJSON                  // json
	StoredGeo                   // geoPoint: a JSON object {lon, lat}
)

// Storage returns the kind of column the field is kept in.
func (f *Field) Storage() Storage {
	switch {
	case f.Type == FieldNumber:
		return StoredNumber
	case f.Type == FieldBool:
		return StoredBool
	case f.Type == FieldJSON:
		return StoredJSON
	case f.Type == FieldGeoPoint:
		return StoredGeo
	case f.IsMulti():
		return StoredMulti
	}
	return StoredText
}

// HasColumn reports whether the field is stored in a column of the
// collection's table (every field type is).
func (f *Field) HasColumn() bool { return true }

func intPtrValue(p *float64) int {
	if p == nil {
		return 0
	}
	return int(*p)
}

// MarshalJSON writes the field in PocketBase's shape: the common properties
// plus those of its type.
func (f *Field) MarshalJSON() ([]byte, error) {
	m := map[string]any{
		"id":          f.ID,
		"name":        f.Name,
		"type":        f.Type,
		"system":      f.System,
		"hidden":      f.Hidden,
		"presentable": f.Presentable,
		"required":    f.Required,
	}
	strs := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	switch f.Type {
	case FieldText:
		m["min"], m["max"] = intPtrValue(f.Min), intPtrValue(f.Max)
		m["pattern"], m["autogeneratePattern"], m["primaryKey"] = f.Pattern, f.AutogeneratePattern, f.PrimaryKey
	case FieldPassword:
		m["min"], m["max"] = intPtrValue(f.Min), intPtrValue(f.Max)
		m["pattern"], m["cost"] = f.Pattern, f.Cost
	case FieldNumber:
		m["min"], m["max"], m["onlyInt"] = f.Min, f.Max, f.OnlyInt
	case FieldEmail, FieldURL:
		m["onlyDomains"], m["exceptDomains"] = strs(f.OnlyDomains), strs(f.ExceptDomains)
	case FieldEditor:
		m["maxSize"], m["convertURLs"] = f.MaxSize, f.ConvertURLs
	case FieldDate:
		m["min"], m["max"] = f.DateMin, f.DateMax
	case FieldAutodate:
		m["onCreate"], m["onUpdate"] = f.OnCreate, f.OnUpdate
	case FieldSelect:
		m["values"], m["maxSelect"] = strs(f.Values), f.MaxSelect
	case FieldFile:
		m["maxSize"], m["maxSelect"], m["mimeTypes"], m["thumbs"], m["protected"] = f.MaxSize, f.MaxSelect, strs(f.MimeTypes), strs(f.Thumbs), f.Protected
	case FieldRelation:
		m["collectionId"], m["cascadeDelete"], m["minSelect"], m["maxSelect"] = f.CollectionID, f.CascadeDelete, f.MinSelect, f.MaxSelect
	case FieldJSON:
		m["maxSize"] = f.MaxSize
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads a field in PocketBase's shape. Properties that do not
// belong to the field's type are ignored; properties of the wrong JSON type
// are an error naming the property.
func (f *Field) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*f = Field{}
	get := func(key string, dst any) error {
		v, ok := raw[key]
		if !ok || string(v) == "null" {
			return nil
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return fmt.Errorf("field property %q: %w", key, err)
		}
		return nil
	}
	type prop struct {
		key string
		dst any
	}
	props := []prop{
		{"id", &f.ID}, {"name", &f.Name}, {"type", &f.Type}, {"system", &f.System},
		{"hidden", &f.Hidden}, {"presentable", &f.Presentable}, {"required", &f.Required},
	}
	for _, p := range props {
		if err := get(p.key, p.dst); err != nil {
			return err
		}
	}
	var more []prop
	switch f.Type {
	case FieldText:
		more = []prop{{"min", &f.Min}, {"max", &f.Max}, {"pattern", &f.Pattern}, {"autogeneratePattern", &f.AutogeneratePattern}, {"primaryKey", &f.PrimaryKey}}
	case FieldPassword:
		more = []prop{{"min", &f.Min}, {"max", &f.Max}, {"pattern", &f.Pattern}, {"cost", &f.Cost}}
	case FieldNumber:
		more = []prop{{"min", &f.Min}, {"max", &f.Max}, {"onlyInt", &f.OnlyInt}}
	case FieldEmail, FieldURL:
		more = []prop{{"onlyDomains", &f.OnlyDomains}, {"exceptDomains", &f.ExceptDomains}}
	case FieldEditor:
		more = []prop{{"maxSize", &f.MaxSize}, {"convertURLs", &f.ConvertURLs}}
	case FieldDate:
		more = []prop{{"min", &f.DateMin}, {"max", &f.DateMax}}
	case FieldAutodate:
		more = []prop{{"onCreate", &f.OnCreate}, {"onUpdate", &f.OnUpdate}}
	case FieldSelect:
		more = []prop{{"values", &f.Values}, {"maxSelect", &f.MaxSelect}}
	case FieldFile:
		more = []prop{{"maxSize", &f.MaxSize}, {"maxSelect", &f.MaxSelect}, {"mimeTypes", &f.MimeTypes}, {"thumbs", &f.Thumbs}, {"protected", &f.Protected}}
	case FieldRelation:
		more = []prop{{"collectionId", &f.CollectionID}, {"cascadeDelete", &f.CascadeDelete}, {"minSelect", &f.MinSelect}, {"maxSelect", &f.MaxSelect}}
	case FieldJSON:
		more = []prop{{"maxSize", &f.MaxSize}}
	}
	for _, p := range more {
		if err := get(p.key, p.dst); err != nil {
			return err
		}
	}
	return nil
}

// Clone returns a deep copy of f.
func (f *Field) Clone() *Field {
	c := *f
	cp := func(s []string) []string {
		if s == nil {
			return nil
		}
		return append([]string(nil), s...)
	}
	c.OnlyDomains, c.ExceptDomains = cp(f.OnlyDomains), cp(f.ExceptDomains)
	c.Values, c.MimeTypes, c.Thumbs = cp(f.Values), cp(f.MimeTypes), cp(f.Thumbs)
	if f.Min != nil {
		v := *f.Min
		c.Min = &v
	}
	if f.Max != nil {
		v := *f.Max
		c.Max = &v
	}
	return &c
}

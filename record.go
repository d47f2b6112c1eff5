package underhood

// Record is one row of a collection. Data holds the field values in their
// normalised Go form:
//
//	text, email, url, editor, date, autodate, password (hash),
//	single select/relation/file           string
//	number                                float64
//	bool                                  bool
//	multi select/relation/file            []string
//	json                                  json.RawMessage (nil = null)
//	geoPoint                              GeoPoint
//
// Data always has the "id" key. Expand holds expanded relations by field
// name (or "coll_via_field" for back-relations): *Record or []*Record.
type Record struct {
	Collection *Collection
	Data       map[string]any
	Expand     map[string]any
}

// GeoPoint is a longitude/latitude pair.
type GeoPoint struct {
	Lon float64 `json:"lon"`
	Lat float64 `json:"lat"`
}

// NewRecord returns an empty record of c.
func NewRecord(c *Collection) *Record {
	return &Record{Collection: c, Data: map[string]any{}}
}

// ID returns the record id.
func (r *Record) ID() string { s, _ := r.Data["id"].(string); return s }

// String returns the field value as a string ("" when absent or not a string).
func (r *Record) String(name string) string { s, _ := r.Data[name].(string); return s }

// Bool returns the field value as a bool.
func (r *Record) Bool(name string) bool { b, _ := r.Data[name].(bool); return b }

// Strings returns a multi-value field as a slice; a single value becomes a
// one element slice and "" an empty one.
func (r *Record) Strings(name string) []string {
	switch v := r.Data[name].(type) {
	case []string:
		return v
	case string:
		if v == "" {
			return nil
		}
		return []string{v}
	}
	return nil
}

// Clone returns a copy of r whose Data map (not its values) is new.
func (r *Record) Clone() *Record {
	n := &Record{Collection: r.Collection, Data: make(map[string]any, len(r.Data))}
	for k, v := range r.Data {
		if s, ok := v.([]string); ok {
			v = append([]string(nil), s...)
		}
		n.Data[k] = v
	}
	return n
}

// IsSuperuser reports whether r is a record of the _superusers collection.
func (r *Record) IsSuperuser() bool {
	return r != nil && r.Collection != nil && r.Collection.IsSuperusers()
}

// Event is one change to a record, as published after its commit.
type Event struct {
	ID         string  // unique event id
	Sequence   int64   // per-collection sequence
	Action     string  // "create" | "update" | "delete"
	Collection string  // collection name
	Record     *Record // the record after the change (before, for delete)
	Old        *Record // for an update, the record before it (nil when unknown)
}

package sqlstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/underhood/underhood"
)

// This file stores records: Go values (record.go of the root package) are
// encoded to column values and decoded back.

func jsonMarshal(v any) ([]byte, error)   { return json.Marshal(v) }
func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// compactJSON removes the insignificant spaces of valid JSON b.
func compactJSON(b []byte) []byte {
	var out bytes.Buffer
	if json.Compact(&out, b) != nil {
		return b
	}
	return out.Bytes()
}

// Query selects records of one collection. Where and OrderBy are SQL
// fragments (from the filter package) that refer to the collection's table
// by Alias; their values are in Args, as placeholders.
type Query struct {
	Collection *underhood.Collection
	Where      Cond    // nil = every record
	Order      []Order // none = insertion order, where the engine has one
	Limit      int     // 0 = none
	Offset     int
}

// InsertRecord inserts r with a value for every field of its collection
// (absent values are stored as the field's zero value). An empty id is
// generated and set in r.Data. A unique index violation is an EInvalid
// error naming the index's columns.
func (s *Store) InsertRecord(ctx context.Context, q Querier, r *underhood.Record) error {
	c := r.Collection
	if c.IsView() {
		return underhood.Errorf(underhood.EInvalid, "View collections are read only.")
	}
	if r.ID() == "" {
		r.Data["id"] = underhood.NewID()
	}
	var b strings.Builder
	b.WriteString("INSERT INTO ")
	b.WriteString(s.quote(c.Name))
	b.WriteString(" (")
	args := make([]any, len(c.Fields))
	for i, f := range c.Fields {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s.quote(f.Name))
		args[i] = encodeValue(f, r.Data[f.Name])
	}
	b.WriteString(") VALUES (")
	b.WriteString(s.phs(1, len(c.Fields)))
	b.WriteString(")")
	if _, err := q.ExecContext(ctx, b.String(), args...); err != nil {
		return s.writeError(c, "insert record", err)
	}
	return nil
}

// UpdateRecord writes every field of r to the row with id r.ID().
// ENotFound when there is no such row.
func (s *Store) UpdateRecord(ctx context.Context, q Querier, r *underhood.Record) error {
	c := r.Collection
	if c.IsView() {
		return underhood.Errorf(underhood.EInvalid, "View collections are read only.")
	}
	var b strings.Builder
	b.WriteString("UPDATE ")
	b.WriteString(s.quote(c.Name))
	b.WriteString(" SET ")
	args := make([]any, 0, len(c.Fields))
	for _, f := range c.Fields {
		if f.Name == "id" {
			continue
		}
		if len(args) > 0 {
			b.WriteString(", ")
		}
		args = append(args, encodeValue(f, r.Data[f.Name]))
		b.WriteString(s.quote(f.Name))
		b.WriteString(" = ")
		b.WriteString(s.ph(len(args)))
	}
	if len(args) == 0 {
		return nil // nothing but the id
	}
	args = append(args, r.ID())
	b.WriteString(" WHERE ")
	b.WriteString(s.quote("id"))
	b.WriteString(" = ")
	b.WriteString(s.ph(len(args)))
	res, err := q.ExecContext(ctx, b.String(), args...)
	if err != nil {
		return s.writeError(c, "update record", err)
	}
	return checkAffected(res)
}

// DeleteRecord deletes the record id of c. ENotFound when there is none.
func (s *Store) DeleteRecord(ctx context.Context, q Querier, c *underhood.Collection, id string) error {
	if c.IsView() {
		return underhood.Errorf(underhood.EInvalid, "View collections are read only.")
	}
	res, err := q.ExecContext(ctx, `DELETE FROM `+s.quote(c.Name)+` WHERE `+s.quote("id")+` = `+s.ph(1), id)
	if err != nil {
		return fmt.Errorf("delete record: %w", err)
	}
	return checkAffected(res)
}

// checkAffected turns "no row changed" into ENotFound.
func checkAffected(res interface{ RowsAffected() (int64, error) }) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("rows affected: %w", err)
	}
	if n == 0 {
		return underhood.Errorf(underhood.ENotFound, "The requested resource wasn't found.")
	}
	return nil
}

// writeError maps a unique violation to PocketBase's validation error on
// the index's columns and wraps anything else.
func (s *Store) writeError(c *underhood.Collection, op string, err error) error {
	cols, index, ok := s.dialect.UniqueViolation(err)
	if !ok {
		return fmt.Errorf("%s: %w", op, err)
	}
	if len(cols) == 0 && index != "" {
		for _, raw := range c.Indexes {
			if ix, perr := parseIndexSQL(raw); perr == nil && strings.EqualFold(ix.name, index) {
				for _, ref := range ix.refs {
					if fieldFold(c, ref) != nil {
						cols = append(cols, ref)
					}
				}
			}
		}
	}
	fields := map[string]any{}
	for _, col := range cols {
		if f := fieldFold(c, col); f != nil {
			col = f.Name
		}
		fields[col] = underhood.FieldError{Code: "validation_not_unique", Message: "Value must be unique."}
	}
	return &underhood.Error{Code: underhood.EInvalid, Message: "Failed to save record.", Data: fields, Err: err}
}

// fieldFold finds a field by name, case-insensitively.
func fieldFold(c *underhood.Collection, name string) *underhood.Field {
	if f := c.Field(name); f != nil {
		return f
	}
	for _, f := range c.Fields {
		if strings.EqualFold(f.Name, name) {
			return f
		}
	}
	return nil
}

// Find returns the records qq selects, with their fields decoded.
func (s *Store) Find(ctx context.Context, q Querier, qq Query) ([]*underhood.Record, error) {
	c := qq.Collection
	query, args := s.findStatement(qq)
	if cq, ok := q.(*querier); ok && cq.client {
		// A client's filter may make each row cost seconds: the time
		// limit must be able to end the statement at any row.
		query = s.dialect.Materialize(query)
	}

	rows, release, err := queryRows(ctx, q, query, args...)
	if err != nil {
		return nil, fmt.Errorf("find records of %s: %w", c.Name, err)
	}
	defer release()
	defer rows.Close()
	raw := make([]any, len(c.Fields))
	dest := make([]any, len(c.Fields))
	for i := range raw {
		dest[i] = &raw[i]
	}
	var list []*underhood.Record
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("find records of %s: %w", c.Name, err)
		}
		r := &underhood.Record{Collection: c, Data: make(map[string]any, len(c.Fields))}
		for i, f := range c.Fields {
			r.Data[f.Name] = decodeValue(f, raw[i])
		}
		list = append(list, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find records of %s: %w", c.Name, err)
	}
	return list, nil
}

// Count returns how many records qq's Where selects (Order, Limit and
// Offset are ignored).
func (s *Store) Count(ctx context.Context, q Querier, qq Query) (int, error) {
	where, args := s.render(qq.Where)
	var b strings.Builder
	b.WriteString("SELECT COUNT(*)")
	s.writeFrom(&b, qq.Collection, where)
	rows, release, err := queryRows(ctx, q, b.String(), args...)
	if err != nil {
		return 0, fmt.Errorf("count records of %s: %w", qq.Collection.Name, err)
	}
	defer release()
	defer rows.Close()
	var n int
	if rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return 0, fmt.Errorf("count records of %s: %w", qq.Collection.Name, err)
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("count records of %s: %w", qq.Collection.Name, err)
	}
	return n, nil
}

// findStatement renders the SELECT of Find and its parameters.
func (s *Store) findStatement(qq Query) (string, []any) {
	c := qq.Collection
	qa := s.quote(Alias)
	where, args := s.render(qq.Where)
	var b strings.Builder
	b.WriteString("SELECT ")
	for i, f := range c.Fields {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(qa)
		b.WriteByte('.')
		b.WriteString(s.quote(f.Name))
	}
	s.writeFrom(&b, c, where)
	switch {
	case len(qq.Order) > 0:
		b.WriteString(" ORDER BY ")
		for i, o := range qq.Order {
			if i > 0 {
				b.WriteString(", ")
			}
			if o.raw != "" {
				b.WriteString(o.raw)
				continue
			}
			if o.Sorted != nil {
				b.WriteString(o.Sorted.Text(s.dialect, len(args)))
				args = append(args, o.Sorted.Args...)
				continue
			}
			b.WriteString(qa)
			b.WriteByte('.')
			b.WriteString(s.quote(o.Field))
			if o.Desc {
				b.WriteString(" DESC")
			}
		}
	case !c.IsView() && len(s.dialect.HiddenColumns()) > 0:
		// Without a rowid an engine returns rows in no set order:
		// insertion order, which SQLite's table scans give, keeps pages
		// of an unsorted list stable.
		b.WriteString(" ORDER BY ")
		b.WriteString(s.dialect.RowID(qa))
	}
	b.WriteString(s.dialect.LimitOffset(qq.Limit, qq.Offset))
	return b.String(), args
}

// writeFrom writes ` FROM "t" AS "r" [WHERE where]`.
func (s *Store) writeFrom(b *strings.Builder, c *underhood.Collection, where string) {
	b.WriteString(" FROM ")
	b.WriteString(s.quote(c.Name))
	b.WriteString(" AS ")
	b.WriteString(s.quote(Alias))
	if where != "" {
		b.WriteString(" WHERE ")
		b.WriteString(where)
	}
}

// encodeValue converts the Go form of a value of f to its column value.
// Values of an unexpected type are converted leniently rather than refused:
// validation happens before the store.
func encodeValue(f *underhood.Field, v any) any {
	switch {
	case f.Type == underhood.FieldNumber:
		return toFloat(v)
	case f.Type == underhood.FieldBool:
		return toBool(v) // SQLite binds it as 1 or 0
	case f.Type == underhood.FieldJSON:
		switch x := v.(type) {
		case nil:
			return nil
		case json.RawMessage:
			if x == nil || string(x) == "null" {
				return nil
			}
			return string(x)
		}
		b, err := json.Marshal(v)
		if err != nil || string(b) == "null" {
			return nil
		}
		return string(b)
	case f.Type == underhood.FieldGeoPoint:
		var p underhood.GeoPoint
		switch x := v.(type) {
		case underhood.GeoPoint:
			p = x
		case *underhood.GeoPoint:
			if x != nil {
				p = *x
			}
		case json.RawMessage:
			_ = json.Unmarshal(x, &p)
		case map[string]any:
			p.Lon, p.Lat = toFloat(x["lon"]), toFloat(x["lat"])
		}
		b, _ := json.Marshal(p)
		return string(b)
	case f.IsMulti():
		list := toStrings(v)
		if list == nil {
			list = []string{}
		}
		b, _ := json.Marshal(list)
		return string(b)
	}
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	case []string:
		if len(x) > 0 {
			return x[0]
		}
		return ""
	}
	return toText(v)
}

// decodeValue converts a column value to the Go form of a value of f.
func decodeValue(f *underhood.Field, v any) any {
	switch {
	case f.Type == underhood.FieldNumber:
		return toFloat(v)
	case f.Type == underhood.FieldBool:
		return toBool(v)
	case f.Type == underhood.FieldJSON:
		var b []byte
		switch x := v.(type) {
		case nil:
			return json.RawMessage(nil)
		case string:
			b = []byte(x)
		case []byte:
			b = append([]byte(nil), x...)
		default:
			b, _ = json.Marshal(x)
		}
		if !json.Valid(b) {
			b, _ = json.Marshal(string(b))
		} else if bytes.ContainsAny(b, " \t\r\n") {
			b = compactJSON(b) // jsonb's text has spaces
		}
		return json.RawMessage(b)
	case f.Type == underhood.FieldGeoPoint:
		var p underhood.GeoPoint
		switch x := v.(type) {
		case string:
			_ = json.Unmarshal([]byte(x), &p)
		case []byte:
			_ = json.Unmarshal(x, &p)
		}
		return p
	case f.IsMulti():
		list := []string{}
		var raw []byte
		switch x := v.(type) {
		case string:
			raw = []byte(x)
		case []byte:
			raw = x
		}
		if len(raw) == 0 {
			return list
		}
		var items []any
		if err := json.Unmarshal(raw, &items); err != nil {
			return []string{string(raw)} // a single value stored as text
		}
		for _, it := range items {
			if s := toText(it); s != "" {
				list = append(list, s)
			}
		}
		return list
	}
	return toText(v)
}

// toFloat reads a number from a column or Go value.
func toFloat(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case int64:
		return float64(x)
	case int:
		return float64(x)
	case float32:
		return float64(x)
	case int32:
		return float64(x)
	case bool:
		if x {
			return 1
		}
		return 0
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0
		}
		return f
	case []byte:
		return toFloat(string(x))
	case json.Number:
		return toFloat(string(x))
	}
	return 0
}

// toBool reads a bool from a column or Go value.
func toBool(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case int64:
		return x != 0
	case int:
		return x != 0
	case float64:
		return x != 0
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "1", "true", "yes", "on":
			return true
		}
	case []byte:
		return toBool(string(x))
	}
	return false
}

// toStrings reads a list of strings: a slice, or one non-empty string.
func toStrings(v any) []string {
	switch x := v.(type) {
	case []string:
		return x
	case string:
		if x == "" {
			return nil
		}
		return []string{x}
	case []any:
		var out []string
		for _, it := range x {
			if s := toText(it); s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// toText renders a scalar as text: numbers without a needless ".0".
func toText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case []byte:
		return string(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(v)
}

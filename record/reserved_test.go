package record_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record/recordtest"
	"github.com/underhood/underhood/sqlstore/postgres"
	"github.com/underhood/underhood/sqlstore/sqlite"
	"github.com/underhood/underhood/sqlstore/storetest"
)

// TestSystemColumnNamesRefused checks that a field cannot take the name of
// a hidden or system column of SQLite (rowid, oid, _rowid_) or PostgreSQL
// (ctid, xmin, xmax, cmin, cmax, tableoid, oid), in any case, on a new
// collection or added to a stored one: each is a field error on its name.
func TestSystemColumnNamesRefused(t *testing.T) {
	s := recordtest.Open(t, storetest.Config(t, sqlite.Dialect{}, postgres.Dialect{}), nil)
	ctx := context.Background()
	su := s.SystemRequest().Auth
	things := saveCollection(t, s, &underhood.Collection{Name: "things", Type: underhood.TypeBase,
		Fields: []*underhood.Field{{Name: "title", Type: underhood.FieldText}}})
	for i, name := range []string{"rowid", "ROWID", "oid", "Oid", "_rowid_", "ctid", "xmin", "xmax", "cmin", "cmax", "tableoid", "TableOid"} {
		t.Run(name, func(t *testing.T) {
			field := &underhood.Field{Name: name, Type: underhood.FieldText}
			_, err := s.SaveCollection(ctx, su, "", &underhood.Collection{Name: fmt.Sprintf("new%d", i), Type: underhood.TypeBase,
				Fields: []*underhood.Field{field}})
			if got := fieldErrorCode(t, err, "fields", "1", "name"); got != "validation_reserved_field_name" {
				t.Errorf("create with a field %q = %v (code %q), want validation_reserved_field_name", name, err, got)
			}
			c := things.Clone()
			c.Fields = append(c.Fields, field)
			_, err = s.SaveCollection(ctx, su, c.ID, c)
			if got := fieldErrorCode(t, err, "fields", fmt.Sprint(len(c.Fields)-1), "name"); got != "validation_reserved_field_name" {
				t.Errorf("update adding a field %q = %v (code %q), want validation_reserved_field_name", name, err, got)
			}
		})
	}
	for _, name := range []string{"rowids", "oids", "xmin_value", "my_ctid"} {
		if _, err := s.SaveCollection(ctx, su, "", &underhood.Collection{Name: "ok_" + name, Type: underhood.TypeBase,
			Fields: []*underhood.Field{{Name: name, Type: underhood.FieldText}}}); err != nil {
			t.Errorf("create with a field %q = %v, want success", name, err)
		}
	}
}

// fieldErrorCode returns the code of the field error at path in err's data
// as a client receives it, "" when there is none.
func fieldErrorCode(t *testing.T, err error, path ...string) string {
	t.Helper()
	var ue *underhood.Error
	if !errors.As(err, &ue) || ue.Code != underhood.EInvalid {
		return ""
	}
	b, jerr := json.Marshal(ue.Data)
	if jerr != nil {
		t.Fatal(jerr)
	}
	var cur any
	if err := json.Unmarshal(b, &cur); err != nil {
		t.Fatal(err)
	}
	for _, key := range path {
		m, _ := cur.(map[string]any)
		cur = m[key]
	}
	m, _ := cur.(map[string]any)
	code, _ := m["code"].(string)
	return code
}

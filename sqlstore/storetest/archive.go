package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/sqlstore"
)

// testArchiveRoundTrip exports a database with records of every field
// type, a view and a param, imports the archive into a new database, and
// finds the same collections, records and params there.
func testArchiveRoundTrip(t *testing.T, newDB NewDB) {
	src := openStore(t, newDB)
	c := everyType()
	c.Indexes = []string{`CREATE UNIQUE INDEX idx_every_text ON every (text)`}
	saveCollection(t, src, nil, c)
	view := &underhood.Collection{ID: "pbc_v", Name: "v", Type: underhood.TypeView, ViewQuery: `SELECT id, text FROM every`,
		Fields: []*underhood.Field{idField(), field("f01", "text", "text")}}
	saveCollection(t, src, nil, view)
	insert(t, src, c,
		map[string]any{"id": "full00000000001", "text": "héllo", "number": -2.5, "bool": true, "selects": []string{"a", "b"},
			"json": json.RawMessage(`{"k":[1,"two",null],"b":{"c":true}}`), "geo": underhood.GeoPoint{Lon: 1.5, Lat: -2},
			"password": "$2a$10$hash", "date": "2024-01-02 03:04:05.000Z"},
		map[string]any{"id": "zero00000000002"})
	write(t, src, func(q sqlstore.Querier) error {
		return src.SetParam(context.Background(), q, "settings", map[string]any{"meta": map[string]any{"appName": "x"}})
	})
	var buf bytes.Buffer
	stats, err := src.Export(context.Background(), &buf)
	if err != nil {
		t.Fatalf("Export = %v", err)
	}
	if want := (sqlstore.ArchiveStats{Collections: 2, Params: 1, Records: 2}); stats != want {
		t.Errorf("Export stats = %+v, want %+v", stats, want)
	}

	dst := openStore(t, newDB)
	got, err := dst.Import(context.Background(), bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("Import = %v", err)
	}
	if got != stats {
		t.Errorf("Import stats = %+v, want %+v", got, stats)
	}
	for _, coll := range []*underhood.Collection{c, view} {
		want := find(t, src, sqlstore.Query{Collection: coll, Order: []sqlstore.Order{{Field: "id"}}})
		have := find(t, dst, sqlstore.Query{Collection: coll, Order: []sqlstore.Order{{Field: "id"}}})
		if diff := cmp.Diff(recordData(t, want), recordData(t, have)); diff != "" {
			t.Errorf("records of %s after the round trip (-want +got):\n%s", coll.Name, diff)
		}
	}
	var settings map[string]any
	read(t, dst, func(q sqlstore.Querier) error {
		_, err := dst.GetParam(context.Background(), q, "settings", &settings)
		return err
	})
	if meta, _ := settings["meta"].(map[string]any); meta["appName"] != "x" {
		t.Errorf("settings after the round trip = %v", settings)
	}
	// The unique index came along.
	err = dst.Write(context.Background(), func(q sqlstore.Querier) error {
		return dst.InsertRecord(context.Background(), q, &underhood.Record{Collection: c, Data: map[string]any{"text": "héllo"}})
	})
	if underhood.ErrorCode(err) != underhood.EInvalid {
		t.Errorf("duplicate text after import = %v, want the unique index to refuse it", err)
	}
	// An archive goes only into an empty database.
	if _, err := dst.Import(context.Background(), bytes.NewReader(buf.Bytes())); err == nil || !strings.Contains(err.Error(), "already has") {
		t.Errorf("second Import = %v, want a refusal", err)
	}
}

// recordData renders records' data with JSON values normalised (object
// keys sorted), as engines store JSON differently.
func recordData(t *testing.T, list []*underhood.Record) []string {
	t.Helper()
	var out []string
	for _, r := range list {
		b, err := json.Marshal(r.Data)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		b, _ = json.Marshal(v)
		out = append(out, string(b))
	}
	return out
}

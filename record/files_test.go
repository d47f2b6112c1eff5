package record_test

import (
	"context"
	"testing"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
)

// newDocs makes a collection "docs" anyone may create, update and view,
// with a file field "files" and a protected file field "private".
func newDocs(t *testing.T, s *record.Service) {
	t.Helper()
	anyone := underhood.RuleOf("")
	mustCollection(t, s, &underhood.Collection{Name: "docs", Type: underhood.TypeBase,
		ListRule: anyone, ViewRule: anyone, CreateRule: anyone, UpdateRule: anyone,
		Fields: []*underhood.Field{
			{Name: "files", Type: underhood.FieldFile, MaxSelect: 5},
			{Name: "private", Type: underhood.FieldFile, MaxSelect: 1, Protected: true},
		}})
}

// TestWriteNamesOnlyItsUploads: a write may put in a file field only the
// files uploaded with it and those the record already holds, so a client
// cannot point a record at a file it did not upload.
func TestWriteNamesOnlyItsUploads(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	newDocs(t, s)
	guest := func(uploads ...string) *record.Request {
		return &record.Request{Context: "default", Method: "POST", Uploads: uploads}
	}
	if _, err := s.Create(ctx, guest(), "docs", map[string]any{"files": []any{"a.txt"}}, ""); fieldError(t, err, "files").Code != "validation_invalid_file" {
		t.Errorf("Create(naming a file it did not upload) = %v, want validation_invalid_file", err)
	}
	doc, err := s.Create(ctx, guest("a.txt"), "docs", map[string]any{"files": []any{"a.txt"}}, "")
	if err != nil {
		t.Fatalf("Create(naming its upload) = %v", err)
	}
	if _, err := s.Update(ctx, guest("b.txt"), "docs", doc.ID(), map[string]any{"files": []any{"a.txt", "b.txt"}}, ""); err != nil {
		t.Errorf("Update(keeping a held file, adding its upload) = %v, want success", err)
	}
	if _, err := s.Update(ctx, guest(), "docs", doc.ID(), map[string]any{"files+": "c.txt"}, ""); fieldError(t, err, "files").Code != "validation_invalid_file" {
		t.Errorf("Update(adding a file it did not upload) = %v, want validation_invalid_file", err)
	}
}

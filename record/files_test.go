package record_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
)

// newDocs makes a collection "docs" anyone may create and update, that
// viewRule lets see, with a file field "files" and a protected file field
// "private".
func newDocs(t *testing.T, s *record.Service, viewRule string) {
	t.Helper()
	anyone := underhood.RuleOf("")
	mustCollection(t, s, &underhood.Collection{Name: "docs", Type: underhood.TypeBase,
		ListRule: anyone, ViewRule: underhood.RuleOf(viewRule), CreateRule: anyone, UpdateRule: anyone,
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
	newDocs(t, s, "")
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

// TestFileRecord: a file of an unprotected field goes to anyone with its
// URL, whatever the record's view rule; a protected one only to a caller
// the view rule lets see the record in the "protectedFile" context, and
// the caller's token is checked only then.
func TestFileRecord(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	newDocs(t, s, `@request.context = "protectedFile" && @request.auth.id != ""`)
	sys := s.SystemRequest()
	sys.Uploads = []string{"public.txt", "secret.txt"}
	doc, err := s.Create(ctx, sys, "docs", map[string]any{"files": []any{"public.txt"}, "private": "secret.txt"}, "")
	if err != nil {
		t.Fatal(err)
	}
	users, err := s.Collection(underhood.UsersName)
	if err != nil {
		t.Fatal(err)
	}
	user := &underhood.Record{Collection: users, Data: map[string]any{"id": "user00000000001"}}
	guest := &record.Request{Context: "default", Method: "GET"}
	refused := &underhood.Error{Code: underhood.EUnauthorized, Message: "The request requires valid record authorization token."}
	broken := errors.New("connection refused")
	tests := []struct {
		name, coll, id, file string
		// who is what identify answers; nil when it must not be called.
		who  func() (*underhood.Record, error)
		want string // the error code, "" for the record
	}{
		{"public file", "docs", doc.ID(), "public.txt", nil, ""},
		{"protected file", "docs", doc.ID(), "secret.txt", func() (*underhood.Record, error) { return user, nil }, ""},
		{"protected file for a guest", "docs", doc.ID(), "secret.txt", func() (*underhood.Record, error) { return nil, nil }, underhood.EForbidden},
		{"protected file for a refused token", "docs", doc.ID(), "secret.txt", func() (*underhood.Record, error) { return nil, refused }, underhood.EForbidden},
		{"protected file when the token cannot be checked", "docs", doc.ID(), "secret.txt", func() (*underhood.Record, error) { return nil, broken }, underhood.EInternal},
		{"name the record does not hold", "docs", doc.ID(), "other.txt", nil, underhood.ENotFound},
		{"missing record", "docs", "missing00000001", "public.txt", nil, underhood.ENotFound},
		{"missing collection", "nope", doc.ID(), "public.txt", nil, underhood.ENotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			identify := tt.who
			if identify == nil {
				identify = func() (*underhood.Record, error) {
					t.Errorf("FileRecord(%s) checked the caller's token", tt.file)
					return nil, nil
				}
			}
			rec, err := s.FileRecord(ctx, guest, tt.coll, tt.id, tt.file, identify)
			if got := underhood.ErrorCode(err); got != tt.want {
				t.Fatalf("FileRecord(%s, %s, %s) = %v, want code %q", tt.coll, tt.id, tt.file, err, tt.want)
			}
			if tt.want == "" && rec.ID() != doc.ID() {
				t.Errorf("FileRecord(%s, %s, %s) = record %s, want %s", tt.coll, tt.id, tt.file, rec.ID(), doc.ID())
			}
			if tt.want == underhood.EInternal && (!errors.Is(err, broken) || !strings.HasPrefix(err.Error(), "record.FileRecord: ")) {
				t.Errorf("FileRecord(…) internal error = %q, want it to name the operation and keep its cause", err)
			}
		})
	}
}

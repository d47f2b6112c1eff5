package record

import (
	"context"
	"sort"
	"strings"

	"github.com/underhood/underhood"
)

// The bytes of files live in the files capability; a record's file fields
// hold only their stored names. A write may name a file only if the record
// held it before or it was uploaded with that write (Request.Uploads), so
// no client can point a record at a file it did not upload.

// checkFiles refuses file names in r that neither old (nil on create)
// held nor req uploaded.
func (s *Service) checkFiles(req *Request, r, old *underhood.Record) error {
	var uploaded []string
	if req != nil {
		uploaded = req.Uploads
	}
	errs := map[string]any{}
	for _, f := range r.Collection.Fields {
		if f.Type != underhood.FieldFile {
			continue
		}
		var had []string
		if old != nil {
			had = old.Strings(f.Name)
		}
		var bad []string
		for _, name := range r.Strings(f.Name) {
			if !listHas(uploaded, name) && !listHas(had, name) {
				bad = append(bad, name)
			}
		}
		if len(bad) > 0 {
			sort.Strings(bad)
			errs[f.Name] = underhood.FieldError{
				Code:    "validation_invalid_file",
				Message: "Invalid new files: " + strings.Join(bad, ", ") + ".",
				Params:  map[string]any{"invalidFiles": bad},
			}
		}
	}
	if len(errs) > 0 {
		return underhood.Invalid("Failed to save record.", errs)
	}
	return nil
}

// FileRecord returns record id of collection coll when it holds the file
// name and the caller may read that file. A file of an unprotected field
// is anyone's who has its URL, as in PocketBase; a file of a protected
// field only the caller's that identify returns, when the record's view
// rule passes for it with @request.context "protectedFile" (the rest of
// the request is req). identify is called for protected files only, so a
// token sent with a public file is never checked; an identity it refuses
// (EUnauthorized) is a guest's. A view collection, a missing record or a
// name the record does not hold is 404; a protected file the caller may
// not read is 403.
func (s *Service) FileRecord(ctx context.Context, req *Request, coll, id, name string, identify func() (*underhood.Record, error)) (_ *underhood.Record, err error) {
	defer underhood.Wrap(&err, "record.FileRecord")
	c, err := s.Collection(coll)
	if err != nil || c.IsView() {
		return nil, errFileNotFound()
	}
	rec, err := s.FindRecord(ctx, c, id)
	if underhood.ErrorCode(err) == underhood.ENotFound {
		return nil, errFileNotFound()
	}
	if err != nil {
		return nil, err
	}
	f := fileFieldOf(rec, name)
	if f == nil {
		return nil, errFileNotFound()
	}
	if !f.Protected {
		return rec, nil
	}
	caller, err := identify()
	if err != nil && underhood.ErrorCode(err) != underhood.EUnauthorized {
		return nil, err
	}
	view := Request{}
	if req != nil {
		view = *req
	}
	view.Context, view.Auth = "protectedFile", caller
	if _, err := s.View(ctx, &view, c.ID, rec.ID(), ""); err != nil {
		switch underhood.ErrorCode(err) {
		case underhood.ENotFound, underhood.EForbidden:
			return nil, underhood.Errorf(underhood.EForbidden, "Insufficient permissions to access the file resource.")
		}
		return nil, err
	}
	return rec, nil
}

// fileFieldOf returns the file field of r that holds the file name, or nil.
func fileFieldOf(r *underhood.Record, name string) *underhood.Field {
	for _, f := range r.Collection.Fields {
		if f.Type == underhood.FieldFile && listHas(r.Strings(f.Name), name) {
			return f
		}
	}
	return nil
}

func errFileNotFound() error {
	return underhood.Errorf(underhood.ENotFound, "The requested resource wasn't found.")
}

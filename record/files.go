package record

import (
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

package files

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path"
	"strings"
	"unicode"

	"github.com/underhood/underhood"
)

// Limits of the non-file parts of a multipart body.
const (
	maxValueParts = 1000
	maxValueBytes = 16 << 20 // all values together
)

// Upload is a multipart write body read by ReadMultipart: the field values
// (Data) and the files it carried, staged on disk until Write stores them.
// Close removes whatever is still staged; it is safe to call more than once.
type Upload struct {
	s      *Service
	c      *underhood.Collection
	Data   map[string]any
	files  []*staged
	stored []string // keys written to the storage
}

// staged is one uploaded file waiting in the staging directory.
type staged struct {
	field *underhood.Field
	name  string // stored name
	path  string // temporary file
	size  int64
	typ   string
}

func errBadBody() error {
	return underhood.Errorf(underhood.EInvalid, "Failed to load the submitted data due to invalid formatting.")
}

func errTooLarge() error {
	return underhood.Errorf(underhood.ETooLarge, "Request entity too large.")
}

// readError maps an error met while reading the body: the server's body
// limit is 413, anything else (a body cut off half-way, a broken part) 400.
func readError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errTooLarge()
	}
	return errBadBody()
}

func fileError(key, code, msg string, params map[string]any) error {
	return underhood.Invalid("Failed to upload the submitted files.", map[string]any{
		key: underhood.FieldError{Code: code, Message: msg, Params: params},
	})
}

// ReadMultipart reads the multipart/form-data body of r, a create or
// update of a record of c, part by part: values (and "@jsonPayload") go to
// Data; each file part of a file field ("docs", "docs+", "+docs") is
// streamed to the staging directory and checked on the way: it stops at
// the field's maxSize + 1 byte, its type is detected from its content and
// must be one of the field's mimeTypes, and an active type (HTML, SVG, XML,
// script) must not hide behind another extension. At most maxSelect files
// per field and Options.MaxFiles per request are read. The first failure
// ends reading (the rest of the body is never read) and removes everything
// staged so far.
func (s *Service) ReadMultipart(r *http.Request, c *underhood.Collection) (u *Upload, err error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, errBadBody()
	}
	up := &Upload{s: s, c: c}
	defer func() {
		if err != nil {
			up.Close()
		}
	}()
	values := map[string][]string{}
	uploads := map[string][]string{} // form key → stored names
	var payloads []string
	perField := map[string]int{}
	valueParts, valueBytes := 0, 0
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, readError(err)
		}
		key := part.FormName()
		_, disp, _ := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
		if name, isFile := disp["filename"]; isFile && name == "" {
			// An empty file input of an HTML form: no file chosen.
			if _, err := io.Copy(io.Discard, io.LimitReader(part, 1<<10)); err != nil {
				return nil, readError(err)
			}
			continue
		}
		if part.FileName() == "" {
			valueParts++
			if valueParts > maxValueParts {
				return nil, underhood.Errorf(underhood.EInvalid, "Too many form values in one request (at most %d).", maxValueParts)
			}
			b, err := io.ReadAll(io.LimitReader(part, int64(maxValueBytes-valueBytes+1)))
			if err != nil {
				return nil, readError(err)
			}
			valueBytes += len(b)
			if valueBytes > maxValueBytes {
				return nil, errTooLarge()
			}
			if key == "@jsonPayload" {
				payloads = append(payloads, string(b))
			} else if key != "" {
				values[key] = append(values[key], string(b))
			}
			continue
		}
		name, mod := splitModifier(key)
		f := c.Field(name)
		if f == nil || f.Type != underhood.FieldFile || mod == "-" {
			return nil, fileError(key, "validation_invalid_file", "Not a file field that accepts uploads.", nil)
		}
		perField[f.Name]++
		if max := max(f.MaxSelect, 1); perField[f.Name] > max {
			return nil, fileError(f.Name, "validation_too_many_values",
				fmt.Sprintf("Too many files: at most %d.", max), map[string]any{"maxSelect": max})
		}
		if len(up.files) >= s.opts.MaxFiles {
			return nil, underhood.Errorf(underhood.EInvalid, "Too many files in one request (at most %d).", s.opts.MaxFiles)
		}
		st, err := s.stage(part, f)
		if st != nil {
			up.files = append(up.files, st)
		}
		if err != nil {
			return nil, err
		}
		uploads[key] = append(uploads[key], st.name)
	}
	up.Data, err = formData(values, uploads, payloads)
	if err != nil {
		return nil, err
	}
	return up, nil
}

// stage streams one file part to the staging directory. The returned
// staged file (even with an error) is the caller's to remove.
func (s *Service) stage(part *multipart.Part, f *underhood.Field) (*staged, error) {
	maxSize := f.MaxSize
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	original := rawFileName(part)
	if strings.ContainsAny(original, `/\`) || strings.IndexFunc(original, unicode.IsControl) >= 0 {
		return nil, fileError(f.Name, "validation_invalid_file_name",
			fmt.Sprintf("The file name %q may not contain path separators or control characters.", original), nil)
	}
	tmp, err := os.CreateTemp(s.stagingDir(), "upload-*")
	if err != nil {
		return nil, underhood.Internal(fmt.Errorf("stage upload: %w", err))
	}
	st := &staged{field: f, name: StoredName(original), path: tmp.Name()}
	head := &headWriter{}
	n, err := io.Copy(io.MultiWriter(tmp, head), io.LimitReader(part, maxSize+1))
	st.size = n
	if err != nil {
		tmp.Close()
		return st, readError(err)
	}
	if n > maxSize {
		tmp.Close()
		return st, fileError(f.Name, "validation_file_size_limit",
			fmt.Sprintf("The file %q is larger than the maximum allowed size of %d bytes.", original, maxSize),
			map[string]any{"maxSize": maxSize})
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return st, underhood.Internal(fmt.Errorf("stage upload: %w", err))
	}
	if err := tmp.Close(); err != nil {
		return st, underhood.Internal(fmt.Errorf("stage upload: %w", err))
	}
	if n == 0 {
		return st, fileError(f.Name, "validation_invalid_file", fmt.Sprintf("The file %q is empty.", original), nil)
	}
	st.typ = DetectType(head.b)
	if !typeAllowed(st.typ, f.MimeTypes) {
		return st, fileError(f.Name, "validation_invalid_mime_type",
			fmt.Sprintf("The type of %q (%s) must be one of: %s.", original, st.typ, strings.Join(f.MimeTypes, ", ")),
			map[string]any{"mimeType": st.typ, "allowed": f.MimeTypes})
	}
	if ext := path.Ext(st.name); disguised(st.typ, ext) {
		return st, fileError(f.Name, "validation_invalid_mime_type",
			fmt.Sprintf("The content of %q is %s, which its extension %q does not claim.", original, st.typ, ext),
			map[string]any{"mimeType": st.typ})
	}
	return st, nil
}

// rawFileName is the file name a part was sent with. Part.FileName
// already strips directories; the raw name is checked so that a name
// trying to climb directories is refused rather than quietly shortened.
func rawFileName(p *multipart.Part) string {
	_, params, err := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
	if err != nil || params["filename"] == "" {
		return p.FileName()
	}
	return params["filename"]
}

// headWriter keeps the first sniffLen bytes written to it.
type headWriter struct{ b []byte }

func (h *headWriter) Write(p []byte) (int, error) {
	if room := sniffLen - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// formData turns the form values into field values as the JSON decoder
// would: one value stays a string, several become a list, "@jsonPayload"
// parts are merged in, and a key that got files becomes the list of its
// values followed by the stored names of its files.
func formData(values, uploads map[string][]string, payloads []string) (map[string]any, error) {
	out := make(map[string]any, len(values))
	for _, p := range payloads {
		if strings.TrimSpace(p) == "" {
			continue
		}
		var m map[string]any
		if err := (underhood.JSONLimits{}).Unmarshal([]byte(p), &m); err != nil {
			return nil, err
		}
		if m == nil {
			return nil, errBadBody()
		}
		for k, v := range m {
			out[k] = v
		}
	}
	for k, plain := range values {
		if len(uploads[k]) > 0 {
			continue
		}
		if len(plain) == 1 {
			out[k] = plain[0]
		} else {
			out[k] = plain
		}
	}
	for k, uploaded := range uploads {
		plain := values[k]
		// The key may also come with names in the JSON payload or as
		// plain values: those are kept before the new files.
		var list []any
		switch x := out[k].(type) {
		case nil:
		case []any:
			list = append(list, x...)
		default:
			list = append(list, x)
		}
		for _, v := range plain {
			list = append(list, v)
		}
		for _, n := range uploaded {
			list = append(list, n)
		}
		out[k] = list
	}
	return out, nil
}

// splitModifier splits a form key into a field name and its modifier, as
// the record service reads them: "docs+" → ("docs", "+"), "+docs" →
// ("docs", "+"), "docs-" → ("docs", "-").
func splitModifier(key string) (string, string) {
	switch {
	case strings.HasPrefix(key, "+"):
		return key[1:], "+"
	case strings.HasSuffix(key, "+"):
		return key[:len(key)-1], "+"
	case strings.HasSuffix(key, "-"):
		return key[:len(key)-1], "-"
	}
	return key, ""
}

// Names returns the stored names of the uploaded files.
func (u *Upload) Names() []string {
	names := make([]string, len(u.files))
	for i, f := range u.files {
		names[i] = f.name
	}
	return names
}

// RecordID returns the id of the record a create writes: the one in Data,
// or a new one set in Data when the body has none and carries files (they
// are stored under the record's id before the record exists).
func (u *Upload) RecordID() string {
	id, _ := u.Data["id"].(string)
	if id == "" && len(u.files) > 0 {
		id = underhood.NewID()
		u.Data["id"] = id
	}
	return id
}

// Write stores the staged files under record recordID, then runs write,
// which names them to the record service (Names, as its request's
// Uploads). When write fails, the stored files are removed again: a
// failed write leaves nothing behind. Files that the write dropped are
// removed by the service once it has committed.
func (u *Upload) Write(ctx context.Context, recordID string, write func(ctx context.Context) error) error {
	if len(u.files) > 0 {
		if !validRecordID(recordID) {
			return underhood.Invalid("Failed to save record.", map[string]any{
				"id": underhood.FieldError{Code: "validation_invalid_format", Message: "Invalid record id."}})
		}
		if err := u.store(ctx, recordID); err != nil {
			u.discard()
			return underhood.Internal(err)
		}
	}
	if err := write(ctx); err != nil {
		u.discard()
		return err
	}
	u.stored = nil
	return nil
}

// store moves every staged file to its key.
func (u *Upload) store(ctx context.Context, recordID string) error {
	for _, f := range u.files {
		key := fileKey(u.c, recordID, f.name)
		if err := u.s.putStaged(ctx, key, f); err != nil {
			return err
		}
		u.stored = append(u.stored, key)
		f.path = ""
	}
	return nil
}

func (s *Service) putStaged(ctx context.Context, key string, f *staged) error {
	if st, ok := s.store.(stager); ok {
		return st.PutFile(ctx, key, f.path)
	}
	file, err := os.Open(f.path)
	if err != nil {
		return err
	}
	defer file.Close()
	if err := s.store.Put(ctx, key, file, f.size, f.typ); err != nil {
		return err
	}
	file.Close()
	return os.Remove(f.path)
}

// discard removes the files already stored for a write that failed.
func (u *Upload) discard() {
	ctx, cancel := context.WithTimeout(context.Background(), removeTimeout)
	defer cancel()
	for _, key := range u.stored {
		if err := u.s.store.Delete(ctx, key); err != nil {
			u.s.log.Warn("files: remove upload of a failed write", "key", key, "err", err)
		}
	}
	u.stored = nil
}

// Close removes the files still staged.
func (u *Upload) Close() {
	if u == nil {
		return
	}
	for _, f := range u.files {
		if f.path != "" {
			os.Remove(f.path)
			f.path = ""
		}
	}
}

package rest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
)

// maxMultipartMemory is how much of the files of a multipart body that is
// not a record write (those stream through files.ReadMultipart) is kept in
// memory; more goes to temporary files. Its values are held in memory up
// to this plus the 10 MiB net/http allows them.
const maxMultipartMemory = 1 << 20

// newRequest describes the HTTP caller to the record service.
func newRequest(r *http.Request, body map[string]any) *record.Request {
	headers := make(map[string]string, len(r.Header))
	for k, v := range r.Header {
		headers[strings.ReplaceAll(strings.ToLower(k), "-", "_")] = strings.Join(v, ",")
	}
	query := make(map[string]string)
	for k, v := range r.URL.Query() {
		if len(v) > 0 {
			query[k] = v[0]
		}
	}
	if body == nil {
		body = map[string]any{}
	}
	return &record.Request{
		Context: "default",
		Method:  r.Method,
		Headers: headers,
		Query:   query,
		Body:    body,
		Auth:    underhood.Identity(r.Context()),
	}
}

func errBadBody() error {
	return underhood.Errorf(underhood.EInvalid, "Failed to load the submitted data due to invalid formatting.")
}

// readBody decodes a JSON, multipart or url-encoded request body into a
// map of field values. An empty body is an empty map. JSON (a body or a
// multipart "@jsonPayload") is decoded within the adapter's JSON limits.
func (a *api) readBody(r *http.Request) (map[string]any, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "multipart/form-data":
		if err := r.ParseMultipartForm(maxMultipartMemory); err != nil {
			return nil, bodyError(err)
		}
		return a.formValues(r.MultipartForm.Value)
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return nil, bodyError(err)
		}
		return a.formValues(r.PostForm)
	}
	b, err := readAll(r)
	if err != nil {
		return nil, bodyError(err)
	}
	return a.decodeObject(b)
}

// readAll reads the body of r, into a buffer of its announced length when
// it has one (the server's body limit has already refused a length over
// it), so that a large body is not copied again and again as it grows.
func readAll(r *http.Request) ([]byte, error) {
	if r.ContentLength <= 0 {
		return io.ReadAll(r.Body)
	}
	// net/http delivers exactly ContentLength bytes or fails.
	b := make([]byte, r.ContentLength)
	n, err := io.ReadFull(r.Body, b)
	return b[:n], err
}

// bodyError maps an error met while reading a body: the server's size
// limit is 413 naming the limit, its time limit is kept for errorResponse
// (408), anything else is PocketBase's 400.
func bodyError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errTooLarge(mbe.Limit)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	return errBadBody()
}

func errTooLarge(limit int64) error {
	return underhood.Errorf(underhood.ETooLarge, "Request entity too large: the limit for this body is %d bytes.", limit)
}

// decodeObject decodes a JSON object within the JSON limits.
func (a *api) decodeObject(b []byte) (map[string]any, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return map[string]any{}, nil
	}
	var m map[string]any
	if err := a.json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errBadBody()
	}
	return m, nil
}

// formValues turns form values into field values: one value stays a
// string, several become a list, and a "@jsonPayload" part is merged in
// as JSON.
func (a *api) formValues(form map[string][]string) (map[string]any, error) {
	out := make(map[string]any, len(form))
	for k, v := range form {
		if k == "@jsonPayload" {
			for _, p := range v {
				m, err := a.decodeObject([]byte(p))
				if err != nil {
					return nil, err
				}
				for mk, mv := range m {
					out[mk] = mv
				}
			}
			continue
		}
		if len(v) == 1 {
			out[k] = v[0]
		} else {
			out[k] = append([]string(nil), v...)
		}
	}
	return out, nil
}

func (a *api) handleList(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	p := record.ListParams{
		Sort:      q.Get("sort"),
		Filter:    q.Get("filter"),
		Expand:    q.Get("expand"),
		SkipTotal: isTrue(q.Get("skipTotal")),
	}
	var err error
	if p.Page, err = intParam(q.Get("page"), "page"); err != nil {
		return err
	}
	if p.PerPage, err = intParam(q.Get("perPage"), "perPage"); err != nil {
		return err
	}
	proj, err := parseFields(q.Get("fields"))
	if err != nil {
		return err
	}
	res, err := a.records.List(r.Context(), newRequest(r, nil), r.PathValue("c"), p)
	if err != nil {
		return err
	}
	return writeRaw(w, http.StatusOK, encodeList(res, proj))
}

func (a *api) handleView(w http.ResponseWriter, r *http.Request) error {
	proj, err := parseFields(r.URL.Query().Get("fields"))
	if err != nil {
		return err
	}
	rec, err := a.records.View(r.Context(), newRequest(r, nil), r.PathValue("c"), r.PathValue("id"), r.URL.Query().Get("expand"))
	if err != nil {
		return err
	}
	return writeRaw(w, http.StatusOK, encodeRecord(nil, rec, proj))
}

func (a *api) handleCreate(w http.ResponseWriter, r *http.Request) error {
	proj, err := parseFields(r.URL.Query().Get("fields"))
	if err != nil {
		return err
	}
	var rec *underhood.Record
	err = a.readWrite(r, "", func(ctx context.Context, body map[string]any, uploads []string) (err error) {
		req := newRequest(r, body)
		req.Uploads = uploads
		rec, err = a.records.Create(ctx, req, r.PathValue("c"), body, r.URL.Query().Get("expand"))
		return err
	})
	if err != nil {
		return err
	}
	return writeRaw(w, http.StatusOK, encodeRecord(nil, rec, proj))
}

func (a *api) handleUpdate(w http.ResponseWriter, r *http.Request) error {
	proj, err := parseFields(r.URL.Query().Get("fields"))
	if err != nil {
		return err
	}
	var rec *underhood.Record
	err = a.readWrite(r, r.PathValue("id"), func(ctx context.Context, body map[string]any, uploads []string) (err error) {
		req := newRequest(r, body)
		req.Uploads = uploads
		rec, err = a.records.Update(ctx, req, r.PathValue("c"), r.PathValue("id"), body, r.URL.Query().Get("expand"))
		return err
	})
	if err != nil {
		return err
	}
	return writeRaw(w, http.StatusOK, encodeRecord(nil, rec, proj))
}

func (a *api) handleDelete(w http.ResponseWriter, r *http.Request) error {
	if err := a.records.Delete(r.Context(), newRequest(r, nil), r.PathValue("c"), r.PathValue("id")); err != nil {
		return err
	}
	return noContent(w)
}

func isTrue(s string) bool {
	b, _ := strconv.ParseBool(s)
	return b
}

func intParam(s, name string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, underhood.Invalid("Invalid query parameter.", map[string]any{
			name: underhood.FieldError{Code: "validation_invalid_int", Message: "Must be a non-negative integer."}})
	}
	return n, nil
}

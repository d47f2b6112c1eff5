package rest

import (
	"context"
	"mime"
	"net/http"

	"github.com/underhood/underhood"
)

// handleFileToken issues the caller a short-lived file token, the
// identity protected files are checked for (?token=…).
func (a *api) handleFileToken(w http.ResponseWriter, r *http.Request) error {
	token, err := a.auth.NewFileToken(callerOf(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]string{"token": token})
}

// handleFileDownload serves a file of a record the caller may read
// (record.Service.FileRecord decides); the identity a protected file is
// checked for is that of the file token in ?token=.
func (a *api) handleFileDownload(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	name := r.PathValue("name")
	rec, err := a.records.FileRecord(ctx, newRequest(r, nil), r.PathValue("c"), r.PathValue("id"), name, func() (*underhood.Record, error) {
		return a.auth.IdentifyFile(ctx, r.URL.Query().Get("token"))
	})
	if err != nil {
		return err
	}
	return a.files.Serve(w, r, rec, name)
}

// readWrite reads the body of a create (id "") or update of a record of
// collection {c} and runs write with it and the stored names of the files
// uploaded with it. A multipart body goes through the file service, which
// streams its files to storage before the write and removes them again if
// the write fails; other bodies upload nothing.
func (a *api) readWrite(r *http.Request, id string, write func(ctx context.Context, body map[string]any, uploads []string) error) error {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if a.files == nil || ct != "multipart/form-data" {
		body, err := a.readBody(r)
		if err != nil {
			return err
		}
		return write(r.Context(), body, nil)
	}
	c, err := a.records.Collection(r.PathValue("c"))
	if err != nil {
		return err
	}
	up, err := a.files.ReadMultipart(r, c)
	if err != nil {
		return err
	}
	defer up.Close()
	if id == "" {
		id = up.RecordID()
	}
	return up.Write(r.Context(), id, func(ctx context.Context) error { return write(ctx, up.Data, up.Names()) })
}

// dropCollectionFiles resolves collection nameOrID before it is deleted or
// truncated and returns what to call once that succeeded: the removal of
// its files.
func (a *api) dropCollectionFiles(nameOrID string) func() {
	c, err := a.records.Collection(nameOrID)
	if a.files == nil || err != nil {
		return func() {}
	}
	return func() { a.files.RemoveCollection(c.ID) }
}

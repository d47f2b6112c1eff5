package rest

import (
	"context"
	"mime"
	"net/http"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/auth"
	"github.com/underhood/underhood/files"
)

// fileRoutes serves stored files and file tokens; without a file service
// there are none.
func (a *api) fileRoutes() {
	if a.files == nil {
		return
	}
	a.handle("POST /api/files/token", a.handleFileToken)
	a.handle("GET /api/files/{c}/{id}/{name}", a.handleFileDownload)
	a.handle("HEAD /api/files/{c}/{id}/{name}", a.handleFileDownload)
}

// handleFileToken issues the caller a short-lived file token, the
// identity protected files are checked for (?token=…).
func (a *api) handleFileToken(w http.ResponseWriter, r *http.Request) error {
	caller := callerOf(r)
	if caller == nil {
		return underhood.Errorf(underhood.EUnauthorized, "The request requires valid record authorization token.")
	}
	token, err := a.auth.NewToken(caller, auth.KindFile)
	if err != nil {
		return underhood.Internal(err)
	}
	return writeJSON(w, http.StatusOK, map[string]string{"token": token})
}

// handleFileDownload serves a file of a record. A file of an unprotected
// field goes to anyone with its URL (as in PocketBase); a protected one
// only when the record's view rule passes for the identity of ?token=
// with @request.context = "protectedFile".
func (a *api) handleFileDownload(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c, err := a.records.Collection(r.PathValue("c"))
	if err != nil || c.IsView() {
		return errFileNotFound()
	}
	rec, err := a.records.FindRecord(ctx, c, r.PathValue("id"))
	if underhood.ErrorCode(err) == underhood.ENotFound {
		return errFileNotFound()
	}
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	f := files.FieldOf(rec, name)
	if f == nil {
		return errFileNotFound()
	}
	if f.Protected {
		ident, err := a.auth.IdentifyFile(ctx, r.URL.Query().Get("token"))
		if err != nil && underhood.ErrorCode(err) != underhood.EUnauthorized {
			return err
		}
		req := newRequest(r, nil)
		req.Context, req.Auth = "protectedFile", ident
		if _, err := a.records.View(ctx, req, c.ID, rec.ID(), ""); err != nil {
			switch underhood.ErrorCode(err) {
			case underhood.ENotFound, underhood.EForbidden:
				return underhood.Errorf(underhood.EForbidden, "Insufficient permissions to access the file resource.")
			}
			return err
		}
	}
	return a.files.Serve(w, r, rec, name)
}

func errFileNotFound() error {
	return underhood.Errorf(underhood.ENotFound, "The requested resource wasn't found.")
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

package files

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/underhood/underhood"
)

// contentPolicy keeps a served file inert even if a browser renders it: no
// scripts, no plugins, no requests of its own, its own unique origin.
const contentPolicy = "default-src 'none'; media-src 'self'; style-src 'unsafe-inline'; sandbox"

// Serve writes the file name of record r to w, or the thumbnail the query
// asks for (thumb=WxH…) when the file is an image and the size is one of
// its field's thumbs or 100x100 (other sizes get the original, as in
// PocketBase). It answers Range, If-None-Match, If-Modified-Since, If-Match
// and If-Range requests (http.ServeContent, over either storage). Every
// response carries Content-Security-Policy: sandbox and nosniff; HTML, SVG,
// XML and scripts, and any file asked for with download=1, are sent as
// attachments. Access checks are the caller's: Serve only refuses a name
// r does not hold (404).
func (s *Service) Serve(w http.ResponseWriter, req *http.Request, r *underhood.Record, name string) error {
	f := fileField(r, name)
	if f == nil || !ValidName(name) || !validRecordID(r.ID()) {
		return errFileNotFound()
	}
	ctx := req.Context()
	q := req.URL.Query()
	key := fileKey(r.Collection, r.ID(), name)

	var obj Object
	if size := q.Get("thumb"); size != "" && thumbAllowed(f, size) {
		t, err := s.thumbnail(ctx, r.Collection, r.ID(), name, size)
		switch {
		case err == nil:
			obj = t
		case err == errNoThumb, errors.Is(err, errThumbAbandoned):
			// Not an image, or too large to decode within the budget:
			// the original, as PocketBase serves. Or the client left
			// while waiting for a generation slot.
		default:
			s.log.Warn("files: thumbnail", "key", key, "thumb", size, "err", err)
		}
	}
	if obj == nil {
		o, err := s.store.Open(ctx, key)
		if IsNotExist(err) {
			return errFileNotFound()
		}
		if err != nil {
			return underhood.Internal(err)
		}
		obj = o
	}
	defer obj.Close()
	info := obj.Info()

	typ, _, _ := mime.ParseMediaType(info.ContentType)
	if typ == "" || typ == "application/octet-stream" || typ == "binary/octet-stream" {
		head := make([]byte, sniffLen)
		n, err := io.ReadFull(obj, head)
		if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
			return underhood.Internal(err)
		}
		if _, err := obj.Seek(0, io.SeekStart); err != nil {
			return underhood.Internal(err)
		}
		typ = DetectType(head[:n])
	}

	h := w.Header()
	contentType := typ
	if strings.HasPrefix(typ, "text/") {
		contentType += "; charset=utf-8"
	}
	h.Set("Content-Type", contentType)
	h.Set("Content-Security-Policy", contentPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	disposition := "inline"
	if isTrue(q.Get("download")) || isActive(typ) {
		disposition = "attachment"
	}
	h.Set("Content-Disposition", mime.FormatMediaType(disposition, map[string]string{"filename": name}))
	if f.Protected {
		h.Set("Cache-Control", "private, no-cache")
	} else {
		h.Set("Cache-Control", "max-age=2592000, stale-while-revalidate=86400")
	}
	if info.ETag != "" {
		h.Set("ETag", info.ETag)
	}
	http.ServeContent(w, req, "", info.ModTime, obj)
	return nil
}

func errFileNotFound() error {
	return underhood.Errorf(underhood.ENotFound, "The requested resource wasn't found.")
}

func isTrue(s string) bool {
	switch strings.ToLower(s) {
	case "1", "t", "true", "yes", "on":
		return true
	}
	return false
}

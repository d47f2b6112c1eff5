package rest

import (
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
)

// batchRequest is one request of POST /api/batch.
type batchRequest struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Body    map[string]any    `json:"body"`
}

type batchResult struct {
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
}

// readBatch reads the batch's requests from a JSON body or from the
// "@jsonPayload" of a multipart one, within the adapter's JSON limits.
func (a *api) readBatch(r *http.Request) ([]batchRequest, error) {
	var payload struct {
		Requests []batchRequest `json:"requests"`
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "multipart/form-data" {
		if err := r.ParseMultipartForm(maxMultipartMemory); err != nil {
			return nil, bodyError(err)
		}
		raw := r.MultipartForm.Value["@jsonPayload"]
		if len(raw) == 0 {
			return nil, errBadBody()
		}
		if err := a.json.Unmarshal([]byte(raw[0]), &payload); err != nil {
			return nil, err
		}
		// Plain form parts named requests.N.field add to request N's body.
		for k, v := range r.MultipartForm.Value {
			rest, ok := strings.CutPrefix(k, "requests.")
			if !ok {
				continue
			}
			idx, field, ok := strings.Cut(rest, ".")
			i, err := strconv.Atoi(idx)
			if !ok || err != nil || i < 0 || i >= len(payload.Requests) {
				continue
			}
			if payload.Requests[i].Body == nil {
				payload.Requests[i].Body = map[string]any{}
			}
			if len(v) == 1 {
				payload.Requests[i].Body[field] = v[0]
			} else {
				payload.Requests[i].Body[field] = append([]string(nil), v...)
			}
		}
		return payload.Requests, nil
	}
	b, err := readAll(r)
	if err != nil {
		return nil, bodyError(err)
	}
	if err := a.json.Unmarshal(b, &payload); err != nil {
		return nil, err
	}
	return payload.Requests, nil
}

// handleBatch runs every request of the batch in one transaction. If one
// fails, nothing is written and the 400 names the failing request.
func (a *api) handleBatch(w http.ResponseWriter, r *http.Request) error {
	// Asked before the body is read: a disabled batch is refused whatever
	// it holds.
	if err := a.records.CheckBatchEnabled(); err != nil {
		return err
	}
	reqs, err := a.readBatch(r)
	if err != nil {
		return err
	}
	results := make([]batchResult, len(reqs))
	failed := -1
	err = a.records.Batch(r.Context(), len(reqs), func(tx *record.Tx) error {
		for i, br := range reqs {
			res, err := a.runBatchRequest(tx, r, br)
			if err != nil {
				failed = i
				return err
			}
			results[i] = res
		}
		return nil
	})
	if err == nil {
		return writeJSON(w, http.StatusOK, results)
	}
	if failed < 0 {
		return err
	}
	return writeJSON(w, http.StatusBadRequest, errorBody{
		Status:  http.StatusBadRequest,
		Message: "Batch transaction failed.",
		Data: map[string]any{"requests": map[string]any{strconv.Itoa(failed): map[string]any{
			"code":     "batch_request_failed",
			"message":  "Batch request failed.",
			"response": a.errorResponse(r, err),
		}}},
	})
}

func (a *api) runBatchRequest(tx *record.Tx, r *http.Request, br batchRequest) (batchResult, error) {
	u, err := url.Parse(br.URL)
	if err != nil {
		return batchResult{}, errBadBatchURL(br)
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) < 4 || parts[0] != "api" || parts[1] != "collections" || parts[3] != "records" || len(parts) > 5 {
		return batchResult{}, errBadBatchURL(br)
	}
	coll := parts[2]
	id := ""
	if len(parts) == 5 {
		id = parts[4]
	}
	q := u.Query()
	proj, err := parseFields(q.Get("fields"))
	if err != nil {
		return batchResult{}, err
	}
	body := br.Body
	if body == nil {
		body = map[string]any{}
	}
	req := newRequest(r, body)
	req.Context = "batch"
	req.Method = strings.ToUpper(br.Method)
	for k, v := range br.Headers {
		req.Headers[strings.ReplaceAll(strings.ToLower(k), "-", "_")] = v
	}
	req.Query = map[string]string{}
	for k, v := range q {
		req.Query[k] = v[0]
	}
	expand := q.Get("expand")

	var rec *underhood.Record
	switch {
	case req.Method == http.MethodPost && id == "":
		rec, err = tx.Create(req, coll, body, expand)
	case req.Method == http.MethodPut && id == "":
		rec, err = tx.Upsert(req, coll, body, expand)
	case req.Method == http.MethodPatch && id != "":
		rec, err = tx.Update(req, coll, id, body, expand)
	case req.Method == http.MethodDelete && id != "":
		if err := tx.Delete(req, coll, id); err != nil {
			return batchResult{}, err
		}
		return batchResult{Status: http.StatusNoContent, Body: json.RawMessage("null")}, nil
	default:
		return batchResult{}, errBadBatchURL(br)
	}
	if err != nil {
		return batchResult{}, err
	}
	return batchResult{Status: http.StatusOK, Body: encodeRecord(nil, rec, proj)}, nil
}

func errBadBatchURL(br batchRequest) error {
	return underhood.Errorf(underhood.EInvalid, "Invalid batch request %s %q: only record create, upsert, update and delete are allowed.", br.Method, br.URL)
}

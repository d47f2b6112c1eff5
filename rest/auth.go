package rest

import (
	"encoding/json"
	"net/http"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/auth"
)

// authResponse writes {token, record} with the record's fields and expand
// parameters honoured.
func (a *api) authResponse(w http.ResponseWriter, r *http.Request, token string, rec *underhood.Record) error {
	proj, err := parseFields(r.URL.Query().Get("fields"))
	if err != nil {
		return err
	}
	// The fields parameter applies to the whole response; its "record."
	// branch is the record's projection.
	var recProj *projection
	if proj != nil {
		ok, sub := proj.wants("record")
		if !ok {
			return writeJSON(w, http.StatusOK, map[string]any{"token": token})
		}
		recProj = sub
	}
	if exp := r.URL.Query().Get("expand"); exp != "" {
		req := newRequest(r, nil)
		req.Auth = rec
		if full, err := a.records.View(r.Context(), req, rec.Collection.ID, rec.ID(), exp); err == nil {
			rec = full
		}
	}
	b := []byte(`{"token":`)
	b = underhood.AppendJSONString(b, token)
	b = append(b, `,"record":`...)
	b = encodeRecord(b, rec, recProj)
	b = append(b, '}')
	return writeRaw(w, http.StatusOK, b)
}

func (a *api) handleAuthWithPassword(w http.ResponseWriter, r *http.Request) error {
	body, err := a.readBody(r)
	if err != nil {
		return err
	}
	identity, _ := body["identity"].(string)
	password, _ := body["password"].(string)
	field, _ := body["identityField"].(string)
	res, err := a.auth.AuthWithPassword(r.Context(), r.PathValue("c"), identity, password, field, mfaIDOf(r, body))
	if err != nil {
		return err
	}
	return a.authResult(w, r, res)
}

func (a *api) handleAuthRefresh(w http.ResponseWriter, r *http.Request) error {
	token, rec, err := a.auth.Refresh(r.Context(), callerOf(r), r.Header.Get("Authorization"), r.PathValue("c"))
	if err != nil {
		return err
	}
	return a.authResponse(w, r, token, rec)
}

func (a *api) handleAuthMethods(w http.ResponseWriter, r *http.Request) error {
	methods, err := a.auth.Methods(r.Context(), r.PathValue("c"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, methods)
}

// authResult writes the outcome of an authentication method: the token
// and record, or, when a second factor is required, 401 {"mfaId": …}.
func (a *api) authResult(w http.ResponseWriter, r *http.Request, res *auth.Result) error {
	if res.MFAID != "" {
		return writeJSON(w, http.StatusUnauthorized, map[string]any{"mfaId": res.MFAID})
	}
	if len(res.Meta) == 0 {
		return a.authResponse(w, r, res.Token, res.Record)
	}
	meta, err := json.Marshal(res.Meta)
	if err != nil {
		return err
	}
	b := []byte(`{"token":`)
	b = underhood.AppendJSONString(b, res.Token)
	b = append(b, `,"record":`...)
	b = encodeRecord(b, res.Record, nil)
	b = append(b, `,"meta":`...)
	b = append(b, meta...)
	b = append(b, '}')
	return writeRaw(w, http.StatusOK, b)
}

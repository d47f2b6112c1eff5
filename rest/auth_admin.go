package rest

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/underhood/underhood"
)

// authAdminRoutes are the routes that manage tokens rather than prove an
// identity: revoking a record's tokens (our addition) and impersonation.
func (a *api) authAdminRoutes() {
	a.handle("POST /api/collections/{c}/auth-revoke", a.handleAuthRevoke)
	a.handle("POST /api/collections/{c}/impersonate/{id}", a.handleImpersonate)
}

// handleAuthRevoke invalidates every token of the caller, or, for a
// superuser, of the record named by ?recordId= or {"recordId": …}. It
// answers 204.
func (a *api) handleAuthRevoke(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	id := r.URL.Query().Get("recordId")
	if v, ok := body["recordId"]; ok && id == "" {
		s, ok := v.(string)
		if !ok {
			return underhood.Invalid("An error occurred while validating the submitted data.", map[string]any{
				"recordId": underhood.FieldError{Code: "validation_invalid_value", Message: "Must be a record id."},
			})
		}
		id = s
	}
	if err := a.auth.Revoke(r.Context(), callerOf(r), r.PathValue("c"), id); err != nil {
		return err
	}
	return noContent(w)
}

// handleImpersonate answers a superuser with {token, record} for another
// record; {"duration": seconds} sets the token's lifetime.
func (a *api) handleImpersonate(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	seconds, ok := numberOf(body["duration"])
	if !ok || seconds != math.Trunc(seconds) {
		return underhood.Invalid("An error occurred while validating the submitted data.", map[string]any{
			"duration": underhood.FieldError{Code: "validation_invalid_value", Message: "Must be a whole number of seconds."},
		})
	}
	d := time.Duration(min(math.Max(seconds, -1), math.MaxInt64/float64(time.Second))) * time.Second
	token, rec, err := a.auth.Impersonate(r.Context(), callerOf(r), r.PathValue("c"), r.PathValue("id"), d)
	if err != nil {
		return err
	}
	return a.authResponse(w, r, token, rec)
}

// numberOf reads a JSON number or a form's numeric string; absent is 0.
func numberOf(v any) (float64, bool) {
	switch v := v.(type) {
	case nil:
		return 0, true
	case float64:
		return v, true
	case string:
		if v == "" {
			return 0, true
		}
		f, err := strconv.ParseFloat(v, 64)
		return f, err == nil && !math.IsInf(f, 0) && !math.IsNaN(f)
	}
	return 0, false
}

package rest

import "net/http"

// mfaIDOf returns the id of the multi-factor session a login continues:
// the body's "mfaId", or the query parameter of that name, where the
// pocketbase SDK puts it when it is passed as an option.
func mfaIDOf(r *http.Request, body map[string]any) string {
	if id, _ := body["mfaId"].(string); id != "" {
		return id
	}
	return r.URL.Query().Get("mfaId")
}

func (a *api) handleTOTPEnroll(w http.ResponseWriter, r *http.Request) error {
	enrolment, err := a.auth.EnrollTOTP(r.Context(), callerOf(r), r.PathValue("c"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, enrolment)
}

func (a *api) handleTOTPConfirm(w http.ResponseWriter, r *http.Request) error {
	body, err := a.readBody(r)
	if err != nil {
		return err
	}
	if err := a.auth.ConfirmTOTP(r.Context(), callerOf(r), r.PathValue("c"), stringOf(body, "code")); err != nil {
		return err
	}
	return noContent(w)
}

func (a *api) handleTOTPDisable(w http.ResponseWriter, r *http.Request) error {
	body, err := a.readBody(r)
	if err != nil {
		return err
	}
	if err := a.auth.DisableTOTP(r.Context(), callerOf(r), r.PathValue("c"), stringOf(body, "code")); err != nil {
		return err
	}
	return noContent(w)
}

func (a *api) handleAuthWithTOTP(w http.ResponseWriter, r *http.Request) error {
	body, err := a.readBody(r)
	if err != nil {
		return err
	}
	res, err := a.auth.AuthWithTOTP(r.Context(), r.PathValue("c"), mfaIDOf(r, body), stringOf(body, "code"))
	if err != nil {
		return err
	}
	return a.authResult(w, r, res)
}

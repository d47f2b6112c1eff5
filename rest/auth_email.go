package rest

import "net/http"

// stringOf returns body[key] when it is a string, else "" (which the
// flows report as a missing value).
func stringOf(body map[string]any, key string) string {
	s, _ := body[key].(string)
	return s
}

func (a *api) handleRequestVerification(w http.ResponseWriter, r *http.Request) error {
	body, err := a.readBody(r)
	if err != nil {
		return err
	}
	if err := a.auth.RequestVerification(r.Context(), r.PathValue("c"), stringOf(body, "email")); err != nil {
		return err
	}
	return noContent(w)
}

func (a *api) handleConfirmVerification(w http.ResponseWriter, r *http.Request) error {
	body, err := a.readBody(r)
	if err != nil {
		return err
	}
	if err := a.auth.ConfirmVerification(r.Context(), r.PathValue("c"), stringOf(body, "token")); err != nil {
		return err
	}
	return noContent(w)
}

func (a *api) handleRequestPasswordReset(w http.ResponseWriter, r *http.Request) error {
	body, err := a.readBody(r)
	if err != nil {
		return err
	}
	if err := a.auth.RequestPasswordReset(r.Context(), r.PathValue("c"), stringOf(body, "email")); err != nil {
		return err
	}
	return noContent(w)
}

func (a *api) handleConfirmPasswordReset(w http.ResponseWriter, r *http.Request) error {
	body, err := a.readBody(r)
	if err != nil {
		return err
	}
	err = a.auth.ConfirmPasswordReset(r.Context(), r.PathValue("c"),
		stringOf(body, "token"), stringOf(body, "password"), stringOf(body, "passwordConfirm"))
	if err != nil {
		return err
	}
	return noContent(w)
}

func (a *api) handleRequestEmailChange(w http.ResponseWriter, r *http.Request) error {
	body, err := a.readBody(r)
	if err != nil {
		return err
	}
	if err := a.auth.RequestEmailChange(r.Context(), callerOf(r), r.PathValue("c"), stringOf(body, "newEmail")); err != nil {
		return err
	}
	return noContent(w)
}

func (a *api) handleConfirmEmailChange(w http.ResponseWriter, r *http.Request) error {
	body, err := a.readBody(r)
	if err != nil {
		return err
	}
	if err := a.auth.ConfirmEmailChange(r.Context(), r.PathValue("c"), stringOf(body, "token"), stringOf(body, "password")); err != nil {
		return err
	}
	return noContent(w)
}

func (a *api) handleRequestOTP(w http.ResponseWriter, r *http.Request) error {
	body, err := a.readBody(r)
	if err != nil {
		return err
	}
	id, err := a.auth.RequestOTP(r.Context(), r.PathValue("c"), stringOf(body, "email"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]string{"otpId": id})
}

func (a *api) handleAuthWithOTP(w http.ResponseWriter, r *http.Request) error {
	body, err := a.readBody(r)
	if err != nil {
		return err
	}
	res, err := a.auth.AuthWithOTP(r.Context(), r.PathValue("c"), stringOf(body, "otpId"), stringOf(body, "password"), mfaIDOf(r, body))
	if err != nil {
		return err
	}
	return a.authResult(w, r, res)
}

package rest

import (
	"net/http"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/auth"
)

// handleAuthWithOAuth2 completes a sign-in with the code the provider gave
// the client: {provider, code, codeVerifier, redirectURL, createData?}.
// An mfaId (query or body) completes a pending multi-factor login.
func (a *api) handleAuthWithOAuth2(w http.ResponseWriter, r *http.Request) error {
	body, err := a.readBody(r)
	if err != nil {
		return err
	}
	str := func(key string) string { s, _ := body[key].(string); return s }
	var createData map[string]any
	switch v := body["createData"].(type) {
	case nil:
	case map[string]any:
		createData = v
	default:
		return underhood.Invalid("An error occurred while loading the submitted data.", map[string]any{
			"createData": underhood.FieldError{Code: "validation_invalid_value", Message: "Must be an object."},
		})
	}
	redirectURL := str("redirectURL")
	if redirectURL == "" {
		redirectURL = str("redirectUrl") // PocketBase before v0.23
	}
	mfaID := r.URL.Query().Get("mfaId")
	if mfaID == "" {
		mfaID = str("mfaId")
	}
	res, err := a.auth.AuthWithOAuth2(r.Context(), auth.OAuth2Login{
		Collection:   r.PathValue("c"),
		Provider:     str("provider"),
		Code:         str("code"),
		CodeVerifier: str("codeVerifier"),
		RedirectURL:  redirectURL,
		CreateData:   createData,
		MFAID:        mfaID,
		Request:      newRequest(r, nil),
	})
	if err != nil {
		return err
	}
	return a.authResult(w, r, res)
}

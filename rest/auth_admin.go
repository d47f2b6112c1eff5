package rest

import (
	"errors"
	"html/template"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/underhood/underhood"
)

// handleAuthRevoke invalidates every token of the caller, or, for a
// superuser, of the record named by ?recordId= or {"recordId": …}. It
// answers 204.
func (a *api) handleAuthRevoke(w http.ResponseWriter, r *http.Request) error {
	body, err := a.readBody(r)
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
	body, err := a.readBody(r)
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

// installPage is the form the install link opens: no script, no external
// resource, and the token travels in a hidden field.
var installPage = template.Must(template.New("install").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Create the first superuser</title>
<style>body{font:16px system-ui,sans-serif;max-width:26em;margin:3em auto;padding:0 1em}
label{display:block;margin:.8em 0 .2em}input{width:100%;padding:.4em;box-sizing:border-box}
button{margin-top:1.2em;padding:.5em 1.2em}.err{color:#b00}</style></head><body>
<h1>Create the first superuser</h1>
{{if .Done}}<p>The superuser {{.Email}} was created. This link no longer works; sign in through the API
(<code>POST /api/collections/_superusers/auth-with-password</code>).</p>
{{else if .Fatal}}<p class="err">{{.Fatal}}</p><p>Run <code>underhood superuser upsert EMAIL PASSWORD</code>
or restart the server on a data directory without a superuser for a new link.</p>
{{else}}{{if .Error}}<p class="err">{{.Error}}</p>{{end}}
<form method="post" action="/api/install">
<input type="hidden" name="token" value="{{.Token}}">
<label for="email">Email</label><input id="email" name="email" type="email" value="{{.Email}}" required autocomplete="username">
<label for="password">Password (at least 8 characters)</label><input id="password" name="password" type="password" required minlength="8" autocomplete="new-password">
<label for="passwordConfirm">Password again</label><input id="passwordConfirm" name="passwordConfirm" type="password" required autocomplete="new-password">
<button type="submit">Create superuser</button>
</form>{{end}}
</body></html>
`))

type installView struct {
	Token, Email, Error, Fatal string
	Done                       bool
}

func writeInstallPage(w http.ResponseWriter, status int, v installView) error {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	// The token is in the URL: keep it out of caches and Referer headers.
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	return installPage.Execute(w, v)
}

// handleInstallForm serves the form the install link opens.
func (a *api) handleInstallForm(w http.ResponseWriter, r *http.Request) error {
	token := r.URL.Query().Get("token")
	if err := a.auth.CheckInstallToken(r.Context(), token); err != nil {
		if underhood.ErrorCode(err) == underhood.EInternal {
			return err
		}
		return writeInstallPage(w, http.StatusForbidden, installView{Fatal: underhood.ErrorMessage(err)})
	}
	return writeInstallPage(w, http.StatusOK, installView{Token: token})
}

// handleInstall creates the first superuser from {token, email, password,
// passwordConfirm}. A JSON request gets the record as JSON; the form of
// the install page gets a page.
func (a *api) handleInstall(w http.ResponseWriter, r *http.Request) error {
	body, err := a.readBody(r)
	if err != nil {
		return err
	}
	str := func(k string) string { s, _ := body[k].(string); return s }
	rec, err := a.auth.Install(r.Context(), str("token"), str("email"), str("password"), str("passwordConfirm"))
	fromForm := strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded")
	if !fromForm {
		if err != nil {
			return err
		}
		return writeRaw(w, http.StatusOK, encodeRecord(nil, rec, nil))
	}
	switch underhood.ErrorCode(err) {
	case "":
		return writeInstallPage(w, http.StatusOK, installView{Done: true, Email: rec.String("email")})
	case underhood.EInvalid:
		return writeInstallPage(w, http.StatusBadRequest, installView{Token: str("token"), Email: str("email"), Error: fieldErrorsText(err)})
	case underhood.EInternal:
		return err
	default:
		return writeInstallPage(w, statusOf[underhood.ErrorCode(err)], installView{Fatal: underhood.ErrorMessage(err)})
	}
}

// fieldErrorsText renders a validation error for a person.
func fieldErrorsText(err error) string {
	var ue *underhood.Error
	if !errors.As(err, &ue) || len(ue.Data) == 0 {
		return underhood.ErrorMessage(err)
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(ue.Data)) {
		if fe, ok := ue.Data[k].(underhood.FieldError); ok {
			parts = append(parts, k+": "+fe.Message)
		}
	}
	return strings.Join(parts, " ")
}

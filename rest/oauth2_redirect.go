package rest

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net/http"

	"github.com/underhood/underhood/realtime"
)

// The redirect of PocketBase's OAuth2 popup flow (the SDK's
// authWithOAuth2({provider}) without a code):
//
//  1. The SDK opens a realtime stream, subscribes its client to "@oauth2"
//     and sends the user to the provider with state = its client id and
//     redirect_uri = <base>/api/oauth2-redirect.
//  2. The provider sends the browser here with code and state, or error
//     and state (a GET, or a form POST with response_mode=form_post).
//  3. The outcome {state, code, error} goes on "@oauth2" to the one
//     realtime client whose id is the state, and only if it is connected
//     and subscribed; the subscription ends with it (one message each).
//     The browser gets a small page that closes itself on success.
//  4. The SDK posts the code to auth-with-oauth2 with its code verifier.
//
// The page shows nothing of the request but the provider's error code,
// HTML-escaped; a Content-Security-Policy allows its one inline script
// and style only, and nothing is cached (the URL holds the code).

// Limits of the redirect's parameters; real ones are far smaller (a client
// id is 40 characters, codes rarely pass a few hundred).
const (
	redirectMaxBody  = 64 << 10
	redirectMaxState = 255
	redirectMaxCode  = 8 << 10
	redirectMaxError = 255
)

// oauth2Redirect is what the realtime client receives; its JSON is
// PocketBase's message.
type oauth2Redirect struct {
	State string `json:"state"`
	Code  string `json:"code"`
	Error string `json:"error,omitempty"`
}

// The page's inline script and style, allowed by their hashes.
const (
	redirectScript = `window.close()`
	redirectStyle  = `body{font-family:system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem;line-height:1.5;color:#222}code{background:#eee;padding:0 .25em}`
)

var redirectPage = template.Must(template.New("oauth2-redirect").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.Title}}</title>
<style>` + redirectStyle + `</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{- if .Error}}
<p>The provider answered: <code>{{.Error}}</code></p>
{{- end}}
{{- if .Close}}
<script>` + redirectScript + `</script>
{{- end}}
</body>
</html>
`))

// redirectCSP allows the page its own script and style and nothing else:
// no other script, no requests, no forms, no framing.
var redirectCSP = "default-src 'none'; script-src " + cspHash(redirectScript) +
	"; style-src " + cspHash(redirectStyle) + "; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func cspHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// redirectView is what the page says.
type redirectView struct {
	Title   string
	Message string
	Error   string // the provider's error code, shown escaped
	Close   bool   // the window closes itself
}

// handleOAuth2Redirect delivers the provider's answer to the realtime
// client named by the state and answers the browser with a page: 200 when
// the answer was delivered (the page says whether the sign-in went on),
// 400 when it was not (no such client, or a malformed request).
func (a *api) handleOAuth2Redirect(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Security-Policy", redirectCSP)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	if r.Method == http.MethodHead {
		// A HEAD (a link checker, a prefetch) must not use up the
		// subscription the browser's request is for.
		h.Set("Allow", "GET, POST")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}

	in, ok := readOAuth2Redirect(w, r)
	if !ok {
		writeRedirectPage(w, http.StatusBadRequest, redirectView{
			Title:   "Sign-in failed",
			Message: "The sign-in answer could not be read. Close this window and try again from the app.",
		})
		return
	}
	delivered := false
	if in.State != "" && a.realtime != nil {
		data, err := json.Marshal(in)
		if err == nil {
			err = a.realtime.SendOnce(in.State, realtime.TopicOAuth2, data)
		}
		delivered = err == nil
		if err != nil {
			a.log.DebugContext(r.Context(), "oauth2 redirect not delivered", "err", err)
		}
	}
	switch {
	case !delivered:
		writeRedirectPage(w, http.StatusBadRequest, redirectView{
			Title:   "Sign-in expired",
			Message: "This sign-in is unknown or no longer waiting: the app may have been closed or reloaded. Close this window and try again from the app.",
			Error:   in.Error,
		})
	case in.Error != "" || in.Code == "":
		writeRedirectPage(w, http.StatusOK, redirectView{
			Title:   "Sign-in failed",
			Message: "The sign-in was not completed. Close this window and go back to the app to try again.",
			Error:   in.Error,
		})
	default:
		writeRedirectPage(w, http.StatusOK, redirectView{
			Title:   "Signed in",
			Message: "You can close this window and go back to the app.",
			Close:   true,
		})
	}
}

// readOAuth2Redirect reads state, code and error from the query of a GET
// or the form body of a POST; false when they cannot be read or are over
// their limits.
func readOAuth2Redirect(w http.ResponseWriter, r *http.Request) (oauth2Redirect, bool) {
	q := r.URL.Query()
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, redirectMaxBody)
		if err := r.ParseForm(); err != nil {
			return oauth2Redirect{}, false
		}
		q = r.PostForm
	}
	in := oauth2Redirect{State: q.Get("state"), Code: q.Get("code"), Error: q.Get("error")}
	if len(in.State) > redirectMaxState || len(in.Code) > redirectMaxCode || len(in.Error) > redirectMaxError {
		return oauth2Redirect{}, false
	}
	return in, true
}

func writeRedirectPage(w http.ResponseWriter, status int, v redirectView) {
	var b bytes.Buffer
	if err := redirectPage.Execute(&b, v); err != nil {
		http.Error(w, "Internal error.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

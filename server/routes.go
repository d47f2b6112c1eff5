package server

import (
	"net/http"
	"net/http/pprof"

	"github.com/underhood/underhood"
)

// routes mounts every adapter. Each adapter owns the routes under its prefix
// (rest lists its own in rest/routes.go); the static site, when there is
// one, gets every other path.
func routes(mux *http.ServeMux, d Deps) {
	mux.Handle("/api/", d.API)
	if d.Dashboard != nil {
		// "/_" alone is redirected to "/_/" by the mux.
		mux.Handle("/_/", d.Dashboard)
	}
	mux.Handle("/debug/pprof/", superusersOnly(http.HandlerFunc(pprof.Index)))
	mux.Handle("/debug/pprof/cmdline", superusersOnly(http.HandlerFunc(pprof.Cmdline)))
	mux.Handle("/debug/pprof/profile", superusersOnly(http.HandlerFunc(pprof.Profile)))
	mux.Handle("/debug/pprof/symbol", superusersOnly(http.HandlerFunc(pprof.Symbol)))
	mux.Handle("/debug/pprof/trace", superusersOnly(http.HandlerFunc(pprof.Trace)))
	if d.Static != nil {
		mux.Handle("/", d.Static)
	} else {
		mux.HandleFunc("/", handleNotFound)
	}
}

// superusersOnly guards the profiler: profiles reveal code paths and
// timings, so only a superuser's token opens them.
func superusersOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !underhood.Identity(r.Context()).IsSuperuser() {
			writeError(w, http.StatusForbidden, "Only superusers can perform this action.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// handleNotFound answers paths no adapter owns with PocketBase's 404.
func handleNotFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "The requested resource wasn't found.")
}

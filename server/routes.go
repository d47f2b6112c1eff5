package server

import "net/http"

// routes mounts every adapter. Each adapter owns the routes under its prefix
// (rest lists its own in rest/routes.go).
func routes(mux *http.ServeMux, d Deps) {
	mux.Handle("/api/", d.API)
	mux.HandleFunc("/", handleNotFound)
}

// handleNotFound answers paths no adapter owns with PocketBase's 404.
func handleNotFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "The requested resource wasn't found.")
}

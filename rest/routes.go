package rest

// routes lists every route of the REST API.
func (a *api) routes() {
	a.handle("GET /api/health", a.handleHealth)
	a.handle("HEAD /api/health", a.handleHealth)

	a.handle("GET /api/collections/{c}/records", a.handleList)
	a.handle("GET /api/collections/{c}/records/{id}", a.handleView)
	a.handle("POST /api/collections/{c}/records", a.handleCreate)
	a.handle("PATCH /api/collections/{c}/records/{id}", a.handleUpdate)
	a.handle("DELETE /api/collections/{c}/records/{id}", a.handleDelete)
	a.handle("POST /api/batch", a.handleBatch)

	a.handle("POST /api/collections/{c}/auth-with-password", a.handleAuthWithPassword)
	a.handle("POST /api/collections/{c}/auth-refresh", a.handleAuthRefresh)
	a.handle("GET /api/collections/{c}/auth-methods", a.handleAuthMethods)
	a.authEmailRoutes()
	a.authMFARoutes()
	a.authOAuth2Routes()
	a.authAdminRoutes()

	a.handle("GET /api/collections", a.handleCollectionList)
	a.handle("POST /api/collections", a.handleCollectionCreate)
	a.handle("GET /api/collections/meta/scaffolds", a.handleScaffolds)
	a.handle("PUT /api/collections/import", a.handleCollectionImport)
	a.handle("GET /api/collections/{c}", a.handleCollectionView)
	a.handle("PATCH /api/collections/{c}", a.handleCollectionUpdate)
	a.handle("DELETE /api/collections/{c}", a.handleCollectionDelete)
	a.handle("DELETE /api/collections/{c}/truncate", a.handleCollectionTruncate)

	a.handle("GET /api/settings", a.handleSettingsView)
	a.handle("PATCH /api/settings", a.handleSettingsUpdate)

	a.handle("/api/", a.handleNotFound)
}

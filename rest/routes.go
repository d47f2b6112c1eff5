package rest

// routes registers every route under /api/, method and path with its
// handler; the handlers live in the file named beside their group. A group
// whose capability NewHandler was not given (files, realtime, webhooks)
// is left out, and its paths answer 404 like any unknown path.
func (a *api) routes() {
	// Health (rest.go).
	a.handle("GET /api/health", a.handleHealth)
	a.handle("HEAD /api/health", a.handleHealth)

	// Records (records.go) and batches of record writes (batch.go).
	a.handle("GET /api/collections/{c}/records", a.handleList)
	a.handle("GET /api/collections/{c}/records/{id}", a.handleView)
	a.handle("POST /api/collections/{c}/records", a.handleCreate)
	a.handle("PATCH /api/collections/{c}/records/{id}", a.handleUpdate)
	a.handle("DELETE /api/collections/{c}/records/{id}", a.handleDelete)
	a.handle("POST /api/batch", a.handleBatch)

	// Signing in with a password, refreshing a token, and the sign-in
	// methods a collection offers (auth.go).
	a.handle("POST /api/collections/{c}/auth-with-password", a.handleAuthWithPassword)
	a.handle("POST /api/collections/{c}/auth-refresh", a.handleAuthRefresh)
	a.handle("GET /api/collections/{c}/auth-methods", a.handleAuthMethods)

	// The email flows: verification, password reset, email change and
	// one-time passwords (auth_email.go).
	a.handle("POST /api/collections/{c}/request-verification", a.handleRequestVerification)
	a.handle("POST /api/collections/{c}/confirm-verification", a.handleConfirmVerification)
	a.handle("POST /api/collections/{c}/request-password-reset", a.handleRequestPasswordReset)
	a.handle("POST /api/collections/{c}/confirm-password-reset", a.handleConfirmPasswordReset)
	a.handle("POST /api/collections/{c}/request-email-change", a.handleRequestEmailChange)
	a.handle("POST /api/collections/{c}/confirm-email-change", a.handleConfirmEmailChange)
	a.handle("POST /api/collections/{c}/request-otp", a.handleRequestOTP)
	a.handle("POST /api/collections/{c}/auth-with-otp", a.handleAuthWithOTP)

	// Authenticator apps (TOTP) as a second factor (auth_mfa.go): our
	// addition, PocketBase has none; README.md documents them.
	a.handle("POST /api/collections/{c}/totp/enroll", a.handleTOTPEnroll)
	a.handle("POST /api/collections/{c}/totp/confirm", a.handleTOTPConfirm)
	a.handle("POST /api/collections/{c}/totp/disable", a.handleTOTPDisable)
	a.handle("POST /api/collections/{c}/auth-with-totp", a.handleAuthWithTOTP)

	// OAuth2 sign-in (auth_oauth2.go). The providers a client starts from
	// are listed by auth-methods; the popup flow's redirect answers HTML,
	// not JSON, so it is a plain handler (oauth2_redirect.go).
	a.handle("POST /api/collections/{c}/auth-with-oauth2", a.handleAuthWithOAuth2)
	a.mux.HandleFunc("GET /api/oauth2-redirect", a.handleOAuth2Redirect)
	a.mux.HandleFunc("POST /api/oauth2-redirect", a.handleOAuth2Redirect)

	// Managing tokens and accounts rather than proving an identity
	// (auth_admin.go): revoking a record's tokens (our addition),
	// impersonation, and the one-time install link that creates the first
	// superuser (a form, answered in HTML).
	a.handle("POST /api/collections/{c}/auth-revoke", a.handleAuthRevoke)
	a.handle("POST /api/collections/{c}/impersonate/{id}", a.handleImpersonate)
	a.handle("GET /api/install", a.handleInstallForm)
	a.handle("POST /api/install", a.handleInstall)

	// Collections and settings, for superusers (collections.go).
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

	// Stored files and the tokens of protected ones (files.go).
	if a.files != nil {
		a.handle("POST /api/files/token", a.handleFileToken)
		a.handle("GET /api/files/{c}/{id}/{name}", a.handleFileDownload)
		a.handle("HEAD /api/files/{c}/{id}/{name}", a.handleFileDownload)
	}

	// Realtime over Server-Sent Events and WebSocket, served by the hub of
	// realtime/stream; POST sets an SSE client's subscriptions
	// (realtime.go).
	if a.realtime != nil {
		hub := a.newRealtimeHub()
		a.mux.HandleFunc("GET /api/realtime", hub.ServeSSE)
		a.handle("POST /api/realtime", a.handleRealtimeSubscribe)
		a.handle("GET /api/realtime/ws", hub.ServeWebSocket)
	}

	// Webhooks, our addition, for superusers: events.Webhooks decides, and
	// superuser asks it before a handler reads the request (webhooks.go).
	if a.webhooks != nil {
		a.handle("GET /api/webhooks", a.superuser(a.handleWebhookList))
		a.handle("POST /api/webhooks", a.superuser(a.handleWebhookCreate))
		a.handle("GET /api/webhooks/{id}", a.superuser(a.handleWebhookView))
		a.handle("PATCH /api/webhooks/{id}", a.superuser(a.handleWebhookUpdate))
		a.handle("DELETE /api/webhooks/{id}", a.superuser(a.handleWebhookDelete))
		a.handle("POST /api/webhooks/{id}/rotate-secret", a.superuser(a.handleWebhookRotate))
		a.handle("POST /api/webhooks/{id}/pause", a.superuser(a.handleWebhookPause(true)))
		a.handle("POST /api/webhooks/{id}/resume", a.superuser(a.handleWebhookPause(false)))
		a.handle("GET /api/webhooks/{id}/deliveries", a.superuser(a.handleWebhookDeliveries))
		a.handle("GET /api/webhooks/{id}/deliveries/{delivery}", a.superuser(a.handleWebhookDelivery))
		a.handle("GET /api/webhooks/{id}/attempts", a.superuser(a.handleWebhookAttempts))
		a.handle("POST /api/webhooks/{id}/replay", a.superuser(a.handleWebhookReplay))
	}

	// Any other path under /api/ is PocketBase's JSON 404.
	a.handle("/api/", a.handleNotFound)
}

package rest

// authMFARoutes registers the routes of multi-factor authentication (TOTP enrolment), impersonation and token revocation.
func (a *api) authMFARoutes() {}

package rest

// authEmailRoutes registers the routes of the email-based auth flows: verification, password reset, email change and one-time passwords.
func (a *api) authEmailRoutes() {}

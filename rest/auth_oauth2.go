package rest

// authOAuth2Routes registers the routes of OAuth2 sign-in.
func (a *api) authOAuth2Routes() {}

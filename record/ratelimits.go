package record

// defaultRateLimits are the rate limits of a fresh install: on, so that
// credential endpoints resist brute force from the first start, and loose
// enough that a person, an SDK's token refresh or a test suite logging in
// from one address never meets them.
//
// Rules labelled "identity:<scope>" limit attempts per identity (an
// account's email or username, per collection) rather than requests per
// client IP. A password login counts only its failures, per account and
// client address ("auth-with-password"), per address across accounts
// ("ip-failures") and per account across addresses ("account-failures",
// past which each address gets only its first attempt of the minute): an
// attacker's failures never refuse the owner's right password from
// another address, and guessing one account stays slow from any number
// of addresses. The other rules
// limit every request per client IP; their labels follow PocketBase:
// "<collection>:<tag>" or "*:<tag>" for an auth endpoint (tags: the action,
// as in "authWithPassword", and its family: "auth" for logins, "request"
// for endpoints that send mail, "confirm" for those that redeem an emailed
// token, "totp" for authenticator-app endpoints, "refresh"), "METHOD
// /path" or "/path" for one path, and "/prefix/" for every path under it.
// No rule covers the rest of the API by default: reads and writes are
// governed by rules, not by rate.
func defaultRateLimits() RateLimitSettings {
	return RateLimitSettings{Enabled: true, Rules: []RateLimitRule{
		// Logins cost a bcrypt hash each: this caps the CPU one address
		// can take. Guessing is stopped by the failure limits below.
		{Label: "*:auth", Duration: 10, MaxRequests: 600},
		{Label: "*:request", Duration: 60, MaxRequests: 20},
		{Label: "*:confirm", Duration: 60, MaxRequests: 20},
		{Label: "*:totp", Duration: 60, MaxRequests: 20},
		{Label: "*:refresh", Duration: 10, MaxRequests: 60},
		{Label: "/api/install", Duration: 60, MaxRequests: 10},
		// Failed password logins of one account from one client address.
		{Label: "identity:auth-with-password", Duration: 60, MaxRequests: 5},
		{Label: "identity:auth-with-password", Duration: 3600, MaxRequests: 20},
		// Failed password logins of one client address, over all accounts.
		{Label: "identity:ip-failures", Duration: 60, MaxRequests: 20},
		{Label: "identity:ip-failures", Duration: 3600, MaxRequests: 100},
		// Failed password logins of one account, over all addresses.
		{Label: "identity:account-failures", Duration: 60, MaxRequests: 20},
		{Label: "identity:account-failures", Duration: 3600, MaxRequests: 100},
		// Authenticator codes have six digits: an hourly cap keeps guessing
		// one account's codes hopeless.
		{Label: "identity:totp", Duration: 60, MaxRequests: 5},
		{Label: "identity:totp", Duration: 3600, MaxRequests: 20},
		{Label: "identity:auth-with-otp", Duration: 60, MaxRequests: 5},
		// Emails of one kind to one mailbox, however many addresses ask:
		// past it nothing is sent and the answer stays the same.
		{Label: "identity:mail-recipient", Duration: 600, MaxRequests: 2},
		{Label: "identity:*", Duration: 60, MaxRequests: 10},
	}}
}

// validAudience reports whether a rule's audience is one the rate limiter
// knows: everybody (""), guests or signed-in callers.
func validAudience(a string) bool {
	return a == "" || a == "@guest" || a == "@auth"
}

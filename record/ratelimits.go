package record

// defaultRateLimits are the rate limits of a fresh install: on, so that
// credential endpoints resist brute force from the first start.
//
// Rules labelled "identity:<scope>" limit attempts per identity (an
// account's email or username, per collection) rather than requests per
// client IP; a password login counts only its failures. The other rules
// limit requests per client IP; their labels follow PocketBase:
// "<collection>:<action>" or "*:<action>" for an auth action, "METHOD
// /path" or "/path" for a path, and "/prefix/" for every path under it.
func defaultRateLimits() RateLimitSettings {
	return RateLimitSettings{Enabled: true, Rules: []RateLimitRule{
		{Label: "identity:auth-with-password", Duration: 60, MaxRequests: 5},
		{Label: "identity:*", Duration: 60, MaxRequests: 10},
	}}
}

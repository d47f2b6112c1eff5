package server

import (
	"cmp"
	"log/slog"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/auth"
	"github.com/underhood/underhood/ratelimit"
	"github.com/underhood/underhood/record"
)

// RateLimitSource gives the rate limiter its rules, read on every request so
// that a settings change applies at once, and resolves the collection of a
// path to its name for "<collection>:<action>" labels. *record.Service
// implements it.
type RateLimitSource interface {
	Settings() record.Settings
	Collection(nameOrID string) (*underhood.Collection, error)
}

// limitRate applies the settings' per-IP rate-limit rules. At most one rule
// applies to a request, the most specific that matches it, searched in this
// order (as PocketBase does):
//
//  1. "<collection>:<action>" then "*:<action>", for each tag of an auth
//     endpoint (see actionTags);
//  2. "METHOD /exact/path" then "/exact/path";
//  3. the longest prefix label ending in "/" ("/api/", "POST /api/").
//
// Among rules of one label, one whose audience names the caller ("@guest"
// or "@auth") wins over one for everybody (""). Each rule counts the
// requests of each client IP in fixed windows; over its limit a request
// gets 429 with Retry-After. Rules labelled "identity:…" are per-identity
// limits, applied by the auth service, and are skipped here.
func limitRate(src RateLimitSource, store ratelimit.Store, log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if src == nil {
			return next
		}
		if store == nil {
			store = ratelimit.NewMemory(0, nil)
		}
		var cache atomic.Pointer[rateRules]
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			st := src.Settings()
			if !st.RateLimits.Enabled {
				next.ServeHTTP(w, r)
				return
			}
			rules := cache.Load()
			if rules == nil || !rules.compiledFrom(st) {
				rules = compileRateRules(st)
				cache.Store(rules)
			}
			// The auth service counts failed logins per client address.
			r = r.WithContext(auth.WithClientIP(r.Context(), clientIP(r, rules.proxy)))
			rule := rules.find(r, src, underhood.Identity(r.Context()) != nil)
			if rule == nil {
				next.ServeHTTP(w, r)
				return
			}
			now := time.Now()
			key := rule.label + "\x00" + rule.audience + "\x00" + clientIP(r, rules.proxy)
			wait, err := ratelimit.Allow(r.Context(), store, key, rule.limit, now)
			if err != nil {
				// The per-IP limits are a first line only (logins also count
				// per identity, and those fail closed): keep serving.
				log.ErrorContext(r.Context(), "rate limit store", "request_id", requestIDFrom(r.Context()), "err", err)
			}
			if wait > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
				writeError(w, http.StatusTooManyRequests, "Too many requests.")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// rateRule is one compiled rule.
type rateRule struct {
	label    string
	audience string
	method   string // "" for any
	path     string // the path, or the prefix when the label ends in "/"
	limit    ratelimit.Limit
}

// rateRules are the rules of one version of the settings.
type rateRules struct {
	from     []record.RateLimitRule // what they were compiled from (shared, never written)
	proxy    record.TrustedProxySettings
	tags     map[string][]*rateRule // "users:auth", "*:auth"
	exact    map[methodPath][]*rateRule
	prefixes []prefixRules // longest first; with a method before without
}

// prefixRules are the rules of one prefix label, one per audience.
type prefixRules struct {
	methodPath
	rules []*rateRule
}

type methodPath struct{ method, path string }

func compileRateRules(st record.Settings) *rateRules {
	rs := &rateRules{
		from:  st.RateLimits.Rules,
		proxy: st.TrustedProxy,
		tags:  map[string][]*rateRule{},
		exact: map[methodPath][]*rateRule{},
	}
	for _, r := range st.RateLimits.Rules {
		label := strings.TrimSpace(r.Label)
		if r.MaxRequests <= 0 || r.Duration <= 0 || strings.HasPrefix(label, "identity:") {
			continue
		}
		rule := &rateRule{label: label, audience: r.Audience,
			limit: ratelimit.Limit{Max: r.MaxRequests, Window: time.Duration(r.Duration) * time.Second}}
		rule.path = label
		if method, path, ok := strings.Cut(label, " "); ok {
			rule.method, rule.path = strings.ToUpper(method), strings.TrimSpace(path)
		}
		switch {
		case !strings.HasPrefix(rule.path, "/"):
			rs.tags[label] = append(rs.tags[label], rule)
		case strings.HasSuffix(rule.path, "/"):
			k := methodPath{rule.method, rule.path}
			i := slices.IndexFunc(rs.prefixes, func(p prefixRules) bool { return p.methodPath == k })
			if i < 0 {
				i = len(rs.prefixes)
				rs.prefixes = append(rs.prefixes, prefixRules{methodPath: k})
			}
			rs.prefixes[i].rules = append(rs.prefixes[i].rules, rule)
		default:
			k := methodPath{rule.method, rule.path}
			rs.exact[k] = append(rs.exact[k], rule)
		}
	}
	slices.SortStableFunc(rs.prefixes, func(a, b prefixRules) int {
		if c := cmp.Compare(len(b.path), len(a.path)); c != 0 {
			return c
		}
		return cmp.Compare(len(b.method), len(a.method))
	})
	return rs
}

// compiledFrom reports whether rs are the rules of st. Settings are
// replaced, never changed in place (record.Service.UpdateSettings gives
// each version its own slices), so the same slice means the same rules:
// the check costs no comparison of rules on every request.
func (rs *rateRules) compiledFrom(st record.Settings) bool {
	return sameSlice(rs.from, st.RateLimits.Rules) && sameSlice(rs.proxy.Headers, st.TrustedProxy.Headers) &&
		rs.proxy.UseLeftmostIP == st.TrustedProxy.UseLeftmostIP
}

func sameSlice[T any](a, b []T) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// find returns the rule that applies to r, or nil.
func (rs *rateRules) find(r *http.Request, src RateLimitSource, signedIn bool) *rateRule {
	if len(rs.tags) > 0 {
		if coll, tags := actionTags(r); len(tags) > 0 {
			if coll != "" {
				if c, err := src.Collection(coll); err == nil {
					coll = c.Name
				}
				for _, t := range tags {
					if rule := pickAudience(rs.tags[coll+":"+t], signedIn); rule != nil {
						return rule
					}
				}
			}
			for _, t := range tags {
				if rule := pickAudience(rs.tags["*:"+t], signedIn); rule != nil {
					return rule
				}
			}
		}
	}
	if len(rs.exact) > 0 {
		if rule := pickAudience(rs.exact[methodPath{r.Method, r.URL.Path}], signedIn); rule != nil {
			return rule
		}
		if rule := pickAudience(rs.exact[methodPath{"", r.URL.Path}], signedIn); rule != nil {
			return rule
		}
	}
	for _, p := range rs.prefixes {
		if (p.method == "" || p.method == r.Method) && strings.HasPrefix(r.URL.Path, p.path) {
			if rule := pickAudience(p.rules, signedIn); rule != nil {
				return rule
			}
		}
	}
	return nil
}

func pickAudience(rules []*rateRule, signedIn bool) *rateRule {
	var anyone *rateRule
	for _, rule := range rules {
		switch {
		case rule.audience == "":
			anyone = rule
		case audienceMatches(rule.audience, signedIn):
			return rule
		}
	}
	return anyone
}

func audienceMatches(audience string, signedIn bool) bool {
	switch audience {
	case "":
		return true
	case "@auth":
		return signedIn
	case "@guest":
		return !signedIn
	}
	return false
}

// actionTags returns the collection and the tags of an auth endpoint
// (POST /api/collections/{c}/{action}), or no tags for any other request.
// Each endpoint is tagged with its action in camel case
// ("authWithPassword", "requestOtp") as in PocketBase, followed by its
// family: "auth" for a login, "request" for one that sends mail, "confirm"
// for one that redeems an emailed token, "totp" for authenticator-app
// endpoints. The tags are derived from the path so that an endpoint added
// later falls into its family without a change here. The OAuth2 popup
// flow's redirect (GET or POST /api/oauth2-redirect), part of a login but
// of no collection, is tagged "oauth2Redirect" and "auth": only "*:" rules
// apply to it.
func actionTags(r *http.Request) (coll string, tags []string) {
	if r.URL.Path == "/api/oauth2-redirect" {
		return "", []string{"oauth2Redirect", "auth"}
	}
	if r.Method != http.MethodPost {
		return "", nil
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/api/collections/")
	if !ok {
		return "", nil
	}
	coll, action, ok := strings.Cut(rest, "/")
	if !ok || coll == "" {
		return "", nil
	}
	action, _, _ = strings.Cut(action, "/") // impersonate/{id}
	var family string
	switch {
	case strings.Contains(action, "totp"):
		family = "totp"
		if strings.HasPrefix(action, "auth-with-") {
			family = "auth"
		}
	case strings.HasPrefix(action, "auth-with-"):
		family = "auth"
	case strings.HasPrefix(action, "request-"):
		family = "request"
	case strings.HasPrefix(action, "confirm-"):
		family = "confirm"
	case action == "auth-refresh":
		return coll, []string{"refresh"}
	case action == "impersonate", action == "auth-revoke":
	default:
		return "", nil
	}
	tags = []string{camel(action)}
	if family != "" {
		tags = append(tags, family)
	}
	return coll, tags
}

// camel turns "auth-with-password" into "authWithPassword", spelling
// acronyms as PocketBase's labels do ("requestOTP", "authWithOAuth2").
func camel(s string) string {
	var b strings.Builder
	for i, word := range strings.Split(s, "-") {
		if acronym, ok := acronyms[word]; ok && i > 0 {
			b.WriteString(acronym)
			continue
		}
		if i > 0 && word != "" {
			word = strings.ToUpper(word[:1]) + word[1:]
		}
		b.WriteString(word)
	}
	return b.String()
}

var acronyms = map[string]string{"otp": "OTP", "totp": "TOTP", "oauth2": "OAuth2", "mfa": "MFA"}

// clientIP returns the client's address for rate limiting: the peer of the
// connection, or, only when the settings name trusted proxy headers, the
// address the proxy reports in the first of them that is set. An IPv6
// address counts as its /64, which one client usually holds whole.
func clientIP(r *http.Request, proxy record.TrustedProxySettings) string {
	addr, ok := clientAddr(r, proxy)
	if !ok {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			return r.RemoteAddr
		}
		return host
	}
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

package record_test

import (
	"context"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/underhood/underhood"
)

func TestDefaultRateLimits(t *testing.T) {
	s := newService(t)
	rl := s.Settings().RateLimits
	if !rl.Enabled {
		t.Fatalf("rate limits of a fresh install: enabled = false, want true")
	}
	labels := map[string]bool{}
	for _, r := range rl.Rules {
		labels[r.Label] = true
	}
	for _, want := range []string{"*:auth", "*:request", "*:confirm", "*:refresh", "*:totp", "/api/install", "identity:auth-with-password", "identity:*"} {
		if !labels[want] {
			t.Errorf("default rate limits lack a rule %q", want)
		}
	}
}

// A settings update that fails validation changes nothing, not even the
// rules it decoded over (they must not share memory with the live ones).
func TestUpdateRateLimitsIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	su := s.SystemRequest().Auth
	before := s.Settings()
	before.RateLimits.Rules = slices.Clone(before.RateLimits.Rules)
	before.TrustedProxy.Headers = slices.Clone(before.TrustedProxy.Headers)
	_, err := s.UpdateSettings(ctx, su, []byte(`{"rateLimits":{"rules":[{"label":"*:auth","duration":0,"maxRequests":1}]},"trustedProxy":{"headers":["X-Real-IP"]}}`))
	if underhood.ErrorCode(err) != underhood.EInvalid {
		t.Fatalf("UpdateSettings(rule with duration 0) = %v, want %s", err, underhood.EInvalid)
	}
	if diff := cmp.Diff(before, s.Settings()); diff != "" {
		t.Errorf("settings changed by a refused update (-before +after):\n%s", diff)
	}
	if _, err := s.UpdateSettings(ctx, su, []byte(`{"rateLimits":{"enabled":true,"rules":[{"label":"/api/","audience":"@guest","duration":10,"maxRequests":100}]}}`)); err != nil {
		t.Fatalf("UpdateSettings(one rule) = %v", err)
	}
	if got := s.Settings().RateLimits.Rules; len(got) != 1 || got[0].Audience != "@guest" {
		t.Errorf("rules after update = %+v, want the one sent", got)
	}
	_, err = s.UpdateSettings(ctx, su, []byte(`{"rateLimits":{"rules":[{"label":"/api/","audience":"@everyone","duration":10,"maxRequests":100}]}}`))
	if underhood.ErrorCode(err) != underhood.EInvalid {
		t.Errorf("UpdateSettings(unknown audience) = %v, want %s", err, underhood.EInvalid)
	}
}

package main

import (
	"strings"
	"testing"

	"github.com/envvault/envvault/vault"
)

// TestOAuth2RefreshMarginFlag: --oauth2-refresh-margin defaults to 10m,
// takes a duration within 1s..12h, and refuses one outside, or not a
// duration, naming the rule.
func TestOAuth2RefreshMarginFlag(t *testing.T) {
	t.Parallel()
	m, err := parseOnly(t, "runner", "--worker-id", "w")
	if err != nil || m.Config.Tasks.OAuth2RefreshMargin != vault.DefaultOAuth2RefreshMargin {
		t.Fatalf("default: %v, %v", m.Config.Tasks.OAuth2RefreshMargin, err)
	}
	m, err = parseOnly(t, "dev", "--oauth2-refresh-margin", "90s")
	if err != nil || m.Config.Tasks.OAuth2RefreshMargin.String() != "1m30s" {
		t.Errorf("--oauth2-refresh-margin 90s: %v, %v", m.Config.Tasks.OAuth2RefreshMargin, err)
	}
	for _, bad := range []string{"0s", "500ms", "13h", "soon"} {
		_, err := parseOnly(t, "serve", "--oauth2-refresh-margin", bad)
		if err == nil || !strings.Contains(err.Error(), "oauth2-refresh-margin") || !strings.Contains(err.Error(), "from 1s to 12h0m0s") {
			t.Errorf("--oauth2-refresh-margin %s: %v, want a refusal naming the flag and the rule", bad, err)
		}
	}
}

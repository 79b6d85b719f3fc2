package main

import (
	"net/netip"
	"slices"
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

// TestOAuth2AllowNetworkFlag: by default no network beyond public
// addresses is allowed; --oauth2-allow-network takes CIDR networks,
// repeated or comma-separated, and refuses anything else naming the flag.
func TestOAuth2AllowNetworkFlag(t *testing.T) {
	t.Parallel()
	m, err := parseOnly(t, "serve")
	if err != nil || m.Config.Tasks.OAuth2AllowNetworks != nil {
		t.Fatalf("default: %v, %v", m.Config.Tasks.OAuth2AllowNetworks, err)
	}
	m, err = parseOnly(t, "runner", "--worker-id", "w", "--oauth2-allow-network", "10.20.0.0/16,fd00::/8", "--oauth2-allow-network", "192.168.7.9/24")
	want := []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16"), netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("192.168.7.0/24")}
	if err != nil || !slices.Equal(m.Config.Tasks.OAuth2AllowNetworks, want) {
		t.Errorf("two flags: %v, %v; want %v", m.Config.Tasks.OAuth2AllowNetworks, err, want)
	}
	for _, bad := range []string{"10.0.0.1", "localhost", "10.0.0.0/33", ""} {
		_, err := parseOnly(t, "dev", "--oauth2-allow-network", bad)
		if err == nil || !strings.Contains(err.Error(), "oauth2-allow-network") || !strings.Contains(err.Error(), "CIDR") {
			t.Errorf("--oauth2-allow-network %q: %v, want a refusal naming the flag and the form", bad, err)
		}
	}
}

package main

import (
	"strings"
	"testing"
)

// TestPublicURLFlag: --public-url is unset by default (each request's
// scheme and host), takes an absolute http(s) URL (a trailing slash
// dropped), and refuses anything else naming the flag and the rule.
func TestPublicURLFlag(t *testing.T) {
	t.Parallel()
	m, err := parseOnly(t, "dev")
	if err != nil || m.Config.PublicURL != "" {
		t.Fatalf("default: %q, %v", m.Config.PublicURL, err)
	}
	m, err = parseOnly(t, "serve", "--public-url", "https://vault.example.com/envvault/")
	if err != nil || m.Config.PublicURL != "https://vault.example.com/envvault" {
		t.Errorf("--public-url: %q, %v", m.Config.PublicURL, err)
	}
	for _, bad := range []string{"vault.example.com", "ftp://vault.example.com", "https://", "https://u:p@vault.example.com",
		"https://vault.example.com/?x=1", "https://vault.example.com/#top"} {
		_, err := parseOnly(t, "serve", "--public-url", bad)
		if err == nil || !strings.Contains(err.Error(), "public-url") || !strings.Contains(err.Error(), "absolute http or https URL") {
			t.Errorf("--public-url %s: %v, want a refusal naming the flag and the rule", bad, err)
		}
	}
}

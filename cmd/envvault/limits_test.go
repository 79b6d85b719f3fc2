package main

import (
	"net/http"
	"testing"

	"github.com/envvault/envvault/vault"
)

// TestLimitFlags: --write-rate and --write-burst reach the API (a write
// past the burst is 429), --write-rate 0 turns the limit off, and a value
// out of range is refused naming the flag and the rule.
func TestLimitFlags(t *testing.T) {
	t.Parallel()
	ms := migratedSQLite(t)
	token := createUser(t, ms.env, "alice", ms.args...)
	srv := mustStart(t, ms.env, append([]string{"serve", "--addr", "127.0.0.1:0", "--no-worker", "--write-rate", "0.01", "--write-burst", "2"}, ms.args...)...)
	c := &client{t: t, base: srv.url(), token: token}
	c.expect(http.StatusCreated, "POST", "/v1/secrets", map[string]any{"name": "ONE", "value": canary}, nil)
	c.expect(http.StatusCreated, "POST", "/v1/secrets", map[string]any{"name": "TWO", "value": canary}, nil)
	c.expect(http.StatusTooManyRequests, "POST", "/v1/secrets", map[string]any{"name": "THREE", "value": canary}, nil)
	c.expect(http.StatusOK, "GET", "/v1/secrets", nil, nil)

	ms2 := migratedSQLite(t)
	token2 := createUser(t, ms2.env, "bob", ms2.args...)
	off := mustStart(t, ms2.env, append([]string{"serve", "--addr", "127.0.0.1:0", "--no-worker", "--write-rate", "0", "--write-burst", "1"}, ms2.args...)...)
	c2 := &client{t: t, base: off.url(), token: token2}
	for _, name := range []string{"A", "B", "C"} {
		c2.expect(http.StatusCreated, "POST", "/v1/secrets", map[string]any{"name": name, "value": canary}, nil)
	}

	for _, bad := range [][]string{
		{"--write-rate", "-1", "0 (no limit) or more"},
		{"--write-rate", "fast", "0 (no limit) or more"},
		{"--write-burst", "0", "1 or more"},
		{"--session-idle", "30s", "from 1m0s to 12h0m0s"},
		{"--session-idle", "13h", "from 1m0s to 12h0m0s"},
	} {
		mustFail(t, ms.env, bad[2], append([]string{"serve", "--addr", "127.0.0.1:0", "--no-worker", bad[0], bad[1]}, ms.args...)...)
	}
}

// TestRefusalReasonsInMetrics: each refusal of the auth code is counted
// under the reason it names: an unknown token, a malformed one, a scope
// that does not allow the route, a limited address, a user's writes past
// the burst.
func TestRefusalReasonsInMetrics(t *testing.T) {
	t.Parallel()
	ms := migratedSQLite(t)
	token := createUser(t, ms.env, "alice", ms.args...)
	srv := mustStart(t, ms.env, append([]string{"serve", "--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--no-worker",
		"--write-rate", "0.01", "--write-burst", "2"}, ms.args...)...)
	c := &client{t: t, base: srv.url(), token: token}
	var read struct {
		Token string `json:"token"`
	}
	c.expect(http.StatusCreated, "POST", "/v1/tokens", map[string]any{"name": "reader", "scope": "read"}, &read)
	(&client{t: t, base: srv.url(), token: read.Token}).expect(http.StatusForbidden, "POST", "/v1/secrets", map[string]any{"name": "X", "value": canary}, nil)
	c.expect(http.StatusCreated, "POST", "/v1/secrets", map[string]any{"name": "ONE", "value": canary}, nil)
	c.expect(http.StatusTooManyRequests, "POST", "/v1/secrets", map[string]any{"name": "TWO", "value": canary}, nil)
	(&client{t: t, base: srv.url(), token: "garbage"}).expect(http.StatusUnauthorized, "GET", "/v1/secrets", nil, nil)
	for range vault.DefaultAuthFailureBurst - 1 {
		(&client{t: t, base: srv.url(), token: vault.NewID(vault.PrefixToken) + ".x"}).expect(http.StatusUnauthorized, "GET", "/v1/secrets", nil, nil)
	}
	(&client{t: t, base: srv.url(), token: vault.NewID(vault.PrefixToken) + ".x"}).expect(http.StatusTooManyRequests, "GET", "/v1/secrets", nil, nil)

	_, fams := scrape(t, "http://"+srv.m.MetricsAddr()+"/metrics")
	for labels, want := range map[[2]string]float64{
		{"envvault_auth_failures_total", "unknown"}:            float64(vault.DefaultAuthFailureBurst - 1),
		{"envvault_auth_failures_total", "malformed"}:          1,
		{"envvault_auth_failures_total", "scope"}:              1,
		{"envvault_rate_limited_total", "failed_auth_address"}: 1,
		{"envvault_rate_limited_total", "writes"}:              1,
	} {
		if v, _ := sample(fams, labels[0], map[string]string{"reason": labels[1]}); v != want {
			t.Errorf("%s{reason=%q} = %v, want %v", labels[0], labels[1], v, want)
		}
	}
}

package main

import (
	"net/http"
	"testing"
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

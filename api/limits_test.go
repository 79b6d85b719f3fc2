package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/envvault/envvault/vault"
)

// TestAuthLimitedEveryOperation: once the client address has failed its
// burst, every /v1 operation of the document answers a token this server
// has not confirmed with 429 too_many and Retry-After, before anything
// else; a token it confirmed before goes on.
func TestAuthLimitedEveryOperation(t *testing.T) {
	e := newTestEnv(t, envOptions{limits: true})
	_, good := e.newUser("alice")
	want(t, e.call("GET", "/v1/secrets", good, ""), http.StatusOK, "")
	for range vault.DefaultAuthFailureBurst {
		want(t, e.call("GET", "/v1/secrets", vault.NewID(vault.PrefixToken)+".x", ""), http.StatusUnauthorized, "")
	}
	ops := 0
	for path, item := range e.doc.Paths.Map() {
		if !strings.HasPrefix(path, "/v1/") || path == "/v1/openapi.json" {
			continue
		}
		for method := range item.Operations() {
			ops++
			p := strings.ReplaceAll(path, "{id}", "sec_"+strings.Repeat("x", 21))
			body := ""
			if method == "POST" || method == "PATCH" {
				body = "{}"
			}
			r := e.call(method, p, vault.NewID(vault.PrefixToken)+".x", body)
			want(t, r, http.StatusTooManyRequests, "")
			if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 {
				t.Errorf("%s %s: Retry-After %q", method, path, r.header.Get("Retry-After"))
			}
		}
	}
	if ops < 20 {
		t.Fatalf("walked %d operations", ops)
	}
	want(t, e.call("GET", "/v1/secrets", good, ""), http.StatusOK, "")
	want(t, e.call("GET", "/v1/secrets", "garbage", ""), http.StatusTooManyRequests, "")
}

// TestWriteLimit: past the user's write burst a write answers 429 with
// Retry-After and does nothing; the user's reads, and another user's
// writes, go on.
func TestWriteLimit(t *testing.T) {
	e := newTestEnv(t, envOptions{writeRate: 0.01, writeBurst: 3})
	_, alice := e.newUser("alice")
	_, bob := e.newUser("bob")
	for i := range 3 {
		e.mustCreate("/v1/secrets", alice, fmt.Sprintf(`{"name":"S%d","value":"value-%d"}`, i, i))
	}
	r := e.call("POST", "/v1/secrets", alice, `{"name":"ONE_TOO_MANY","value":"value-x"}`)
	want(t, r, http.StatusTooManyRequests, "")
	if _, _, msg := r.errorOf(t); !strings.Contains(msg, "too many writes") || !strings.Contains(msg, "bursts of 3") {
		t.Errorf("429 message %q", msg)
	}
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
	}
	want(t, e.call("DELETE", "/v1/secrets/sec_"+strings.Repeat("x", 21), alice, ""), http.StatusTooManyRequests, "")
	r = e.call("GET", "/v1/secrets", alice, "")
	want(t, r, http.StatusOK, "")
	if strings.Contains(string(r.body), "ONE_TOO_MANY") {
		t.Fatal("a refused write was done")
	}
	e.mustCreate("/v1/secrets", bob, `{"name":"BOBS","value":"value-b"}`)
}

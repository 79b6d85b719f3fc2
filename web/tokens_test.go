package web_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/envvault/envvault/vault"
)

var newTokenRE = regexp.MustCompile(`<code id="new-token">([^<]+)</code>`)

// TestTokensPage lists, creates and revokes tokens from the dashboard:
// the secret is on the page that answers the form and on no page after;
// bad input names the field and makes nothing; a form without the CSRF
// token changes nothing; the last full token asks for confirmation; a
// read token cannot sign in to the dashboard.
func TestTokensPage(t *testing.T) {
	s := newStack(t)
	c := s.client(t)
	c.signIn()
	ctx := context.Background()
	res := c.get("/settings/tokens")
	wantStatus(t, res, http.StatusOK)
	wantContains(t, res.Body, "API tokens", vault.InitialTokenName, "(this session)")
	csrf := c.csrf("/settings/tokens")

	// Without the CSRF token: refused, nothing made.
	wantStatus(t, c.post("/settings/tokens", url.Values{"name": {"forged"}, "scope": {"full"}}), http.StatusForbidden)
	// Bad input: the field, the rule, nothing made.
	res = c.post("/settings/tokens", url.Values{"csrf": {csrf}, "name": {""}, "scope": {"read"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, res.Body, "name: is required")
	res = c.post("/settings/tokens", url.Values{"csrf": {csrf}, "name": {"x"}, "scope": {"read"}, "expires": {"2001-01-01"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, res.Body, "expires_at: must be in the future")
	if l, _ := s.svc.Tokens(ctx, s.userID); len(l) != 1 {
		t.Fatalf("refused forms made tokens: %d", len(l))
	}

	// Created: the secret shown once.
	res = c.post("/settings/tokens", url.Values{"csrf": {csrf}, "name": {"ci"}, "scope": {"read"}, "expires": {"2099-12-31"}})
	wantStatus(t, res, http.StatusCreated)
	m := newTokenRE.FindStringSubmatch(res.Body)
	if m == nil {
		t.Fatalf("no new token on the page:\n%s", res.Body)
	}
	token := m[1]
	cred, err := s.svc.AuthenticateToken(ctx, token)
	if err != nil || cred.Scope != vault.TokenRead {
		t.Fatalf("the token shown: %+v, %v", cred, err)
	}
	secret := strings.SplitN(token, ".", 2)[1]
	res = c.get("/settings/tokens")
	wantContains(t, res.Body, "ci", "2100-01-01 00:00 UTC")
	wantAbsent(t, res.Body, secret)

	// A read token cannot open a dashboard session.
	other := s.client(t)
	res = other.post("/login", url.Values{"csrf": {other.csrf("/login")}, "token": {token}})
	wantStatus(t, res, http.StatusForbidden)
	wantContains(t, res.Body, "scope full")

	// Revoked from the page: refused at once.
	res = c.post("/settings/tokens/"+cred.TokenID+"/revoke", url.Values{"csrf": {csrf}})
	wantRedirect(t, res, "/settings/tokens?ok=token-revoked")
	if _, err := s.svc.AuthenticateToken(ctx, token); vault.ErrorCode(err) != vault.EUNAUTHORIZED {
		t.Fatalf("a revoked token: %v", err)
	}
	// The last full token, this session's own: confirmation first.
	own := strings.SplitN(s.token, ".", 2)[0]
	res = c.post("/settings/tokens/"+own+"/revoke", url.Values{"csrf": {csrf}})
	wantStatus(t, res, http.StatusConflict)
	wantContains(t, res.Body, "last full token", `name="confirm" value="last-full-token"`)
	wantStatus(t, c.get("/settings/tokens"), http.StatusOK)
	res = c.post("/settings/tokens/"+own+"/revoke", url.Values{"csrf": {csrf}, "confirm": {"last-full-token"}})
	wantRedirect(t, res, "/settings/tokens?ok=token-revoked")
	// That ended this session.
	wantRedirect(t, c.get("/settings/tokens"), "/login")
	wantAbsent(t, s.logs.String(), secret, strings.SplitN(s.token, ".", 2)[1])
}

// TestSignInLimited: past the address's burst of failed sign-ins, a
// sign-in with a token this server has not confirmed answers 429 with
// Retry-After, the token not even checked; one it confirmed before still
// signs in.
func TestSignInLimited(t *testing.T) {
	s := newStack(t)
	good := s.client(t)
	good.signIn()
	c := s.client(t)
	bad := strings.SplitN(s.token, ".", 2)[0] + ".wrong-secret"
	for range vault.DefaultAuthFailureBurst {
		wantStatus(t, c.post("/login", url.Values{"csrf": {c.csrf("/login")}, "token": {vault.NewID(vault.PrefixToken) + ".x"}}), http.StatusUnauthorized)
	}
	res := c.post("/login", url.Values{"csrf": {c.csrf("/login")}, "token": {bad}})
	wantStatus(t, res, http.StatusTooManyRequests)
	wantContains(t, res.Body, "Too many failed sign-ins")
	if res.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	other := s.client(t)
	other.signIn()
	wantStatus(t, other.get("/settings/secrets"), http.StatusOK)
}

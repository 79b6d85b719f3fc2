package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/envvault/envvault/vault"
)

// TestDashboardAudit: a failed sign-in on the dashboard is recorded as the
// API's are (no user, the request id of the response, the connection's
// address, never the token); a change made in the dashboard is recorded
// with the session's token.
func TestDashboardAudit(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	head, err := s.store.AuditHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := s.client(t)
	tokenID, _, _ := strings.Cut(s.token, ".")
	res := c.post("/login", url.Values{"csrf": {c.csrf("/login")}, "token": {tokenID + ".wrong-secret-71c3"}},
		"X-Forwarded-For", "203.0.113.5")
	wantStatus(t, res, http.StatusUnauthorized)
	failedRequest := res.Header.Get("X-Request-Id")
	// A form whose CSRF check fails never reaches the vault: no event.
	wantStatus(t, c.post("/login", url.Values{"csrf": {"forged"}, "token": {tokenID + ".x"}}), http.StatusForbidden)

	c.signIn()
	csrf := c.csrf("/settings/secrets/new")
	res = c.post("/settings/secrets", url.Values{"csrf": {csrf}, "name": {"FROM_DASHBOARD"}, "value": {"dashboard-canary-value"}, "scope": {"all"}})
	wantSecretRedirect(t, res, "secret-added")
	createRequest := res.Header.Get("X-Request-Id")
	// Failed sign-ins are written when their window ends (vault/abuse.go).
	if err := s.svc.FlushAuthFailures(ctx); err != nil {
		t.Fatal(err)
	}

	events, err := s.store.AuditChain(ctx, head.Seq, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 {
		t.Fatalf("%d events, want the secret's creation and the failed sign-in", len(events))
	}
	created, failed := events[0], events[1]
	if failed.Action != vault.ActionAuthFailed || failed.UserID != "" || failed.TokenID != "" || failed.TargetID != tokenID ||
		failed.RequestID != failedRequest || failed.ClientAddr != "127.0.0.1" || failed.Details["reason"] != "wrong secret" {
		t.Errorf("failed sign-in: %+v (response request id %s)", failed, failedRequest)
	}
	if created.Action != vault.ActionSecretCreate || created.UserID != s.userID || created.TokenID != tokenID ||
		created.RequestID != createRequest || created.ClientAddr != "127.0.0.1" || created.Details["name"] != "FROM_DASHBOARD" {
		t.Errorf("secret created in the dashboard: %+v (response request id %s)", created, createRequest)
	}
	for _, e := range events {
		if e.RequestID == "" {
			t.Errorf("event %d has no request id", e.Seq)
		}
		if strings.Contains(e.TargetID+e.RequestID+e.TokenID, "71c3") || strings.Contains(e.TargetID, "canary") {
			t.Errorf("event %d holds a token or a value: %+v", e.Seq, e)
		}
	}
	if rep, err := vault.VerifyAudit(ctx, s.store); err != nil || rep.Break != nil {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
}

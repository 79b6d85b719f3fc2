package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envvault/envvault/vault"
)

// auditPage is GET /v1/audit's body.
type auditPage struct {
	Data []struct {
		Seq        int64          `json:"seq"`
		Time       string         `json:"time"`
		UserID     string         `json:"user_id"`
		TokenID    *string        `json:"token_id"`
		RequestID  *string        `json:"request_id"`
		ClientAddr *string        `json:"client_addr"`
		Action     string         `json:"action"`
		TargetType string         `json:"target_type"`
		TargetID   string         `json:"target_id"`
		Details    map[string]any `json:"details"`
		PrevHash   string         `json:"prev_hash"`
		Hash       string         `json:"hash"`
	} `json:"data"`
	NextCursor *string `json:"next_cursor"`
}

func (e *testEnv) auditPage(path, token string) auditPage {
	e.t.Helper()
	r := e.call("GET", path, token, "")
	want(e.t, r, http.StatusOK, "")
	var p auditPage
	if err := json.Unmarshal(r.body, &p); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// callAs sends a request with its own X-Request-Id and, if not "", an
// X-Forwarded-For and X-Real-IP the server must not believe.
func (e *testEnv) callAs(method, path, token, body, requestID, forwarded string) *response {
	e.t.Helper()
	req := e.request(method, path, token, body)
	req.Header.Set("X-Request-Id", requestID)
	if forwarded != "" {
		req.Header.Set("X-Forwarded-For", forwarded)
		req.Header.Set("X-Real-IP", forwarded)
	}
	return e.send(req)
}

func tokenIDOf(token string) string { id, _, _ := strings.Cut(token, "."); return id }

// TestAuditOverHTTP makes changes over HTTP and reads them back: each
// once, with the token, request id and client address of its request (the
// connection's, whatever X-Forwarded-For says), newest first, the caller's
// own only, never a value.
func TestAuditOverHTTP(t *testing.T) {
	const canary = "CANARY-audit-5b7e-never-shown"
	e := newTestEnv(t)
	alice, tok := e.newUser("alice")
	_, bobTok := e.newUser("bob")

	r := e.callAs("POST", "/v1/secrets", tok, `{"name":"STRIPE_KEY","value":"`+canary+`"}`, "req-create", "203.0.113.9")
	want(t, r, http.StatusCreated, "")
	sid, _ := r.json(t)["id"].(string)
	want(t, e.callAs("PATCH", "/v1/secrets/"+sid, tok, `{"value":"`+canary+`2"}`, "req-update", ""), http.StatusOK, "")
	r = e.callAs("POST", "/v1/profiles", tok, `{"name":"agent","image":"img"}`, "req-profile", "")
	want(t, r, http.StatusCreated, "")
	pid, _ := r.json(t)["id"].(string)
	want(t, e.callAs("DELETE", "/v1/secrets/"+sid, tok, "", "req-delete", ""), http.StatusNoContent, "")
	e.mustCreate("/v1/secrets", bobTok, `{"name":"BOBS","value":"`+canary+`"}`)
	// Refused writes leave nothing.
	want(t, e.call("POST", "/v1/secrets", tok, `{"name":"bad name","value":"x"}`), http.StatusUnprocessableEntity, "name")
	want(t, e.call("DELETE", "/v1/secrets/"+sid, tok, ""), http.StatusNotFound, "")

	p := e.auditPage("/v1/audit", tok)
	var got []string
	for _, ev := range p.Data {
		got = append(got, ev.Action+" "+ev.TargetID)
		if ev.UserID != alice {
			t.Errorf("alice's list has event %d of %s", ev.Seq, ev.UserID)
		}
	}
	wantList := []string{"secret.delete " + sid, "profile.create " + pid, "secret.update " + sid, "secret.create " + sid,
		"token.create " + tokenIDOf(tok), "user.create " + alice}
	if !slices.Equal(got, wantList) {
		t.Fatalf("alice's events:\n got %q\nwant %q", got, wantList)
	}
	for i, reqID := range []string{"req-delete", "req-profile", "req-update", "req-create"} {
		ev := p.Data[i]
		if ev.TokenID == nil || *ev.TokenID != tokenIDOf(tok) || ev.RequestID == nil || *ev.RequestID != reqID ||
			ev.ClientAddr == nil || *ev.ClientAddr != "127.0.0.1" {
			t.Errorf("event %s: token %v, request %v, client %v; want %s, %s, 127.0.0.1",
				ev.Action, deref(ev.TokenID), deref(ev.RequestID), deref(ev.ClientAddr), tokenIDOf(tok), reqID)
		}
		if len(ev.Hash) != 64 || len(ev.PrevHash) != 64 {
			t.Errorf("event %d: hash %q, prev_hash %q", ev.Seq, ev.Hash, ev.PrevHash)
		}
	}
	if uc := p.Data[5]; uc.TokenID != nil || uc.RequestID != nil || uc.ClientAddr != nil {
		t.Errorf("user.create made outside a request: %+v", uc)
	}
	if d := p.Data[2].Details; d["version"] != float64(2) || !slices.Equal(toStrings(d["changed"]), []string{"value"}) {
		t.Errorf("secret.update details: %v", d)
	}

	// Pages, filters.
	var walked []string
	next := "/v1/audit?limit=2"
	for next != "" {
		page := e.auditPage(next, tok)
		if len(page.Data) > 2 {
			t.Fatalf("page of %d", len(page.Data))
		}
		for _, ev := range page.Data {
			walked = append(walked, ev.Action+" "+ev.TargetID)
		}
		next = ""
		if page.NextCursor != nil {
			next = "/v1/audit?limit=2&cursor=" + url.QueryEscape(*page.NextCursor)
		}
	}
	if !slices.Equal(walked, wantList) {
		t.Errorf("paged:\n got %q\nwant %q", walked, wantList)
	}
	if page := e.auditPage("/v1/audit?action=secret.update&target="+sid, tok); len(page.Data) != 1 || page.Data[0].Action != "secret.update" {
		t.Errorf("action and target: %+v", page.Data)
	}
	if page := e.auditPage("/v1/audit?target="+sid, tok); len(page.Data) != 3 {
		t.Errorf("target %s: %d events, want 3", sid, len(page.Data))
	}
	mid := p.Data[2].Time // secret.update
	if page := e.auditPage("/v1/audit?since="+url.QueryEscape(mid), tok); len(page.Data) != 3 {
		t.Errorf("since %s: %d events, want 3", mid, len(page.Data))
	}
	if page := e.auditPage("/v1/audit?until="+url.QueryEscape(mid), tok); len(page.Data) != 3 {
		t.Errorf("until %s: %d events, want 3", mid, len(page.Data))
	}
	if page := e.auditPage("/v1/audit?target="+sid, bobTok); len(page.Data) != 0 {
		t.Errorf("bob sees %d of alice's events", len(page.Data))
	}
	later := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for _, c := range []struct{ query, field string }{
		{"action=secret.read", "action"},
		{"action=secret.create&action=secret.update", "action"},
		{"target=a&target=b", "target"},
		{"since=yesterday", "since"},
		{"until=2031-13-01T00:00:00Z", "until"},
		{"since=" + later + "&until=" + later, "until"},
		{"q=STRIPE", "q"},
		{"cursor=bm9wZQ", "cursor"},
		{"limit=0", "limit"},
		{"target=" + strings.Repeat("x", 129), "target"},
	} {
		want(t, e.call("GET", "/v1/audit?"+c.query, tok, ""), http.StatusUnprocessableEntity, c.field)
	}
	want(t, e.call("GET", "/v1/audit", "", ""), http.StatusUnauthorized, "")
	want(t, e.call("POST", "/v1/audit", tok, `{}`), http.StatusMethodNotAllowed, "")

	e.finish()
	e.mu.Lock()
	transcript := e.transcript.String()
	e.mu.Unlock()
	if strings.Contains(transcript, canary) {
		t.Error("a response holds a secret value")
	}
	if _, secret, _ := strings.Cut(tok, "."); strings.Contains(transcript, secret) {
		t.Error("a response holds a token")
	}
	rep, err := vault.VerifyAudit(context.Background(), e.store)
	if err != nil || rep.Break != nil {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
}

// TestAuditFailedSignIn: a 401 for a token that parses is recorded, as no
// user's, with the request id and the connection's address, never the
// token; one for a token that does not parse, or no token, is not.
func TestAuditFailedSignIn(t *testing.T) {
	e := newTestEnv(t)
	_, tok := e.newUser("alice")
	head := func() int64 {
		h, err := e.store.AuditHead(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return h.Seq
	}
	before := head()
	wrong := tokenIDOf(tok) + ".not-the-secret-4f1d"
	r := e.callAs("GET", "/v1/secrets", wrong, "", "req-wrong", "198.51.100.7")
	want(t, r, http.StatusUnauthorized, "")
	unknown := "tok_" + strings.Repeat("u", 21) + ".whatever-8c2e"
	want(t, e.callAs("GET", "/v1/profiles", unknown, "", "req-unknown", ""), http.StatusUnauthorized, "")
	want(t, e.call("GET", "/v1/secrets", "garbage", ""), http.StatusUnauthorized, "")
	want(t, e.call("GET", "/v1/secrets", "garbage-too", ""), http.StatusUnauthorized, "")
	want(t, e.call("GET", "/v1/secrets", "", ""), http.StatusUnauthorized, "")
	if n := head(); n != before {
		t.Fatalf("%d events before the failures' window ended: they are written when it does", n-before)
	}
	if err := e.svc.FlushAuthFailures(context.Background()); err != nil {
		t.Fatal(err)
	}

	events, err := e.store.AuditChain(context.Background(), before, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 3 {
		t.Fatalf("%d events for failed sign-ins from one address with two token ids and two malformed tokens, want 3", len(events))
	}
	if m := events[2]; m.TargetID != "malformed" || m.ClientAddr != "127.0.0.1" || fmt.Sprint(m.Details["failed"]) != "2" {
		t.Errorf("the malformed tokens' event: %+v", m)
	}
	events = events[:2]
	for i, c := range []struct{ target, request, reason string }{
		{tokenIDOf(tok), "req-wrong", "wrong secret"},
		{tokenIDOf(unknown), "req-unknown", "unknown token"},
	} {
		ev := events[i]
		if ev.Action != vault.ActionAuthFailed || ev.UserID != "" || ev.TokenID != "" || ev.TargetType != vault.TargetToken ||
			ev.TargetID != c.target || ev.RequestID != c.request || ev.ClientAddr != "127.0.0.1" || ev.Details["reason"] != c.reason {
			t.Errorf("failed sign-in %d: %+v", i, ev)
		}
		b, _ := json.Marshal(ev)
		if strings.Contains(string(b), "4f1d") || strings.Contains(string(b), "8c2e") {
			t.Errorf("event %d holds the presented token", ev.Seq)
		}
	}
	// Nobody lists them.
	if page := e.auditPage("/v1/audit?action=auth.failed", tok); len(page.Data) != 0 {
		t.Errorf("alice lists %d failed sign-ins", len(page.Data))
	}
}

func deref(s *string) string {
	if s == nil {
		return "<null>"
	}
	return *s
}

func toStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, len(list))
	for i, x := range list {
		out[i], _ = x.(string)
	}
	return out
}

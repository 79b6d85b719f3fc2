package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envvault/envvault/vault"
)

// tokenOf is a token as the tests read it (their own type, not the API's).
type tokenOf struct {
	ID         string  `json:"id"`
	Name       string  `json:"name"`
	Scope      string  `json:"scope"`
	CreatedAt  string  `json:"created_at"`
	LastUsedAt *string `json:"last_used_at"`
	ExpiresAt  *string `json:"expires_at"`
	Token      string  `json:"token"`
}

// newToken creates a token with the bearer token tok and returns it.
func (e *testEnv) newToken(tok, name, scope string) tokenOf {
	e.t.Helper()
	r := e.call("POST", "/v1/tokens", tok, fmt.Sprintf(`{"name":%q,"scope":%q}`, name, scope))
	want(e.t, r, http.StatusCreated, "")
	var out tokenOf
	if err := json.Unmarshal(r.body, &out); err != nil {
		e.t.Fatal(err)
	}
	if !strings.HasPrefix(out.Token, out.ID+".") || out.Name != name || out.Scope != scope {
		e.t.Fatalf("created token: %s", r.body)
	}
	if loc := r.header.Get("Location"); loc != "/v1/tokens/"+out.ID {
		e.t.Errorf("Location %q", loc)
	}
	return out
}

// listTokens returns the tokens GET /v1/tokens answers tok.
func (e *testEnv) listTokens(tok string) ([]tokenOf, *response) {
	e.t.Helper()
	r := e.call("GET", "/v1/tokens", tok, "")
	want(e.t, r, http.StatusOK, "")
	var out struct{ Data []tokenOf }
	if err := json.Unmarshal(r.body, &out); err != nil {
		e.t.Fatal(err)
	}
	return out.Data, r
}

// TestTokens creates, lists, uses and revokes tokens: the secret is shown
// once and nowhere after (lists, audit events, log); a revoked token is
// refused at once; the last full token needs confirmation; every action
// is audited; bad input names its field and changes nothing.
func TestTokens(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2031, 7, 9, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	e := newTestEnv(t, envOptions{now: clock})
	_, initial := e.newUser("alice")
	_, bobTok := e.newUser("bob")

	list, _ := e.listTokens(initial)
	if len(list) != 1 || list[0].Name != vault.InitialTokenName || list[0].Scope != "full" || list[0].Token != "" {
		t.Fatalf("a new user's tokens: %+v", list)
	}
	ci := e.newToken(initial, "ci deploy", "read")
	secret := strings.TrimPrefix(ci.Token, ci.ID+".")
	if ci.LastUsedAt != nil || ci.ExpiresAt != nil {
		t.Errorf("a fresh token: %+v", ci)
	}
	// The new token works, with its scope, and its use is recorded.
	want(t, e.call("GET", "/v1/secrets", ci.Token, ""), http.StatusOK, "")
	want(t, e.call("POST", "/v1/secrets", ci.Token, `{"name":"X","value":"v1v1v1"}`), http.StatusForbidden, "")
	list, lr := e.listTokens(initial)
	i := slices.IndexFunc(list, func(tk tokenOf) bool { return tk.ID == ci.ID })
	if len(list) != 2 || i < 0 || list[i].LastUsedAt == nil {
		t.Fatalf("after a use: %s", lr.body)
	}
	if strings.Contains(string(lr.body), secret) {
		t.Fatal("the list shows a token's secret")
	}
	// Bob sees his own token only, and cannot revoke Alice's.
	if l, _ := e.listTokens(bobTok); len(l) != 1 || l[0].ID == ci.ID {
		t.Fatalf("bob's list: %+v", l)
	}
	want(t, e.call("DELETE", "/v1/tokens/"+ci.ID, bobTok, ""), http.StatusNotFound, "")

	// Bad input: the field and the rule; nothing is made.
	for _, c := range []struct{ body, field string }{
		{`{"name":"","scope":"full"}`, "name"},
		{`{"name":"` + strings.Repeat("n", vault.MaxTokenNameLen+1) + `","scope":"full"}`, "name"},
		{`{"name":"x","scope":"admin"}`, "scope"},
		{`{"name":"x"}`, "scope"},
		{`{"name":"x","scope":"full","expires_at":"tomorrow"}`, "expires_at"},
		{`{"name":"x","scope":"full","expires_at":"2031-07-09T09:00:00Z"}`, "expires_at"},
		{`{"name":"x","scope":"full","token":"tok_x.y"}`, "token"},
	} {
		r := e.call("POST", "/v1/tokens", initial, c.body)
		want(t, r, http.StatusUnprocessableEntity, c.field)
		if _, _, msg := r.errorOf(t); !strings.HasPrefix(msg, c.field+":") {
			t.Errorf("%s: message %q does not name the field", c.body, msg)
		}
	}
	want(t, e.call("POST", "/v1/tokens", initial, `{"name":`), http.StatusBadRequest, "")
	want(t, e.call("DELETE", "/v1/tokens/"+ci.ID+"?confirm=yes", initial, ""), http.StatusUnprocessableEntity, "confirm")
	want(t, e.call("DELETE", "/v1/tokens/tok_nope", initial, ""), http.StatusNotFound, "")
	if l, _ := e.listTokens(initial); len(l) != 2 {
		t.Fatalf("refused requests changed the tokens: %+v", l)
	}

	// Revoked: refused at once (the cache had it).
	want(t, e.call("DELETE", "/v1/tokens/"+ci.ID, initial, ""), http.StatusNoContent, "")
	want(t, e.call("GET", "/v1/secrets", ci.Token, ""), http.StatusUnauthorized, "")
	want(t, e.call("DELETE", "/v1/tokens/"+ci.ID, initial, ""), http.StatusNotFound, "")

	// The last full token: 409 naming confirm, unless confirmed.
	r := e.call("DELETE", "/v1/tokens/"+strings.SplitN(initial, ".", 2)[0], initial, "")
	want(t, r, http.StatusConflict, "confirm")
	if _, _, msg := r.errorOf(t); !strings.Contains(msg, "last full token") || !strings.Contains(msg, vault.ConfirmLastFullToken) {
		t.Errorf("409 message %q", msg)
	}
	second := e.newToken(initial, "second", "full")
	want(t, e.call("DELETE", "/v1/tokens/"+strings.SplitN(initial, ".", 2)[0], initial, ""), http.StatusNoContent, "")
	want(t, e.call("GET", "/v1/tokens", initial, ""), http.StatusUnauthorized, "")

	// An expiring token: valid before, 401 from its expiry on.
	exp := now.Add(time.Hour).Format(time.RFC3339)
	r = e.call("POST", "/v1/tokens", second.Token, `{"name":"short","scope":"full","expires_at":"`+exp+`"}`)
	want(t, r, http.StatusCreated, "")
	var short tokenOf
	_ = json.Unmarshal(r.body, &short)
	if short.ExpiresAt == nil || *short.ExpiresAt != exp {
		t.Fatalf("expires_at: %s", r.body)
	}
	want(t, e.call("GET", "/v1/tokens", short.Token, ""), http.StatusOK, "")
	advance(time.Hour)
	want(t, e.call("GET", "/v1/tokens", short.Token, ""), http.StatusUnauthorized, "")
	// An expired full token is not a usable one: the last usable full
	// token still needs confirmation.
	want(t, e.call("DELETE", "/v1/tokens/"+second.ID, second.Token, ""), http.StatusConflict, "confirm")
	want(t, e.call("DELETE", "/v1/tokens/"+second.ID+"?confirm="+vault.ConfirmLastFullToken, second.Token, ""), http.StatusNoContent, "")

	// Every action audited, with the id, name and scope: never a secret.
	e.finish()
	ctx := t.Context()
	aliceID, _, err := e.svc.Authenticate(ctx, short.Token)
	if err == nil || aliceID != "" {
		t.Fatal("an expired token authenticated")
	}
	events := tokenEvents(t, e)
	var got []string
	for _, ev := range events {
		got = append(got, fmt.Sprintf("%s %s %v %v", ev.Action, ev.TargetID, ev.Details["name"], ev.Details["scope"]))
	}
	wantEvents := []string{
		"token.create " + ci.ID + " ci deploy read",
		"token.revoke " + ci.ID + " ci deploy read",
		"token.create " + second.ID + " second full",
		"token.revoke " + strings.SplitN(initial, ".", 2)[0] + " initial full",
		"token.create " + short.ID + " short full",
		"token.revoke " + second.ID + " second full",
	}
	if !slices.Equal(got, wantEvents) {
		t.Errorf("token events:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(wantEvents, "\n  "))
	}
	for _, tok := range []string{ci.Token, second.Token, short.Token, initial} {
		s := strings.SplitN(tok, ".", 2)[1]
		if strings.Contains(e.logs.String(), s) {
			t.Errorf("the log holds a token's secret")
		}
		for _, ev := range events {
			if b, _ := json.Marshal(ev); strings.Contains(string(b), s) {
				t.Errorf("audit event %s holds a token's secret", ev.Action)
			}
		}
	}
}

// tokenEvents returns every token.create and token.revoke event of the
// audit chain, oldest first, but the users' first tokens'.
func tokenEvents(t *testing.T, e *testEnv) []*vault.AuditEvent {
	t.Helper()
	all, err := e.store.AuditChain(t.Context(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []*vault.AuditEvent
	first := map[string]bool{}
	for _, ev := range all {
		if ev.Action == vault.ActionUserCreate {
			first[ev.UserID] = true
			continue
		}
		if ev.Action == vault.ActionTokenCreate && first[ev.UserID] && ev.TokenID == "" {
			continue // made with the user, by CreateUser
		}
		if ev.Action == vault.ActionTokenCreate || ev.Action == vault.ActionTokenRevoke {
			out = append(out, ev)
		}
	}
	return out
}

// TestTokenLimit: a user holds at most vault.MaxTokensPerUser tokens; one
// more is 409 and is not made.
func TestTokenLimit(t *testing.T) {
	e := newTestEnv(t)
	_, tok := e.newUser("alice")
	for i := 1; i < vault.MaxTokensPerUser; i++ {
		e.newToken(tok, fmt.Sprint("t", i), "read")
	}
	r := e.call("POST", "/v1/tokens", tok, `{"name":"one too many","scope":"read"}`)
	want(t, r, http.StatusConflict, "")
	if _, _, msg := r.errorOf(t); !strings.Contains(msg, fmt.Sprint(vault.MaxTokensPerUser)) {
		t.Errorf("409 message %q does not give the limit", msg)
	}
	if l, _ := e.listTokens(tok); len(l) != vault.MaxTokensPerUser {
		t.Fatalf("%d tokens, want %d", len(l), vault.MaxTokensPerUser)
	}
}

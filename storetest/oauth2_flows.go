package storetest

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/envvault/envvault/vault"
)

// oauth2FlowTests are the suite of the interactive OAuth2 flows' state
// (issue 17, vault/oauth2_flow.go): everything a completion refuses before
// it asks the provider anything, on each store. The exchange itself is
// tested against Ory Hydra (web/oauth2_browser_test.go).
var oauth2FlowTests = []test{
	{name: "AuthorizationURL", fn: testOAuth2AuthorizationURL},
	{name: "StateRefusals", fn: testOAuth2StateRefusals},
	{name: "StateExpires", fn: testOAuth2StateExpires},
	{name: "StartRules", fn: testOAuth2StartRules},
}

const flowClientSecret = canary + "-client-secret"

const flowRedirect = "https://vault.example.com/oauth2/callback"

// mustOAuth2Secret makes an oauth2 secret of flow for user.
func (f *fixture) mustOAuth2Secret(user, name string, flow vault.OAuth2Flow) *vault.Secret {
	f.t.Helper()
	o := &vault.OAuth2Settings{Flow: flow, TokenURL: "https://provider.example/oauth/token", ClientID: "envvault-client",
		Scopes: []string{"repo", "offline_access"}, AuthParams: map[string]string{"prompt": "consent"}}
	switch flow {
	case vault.FlowAuthorizationCode:
		o.AuthURL = "https://provider.example/oauth/authorize"
	case vault.FlowDeviceCode:
		o.DeviceAuthURL = "https://provider.example/oauth/device"
	}
	sec, err := f.svc.CreateSecret(f.ctx, user, vault.SecretInput{Name: name, Scope: vault.ScopeAll, Kind: vault.KindOAuth2,
		Value: flowClientSecret, OAuth2: o})
	if err != nil {
		f.t.Fatalf("create oauth2 secret %s: %v", name, err)
	}
	return sec
}

// startFlow starts an authorization and returns its state.
func (f *fixture) startFlow(user, secretID, session string) string {
	f.t.Helper()
	a, err := f.svc.StartOAuth2Authorization(f.ctx, user, secretID, session, flowRedirect)
	if err != nil {
		f.t.Fatalf("start authorization: %v", err)
	}
	u, err := url.Parse(a.URL)
	if err != nil {
		f.t.Fatal(err)
	}
	return u.Query().Get("state")
}

func testOAuth2AuthorizationURL(t *testing.T, f *fixture) {
	alice := f.mustUser("alice")
	sec := f.mustOAuth2Secret(alice, "GITHUB", vault.FlowAuthorizationCode)
	a, err := f.svc.StartOAuth2Authorization(f.ctx, alice, sec.ID, "session-1", flowRedirect)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(a.URL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Host != "provider.example" || u.Path != "/oauth/authorize" {
		t.Errorf("authorization URL %s is not the secret's auth_url", a.URL)
	}
	want := map[string]string{"client_id": "envvault-client", "redirect_uri": flowRedirect, "response_type": "code",
		"scope": "repo offline_access", "code_challenge_method": "S256", "prompt": "consent"}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("authorization URL %s = %q, want %q", k, q.Get(k), v)
		}
	}
	if len(q.Get("state")) < 43 || len(q.Get("code_challenge")) != 43 {
		t.Errorf("state %d and code_challenge %d characters, want >= 43 (256 bits) and 43 (S256)", len(q.Get("state")), len(q.Get("code_challenge")))
	}
	if strings.Contains(a.URL, flowClientSecret) || strings.Contains(a.URL, "client_secret") {
		t.Errorf("the authorization URL holds the client secret")
	}
	if d := a.ExpiresAt.Sub(f.now()); d <= 9*time.Minute || d > vault.OAuth2FlowTTL {
		t.Errorf("expires in %s, want about %s", d, vault.OAuth2FlowTTL)
	}
	if state2 := f.startFlow(alice, sec.ID, "session-1"); state2 == q.Get("state") {
		t.Errorf("two starts gave the same state")
	}
	// The store keeps neither the state nor the verifier in the clear.
	n, err := f.h.QueryInt(f.ctx, `SELECT count(*) FROM oauth2_flows WHERE user_id = ?`, alice)
	if err != nil || n != 2 {
		t.Fatalf("oauth2_flows rows = %d, %v; want 2", n, err)
	}
	n, err = f.h.QueryInt(f.ctx, `SELECT count(*) FROM oauth2_flows WHERE state_hash = ? OR sealed_verifier = ?`, []byte(q.Get("state")), []byte(q.Get("state")))
	if err != nil || n != 0 {
		t.Errorf("a row holds the state in the clear (%d, %v)", n, err)
	}
	events := chain(t, f.store)
	last := events[len(events)-1]
	if last.Action != vault.ActionOAuth2Authorize || last.TargetID != sec.ID {
		t.Errorf("last event %s %s, want %s of the secret", last.Action, last.TargetID, vault.ActionOAuth2Authorize)
	}
	details, _ := json.Marshal(last.Details)
	if strings.Contains(string(details), q.Get("state")) || !strings.Contains(string(details), `"via":"dashboard"`) {
		t.Errorf("oauth2.authorize details %s: hold the state, or do not say via dashboard", details)
	}
}

// refused checks that user's completion was refused with EINVALID on
// field, with a message holding want, and that owner's secret is still
// unconnected.
func (f *fixture) refused(user, owner, secretID, session string, cb vault.OAuth2Callback, field, want string) {
	f.t.Helper()
	got, err := f.svc.CompleteOAuth2Authorization(f.ctx, user, session, cb)
	var ve *vault.Error
	if err == nil || !errors.As(err, &ve) || ve.Code != vault.EINVALID || ve.Field != field || !strings.Contains(ve.Message, want) {
		f.t.Fatalf("completion gave %+v, %v; want EINVALID on %s saying %q", got, err, field, want)
	}
	if cb.State != "" && strings.Contains(err.Error(), cb.State) {
		f.t.Errorf("the refusal holds the state: %v", err)
	}
	sec, err := f.svc.Secret(f.ctx, owner, secretID)
	if err != nil {
		f.t.Fatal(err)
	}
	if sec.OAuth2Status == nil || sec.OAuth2Status.State != vault.OAuth2Pending {
		f.t.Errorf("after a refusal the secret's status is %+v, want pending", sec.OAuth2Status)
	}
}

func testOAuth2StateRefusals(t *testing.T, f *fixture) {
	alice, bob := f.mustUser("alice"), f.mustUser("bob")
	sec := f.mustOAuth2Secret(alice, "GITHUB", vault.FlowAuthorizationCode)
	f.mustOAuth2Secret(bob, "GITHUB", vault.FlowAuthorizationCode)
	const unknown = "not valid"

	f.refused(alice, alice, sec.ID, "s1", vault.OAuth2Callback{State: "forged-" + strings.Repeat("x", 40), Code: "c"}, "state", unknown)
	f.refused(alice, alice, sec.ID, "s1", vault.OAuth2Callback{Code: "c"}, "state", "no state")

	state := f.startFlow(alice, sec.ID, "s1")
	// Another user, and another session of the same user: refused, and the
	// flow stays for the session that started it.
	f.refused(bob, alice, sec.ID, "s1", vault.OAuth2Callback{State: state, Code: "c"}, "state", unknown)
	f.refused(alice, alice, sec.ID, "s2", vault.OAuth2Callback{State: state, Code: "c"}, "state", "another sign-in session")
	f.refused(alice, alice, sec.ID, "", vault.OAuth2Callback{State: state, Code: "c"}, "state", "another sign-in session")
	// The provider's refusal ends the flow (found: not "unknown")...
	f.refused(alice, alice, sec.ID, "s1", vault.OAuth2Callback{State: state, Error: "access_denied", ErrorDescription: "The user said no <b>"},
		"code", "the provider answered access_denied: The user said no <b>")
	// ...and uses it up.
	f.refused(alice, alice, sec.ID, "s1", vault.OAuth2Callback{State: state, Code: "c"}, "state", unknown)

	// Started through the API: bound to the user, any session of hers.
	state = f.startFlow(alice, sec.ID, "")
	f.refused(bob, alice, sec.ID, "s9", vault.OAuth2Callback{State: state, Code: "c"}, "state", unknown)
	f.refused(alice, alice, sec.ID, "s9", vault.OAuth2Callback{State: state}, "code", "no code")

	events := chain(t, f.store)
	refusals := 0
	for _, e := range events {
		details, _ := json.Marshal(e.Details)
		if strings.Contains(string(details), state) {
			t.Errorf("event %s holds a state: %s", e.Action, details)
		}
		if e.Action == vault.ActionOAuth2AuthorizeRefused {
			refusals++
		}
	}
	if refusals != 9 {
		t.Errorf("%d oauth2.authorize_refused events, want one per refusal (9)", refusals)
	}
}

func testOAuth2StateExpires(t *testing.T, f *fixture) {
	alice := f.mustUser("alice")
	sec := f.mustOAuth2Secret(alice, "GITHUB", vault.FlowAuthorizationCode)
	state := f.startFlow(alice, sec.ID, "s1")
	f.ticks.Add(int64(vault.OAuth2FlowTTL/time.Millisecond) + 1) // the clock passes the expiry
	f.refused(alice, alice, sec.ID, "s1", vault.OAuth2Callback{State: state, Code: "c"}, "state", "expired")
	f.refused(alice, alice, sec.ID, "s1", vault.OAuth2Callback{State: state, Code: "c"}, "state", "not valid")
}

func testOAuth2StartRules(t *testing.T, f *fixture) {
	alice := f.mustUser("alice")
	plain := f.mustSecret(alice, "PLAIN", value("x"))
	cc := f.mustOAuth2Secret(alice, "MACHINE", vault.FlowClientCredentials)
	dev := f.mustOAuth2Secret(alice, "DEVICE", vault.FlowDeviceCode)
	for _, c := range []struct {
		id, field string
	}{{plain.ID, "kind"}, {cc.ID, "flow"}, {dev.ID, "flow"}} {
		_, err := f.svc.StartOAuth2Authorization(f.ctx, alice, c.id, "s1", flowRedirect)
		if vault.ErrorCode(err) != vault.EINVALID || !strings.Contains(err.Error(), c.field) {
			t.Errorf("start on %s: %v, want EINVALID on %s", c.id, err, c.field)
		}
	}
	if _, err := f.svc.StartOAuth2Authorization(f.ctx, alice, "sec_missing", "s1", flowRedirect); vault.ErrorCode(err) != vault.ENOTFOUND {
		t.Errorf("start on a missing secret: %v, want ENOTFOUND", err)
	}

	sec := f.mustOAuth2Secret(alice, "GITHUB", vault.FlowAuthorizationCode)
	for range vault.MaxOAuth2Flows {
		f.startFlow(alice, sec.ID, "s1")
	}
	_, err := f.svc.StartOAuth2Authorization(f.ctx, alice, sec.ID, "s1", flowRedirect)
	if after, _ := vault.RetryAfter(err); vault.ErrorCode(err) != vault.ELIMIT || after != vault.OAuth2FlowTTL {
		t.Fatalf("start past %d flows: %v (retry after %s), want ELIMIT after %s", vault.MaxOAuth2Flows, err, after, vault.OAuth2FlowTTL)
	}
	// Expired flows free their places, and the next start deletes them.
	f.ticks.Add(int64(vault.OAuth2FlowTTL/time.Millisecond) + 1)
	f.startFlow(alice, sec.ID, "s1")
	if n, err := f.h.QueryInt(f.ctx, `SELECT count(*) FROM oauth2_flows WHERE user_id = ?`, alice); err != nil || n != 1 {
		t.Errorf("after expiry and a start, %d flows (%v), want 1", n, err)
	}
	// A deleted secret takes its flows with it.
	if err := f.svc.DeleteSecret(f.ctx, alice, sec.ID); err != nil {
		t.Fatal(err)
	}
	if n, err := f.h.QueryInt(f.ctx, `SELECT count(*) FROM oauth2_flows WHERE user_id = ?`, alice); err != nil || n != 0 {
		t.Errorf("after the secret's delete, %d flows (%v), want 0", n, err)
	}
}

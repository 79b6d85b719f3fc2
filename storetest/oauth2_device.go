package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/envvault/envvault/vault"
)

// testOAuth2DeviceFlow: the Device Authorization flow (RFC 8628) against
// the suite's endpoint on loopback (Ory Hydra v2.3.0, the end-to-end
// server, has no device flow). A started flow shows the provider's user
// code and verification URL and stays pending while the provider answers
// authorization_pending; once the user approves, the next poll stores the
// tokens and the secret releases; a denial ends the next flow as failed
// with the reason, the secret keeping the tokens it had. The device code,
// the tokens and the client secret are in no audit row.
func testOAuth2DeviceFlow(t *testing.T, f *fixture) {
	o := newOAuth2Fixture(t, f, vault.Options{})
	p := o.mustProfile(o.user, "agent")
	sec := o.mustOAuth2Secret("DEVICE_TOKEN", vault.FlowDeviceCode)
	if st := o.status(sec.ID); st.State != vault.OAuth2Pending {
		t.Fatalf("status before connecting: %+v", st)
	}

	fl, err := o.svc.StartOAuth2Device(o.ctx, o.user, sec.ID, "session-1")
	if err != nil {
		noCanary(t, err)
		t.Fatalf("start device flow: %v", err)
	}
	if fl.UserCode != "WDJB-MJHT" || fl.VerificationURI != o.ep.srv.URL+"/device" || fl.Status != vault.OAuth2FlowPending {
		t.Fatalf("started flow: %+v", fl)
	}
	// The flow stays pending while the user has not acted: at least one
	// poll answered authorization_pending.
	o.waitDevice(func(e *tokenEndpoint) bool { return e.polls >= 1 })
	if got := o.deviceFlow(fl.ID); got.Status != vault.OAuth2FlowPending {
		t.Fatalf("flow while the user has not approved: %+v", got)
	}
	o.ep.set(func(e *tokenEndpoint) { e.device = "approve" })
	got := o.waitFlowEnd(fl.ID)
	if got.Status != vault.OAuth2FlowConnected || got.Message != "" {
		t.Fatalf("flow after approval: %+v", got)
	}
	if st := o.status(sec.ID); st.State != vault.OAuth2Connected {
		t.Errorf("status after approval: %+v", st)
	}
	env := o.mustRelease(p.ID)
	if tok := env["DEVICE_TOKEN"]; !strings.Contains(tok, "access-") {
		t.Errorf("released %q, want the access token the device flow got", tok)
	}

	// Another flow, denied: it fails with the reason; the secret keeps the
	// connection it had.
	fl2, err := o.svc.StartOAuth2Device(o.ctx, o.user, sec.ID, "session-1")
	if err != nil {
		t.Fatalf("start second device flow: %v", err)
	}
	o.ep.set(func(e *tokenEndpoint) { e.device = "deny" })
	got = o.waitFlowEnd(fl2.ID)
	if got.Status != vault.OAuth2FlowFailed || !strings.Contains(got.Message, "denied") {
		t.Errorf("denied flow: %+v, want failed because access was denied", got)
	}
	o.waitEvents(vault.ActionOAuth2AuthorizeRefused, 1)
	if st := o.status(sec.ID); st.State != vault.OAuth2Connected {
		t.Errorf("status after a denied second flow: %+v", st)
	}
	if n := o.events(vault.ActionOAuth2Authorize); n != 2 {
		t.Errorf("%d oauth2.authorize events, want 2", n)
	}
	// A flow for a secret of another flow is refused, naming the rule.
	cc := o.mustOAuth2Secret("CC_TOKEN", vault.FlowClientCredentials)
	if _, err := o.svc.StartOAuth2Device(o.ctx, o.user, cc.ID, "session-1"); vault.ErrorCode(err) != vault.EINVALID {
		t.Errorf("device flow of a client_credentials secret: %v, want %s", err, vault.EINVALID)
	}
	o.auditHoldsNoCanary()
}

// deviceWait bounds the waits for the device flow's poller (polls once a
// second).
const deviceWait = 30 * time.Second

func (o *oauth2Fixture) deviceFlow(id string) *vault.OAuth2FlowRecord {
	o.t.Helper()
	fl, err := o.svc.OAuth2DeviceFlow(o.ctx, o.user, id)
	if err != nil {
		o.t.Fatalf("read device flow %s: %v", id, err)
	}
	return fl
}

// waitFlowEnd waits until the device flow is no longer pending.
func (o *oauth2Fixture) waitFlowEnd(id string) *vault.OAuth2FlowRecord {
	o.t.Helper()
	deadline := time.Now().Add(deviceWait)
	for {
		fl := o.deviceFlow(id)
		if fl.Status != vault.OAuth2FlowPending || time.Now().After(deadline) {
			return fl
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitDevice waits until cond holds of the endpoint.
func (o *oauth2Fixture) waitDevice(cond func(e *tokenEndpoint) bool) {
	o.t.Helper()
	deadline := time.Now().Add(deviceWait)
	for {
		o.ep.mu.Lock()
		ok := cond(o.ep)
		o.ep.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			o.t.Fatalf("the device flow's poller did not reach the endpoint within %v", deviceWait)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitEvents waits until n events of action are written (the poller
// writes its outcome after the flow's status).
func (o *oauth2Fixture) waitEvents(action string, n int64) {
	o.t.Helper()
	deadline := time.Now().Add(deviceWait)
	for o.events(action) < n {
		if time.Now().After(deadline) {
			o.t.Fatalf("fewer than %d %s events after %v", n, action, deviceWait)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

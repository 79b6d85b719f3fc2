package storetest

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/envvault/envvault/internal/testenv"
	"github.com/envvault/envvault/vault"
)

// oauth2Tests are the suite of oauth2 secrets (vault/oauth2.go): settings
// and their rules, the release of a fresh access token (client
// credentials, refresh tokens rotated), failures marking the secret, one
// refresh for many releases, key rotation and import. The token endpoint is
// real HTTP on loopback (oauth2_endpoint.go).
var oauth2Tests = []test{
	{name: "Settings", fn: testOAuth2Settings},
	{name: "ClientCredentials", fn: testOAuth2ClientCredentials},
	{name: "RefreshTokenRotated", fn: testOAuth2RefreshTokenRotated},
	{name: "RefreshFails", fn: testOAuth2RefreshFails},
	{name: "OneRefresh", fn: testOAuth2OneRefresh},
	{name: "Rotation", fn: testOAuth2Rotation},
	{name: "Import", fn: testOAuth2Import},
	{name: "DueForRunningTasks", fn: testOAuth2Due},
	{name: "PrivateEndpointRefused", fn: testOAuth2PrivateEndpointRefused},
	{name: "DeviceFlow", fn: testOAuth2DeviceFlow},
}

// oauth2Fixture is a service on f's store whose clock is the real one
// moved by skew (tokens expire by the real clock, which x/oauth2 reads),
// and a token endpoint on loopback, a network its services are allowed.
type oauth2Fixture struct {
	*fixture
	svc  *vault.Service
	skew atomic.Int64
	ep   *tokenEndpoint
	user string
}

func newOAuth2Fixture(t *testing.T, f *fixture, opts vault.Options) *oauth2Fixture {
	o := &oauth2Fixture{fixture: f, ep: newTokenEndpoint(t)}
	opts.Now = func() time.Time { return time.Now().Add(time.Duration(o.skew.Load())) }
	if opts.OAuth2AllowNetworks == nil {
		opts.OAuth2AllowNetworks = testenv.Loopback
	}
	o.svc = vault.NewService(f.store, f.keys, opts)
	o.user = f.mustUser("alice")
	return o
}

// service returns another service on the same store and clock, as
// another process would run.
func (o *oauth2Fixture) service() *vault.Service {
	return vault.NewService(o.store, o.keys, vault.Options{Now: func() time.Time { return time.Now().Add(time.Duration(o.skew.Load())) },
		OAuth2AllowNetworks: testenv.Loopback})
}

func (o *oauth2Fixture) settings(flow vault.OAuth2Flow) *vault.OAuth2Settings {
	s := &vault.OAuth2Settings{Flow: flow, TokenURL: o.ep.url(), ClientID: o.ep.clientID, Scopes: []string{"read", "write"}}
	switch flow {
	case vault.FlowAuthorizationCode:
		s.AuthURL = o.ep.srv.URL + "/oauth2/auth"
	case vault.FlowDeviceCode:
		s.DeviceAuthURL = o.ep.srv.URL + "/oauth2/device/auth"
	}
	return s
}

func (o *oauth2Fixture) mustOAuth2Secret(name string, flow vault.OAuth2Flow) *vault.Secret {
	o.t.Helper()
	sec, err := o.svc.CreateSecret(o.ctx, o.user, vault.SecretInput{Name: name, Kind: vault.KindOAuth2,
		OAuth2: o.settings(flow), Value: o.ep.clientSecret})
	if err != nil {
		noCanary(o.t, err)
		o.t.Fatalf("create oauth2 secret %s: %v", name, err)
	}
	return sec
}

// release releases the profile's secrets with svc and returns NAME ->
// value.
func (o *oauth2Fixture) release(svc *vault.Service, profileID string) (map[string]string, error) {
	env, err := svc.GetDecryptedForProfile(o.ctx, o.user, profileID)
	if err != nil {
		noCanary(o.t, err)
	}
	return env, err
}

func (o *oauth2Fixture) mustRelease(profileID string) map[string]string {
	o.t.Helper()
	env, err := o.release(o.svc, profileID)
	if err != nil {
		o.t.Fatalf("release: %v", err)
	}
	return env
}

func (o *oauth2Fixture) status(id string) vault.OAuth2Status {
	o.t.Helper()
	sec, err := o.svc.Secret(o.ctx, o.user, id)
	if err != nil {
		o.t.Fatalf("read secret %s: %v", id, err)
	}
	if sec.Kind != vault.KindOAuth2 || sec.OAuth2 == nil || sec.OAuth2Status == nil {
		o.t.Fatalf("secret %s read back as kind %q, settings %v, status %v", id, sec.Kind, sec.OAuth2, sec.OAuth2Status)
	}
	return *sec.OAuth2Status
}

func (o *oauth2Fixture) events(action string) int64 {
	o.t.Helper()
	n, err := o.h.QueryInt(o.ctx, `SELECT count(*) FROM audit_events WHERE action = ?`, action)
	if err != nil {
		o.t.Fatalf("count %s events: %v", action, err)
	}
	return n
}

// auditHoldsNoCanary fails if any audit row's details hold the canary (a
// token, a client secret, or the endpoint's answer).
func (o *oauth2Fixture) auditHoldsNoCanary() {
	o.t.Helper()
	n, err := o.h.QueryInt(o.ctx, `SELECT count(*) FROM audit_events WHERE CAST(details AS TEXT) LIKE ?`, "%"+canary+"%")
	if err != nil {
		o.t.Fatalf("scan audit events: %v", err)
	}
	if n != 0 {
		o.t.Errorf("%d audit events hold a token or client secret", n)
	}
}

// later moves the clock to when a token given now for an hour is valid
// for less than the default margin (10 minutes), but still valid.
func (o *oauth2Fixture) later() { o.skew.Add(int64(55 * time.Minute)) }

func testOAuth2Settings(t *testing.T, f *fixture) {
	o := newOAuth2Fixture(t, f, vault.Options{})
	sec := o.mustOAuth2Secret("API_TOKEN", vault.FlowClientCredentials)
	if sec.Kind != vault.KindOAuth2 || sec.OAuth2 == nil || sec.OAuth2.ClientID != o.ep.clientID || sec.OAuth2Status.State != vault.OAuth2Pending {
		t.Fatalf("created %+v", sec)
	}
	if st := o.status(sec.ID); st.State != vault.OAuth2Pending || st.ExpiresAt != nil || st.Refreshable {
		t.Errorf("status of a new secret: %+v", st)
	}
	page, err := o.svc.Secrets(o.ctx, o.user, vault.ListOptions{})
	if err != nil || len(page.Items) != 1 || page.Items[0].OAuth2 == nil || !slices.Equal(page.Items[0].OAuth2.Scopes, []string{"read", "write"}) {
		t.Fatalf("list: %v %+v", err, page.Items)
	}
	val := f.mustSecret(o.user, "PLAIN", value("plain"))
	if val.Kind != vault.KindValue {
		t.Errorf("a secret made without a kind reads back as %q", val.Kind)
	}
	wantOAuth2Refusals(t, o)
	bad := *o.settings(vault.FlowClientCredentials)
	if _, err := o.svc.UpdateSecret(o.ctx, o.user, val.ID, vault.SecretPatch{OAuth2: &bad}); vault.ErrorField(err) != "oauth2" {
		t.Errorf("oauth2 settings on a value secret: %v, want EINVALID oauth2", err)
	}
	if err := o.svc.ConnectOAuth2(o.ctx, o.user, val.ID, &oauth2.Token{AccessToken: value("x")}); vault.ErrorField(err) != "kind" {
		t.Errorf("connect a value secret: %v, want EINVALID kind", err)
	}
	if _, err := o.svc.OAuth2Config(o.ctx, o.user, "sec_nope"); vault.ErrorCode(err) != vault.ENOTFOUND {
		t.Errorf("config of no secret: %v, want ENOTFOUND", err)
	}
	cfg, err := o.svc.OAuth2Config(o.ctx, o.user, sec.ID)
	if err != nil || cfg.ClientSecret != o.ep.clientSecret || cfg.Endpoint.TokenURL != o.ep.url() || cfg.ClientID != o.ep.clientID {
		t.Fatalf("config: %v", err)
	}
	// A new client secret is a new version; the settings are not.
	newSecret := value("client-secret-2")
	if _, err := o.svc.UpdateSecret(o.ctx, o.user, sec.ID, vault.SecretPatch{Value: &newSecret}); vault.ErrorField(err) != "value" {
		t.Errorf("a value for an oauth2 secret: %v, want EINVALID value", err)
	}
	if _, err := o.svc.UpdateSecret(o.ctx, o.user, val.ID, vault.SecretPatch{ClientSecret: &newSecret}); vault.ErrorField(err) != "client_secret" {
		t.Errorf("a client secret for a value secret: %v, want EINVALID client_secret", err)
	}
	up, err := o.svc.UpdateSecret(o.ctx, o.user, sec.ID, vault.SecretPatch{ClientSecret: &newSecret})
	if err != nil || up.Version != 2 || up.OAuth2 == nil {
		t.Fatalf("new client secret: %v %+v", err, up)
	}
	if vs := o.mustVersions(o.user, sec.ID); len(vs) != 2 || vs[0].Version != 2 || vs[1].Version != 1 {
		t.Errorf("versions after a new client secret: %+v", vs)
	}
	empty := ""
	if _, err := o.svc.UpdateSecret(o.ctx, o.user, sec.ID, vault.SecretPatch{ClientSecret: &empty}); vault.ErrorField(err) != "client_secret" {
		t.Errorf("empty client secret: %v, want EINVALID client_secret", err)
	}
}

// wantOAuth2Refusals tries bad settings, each refused naming its field,
// with nothing created.
func wantOAuth2Refusals(t *testing.T, o *oauth2Fixture) {
	before := o.mustCount(o.user)
	cc := func(edit func(s *vault.OAuth2Settings)) *vault.OAuth2Settings {
		s := o.settings(vault.FlowClientCredentials)
		edit(s)
		return s
	}
	for _, c := range []struct {
		in    vault.SecretInput
		field string
	}{
		{vault.SecretInput{Kind: "token", Value: "x"}, "kind"},
		{vault.SecretInput{Kind: vault.KindOAuth2, Value: "x"}, "oauth2"},
		{vault.SecretInput{Kind: vault.KindValue, Value: "x", OAuth2: cc(func(*vault.OAuth2Settings) {})}, "oauth2"},
		{vault.SecretInput{Kind: vault.KindOAuth2, Value: "x", OAuth2: cc(func(s *vault.OAuth2Settings) { s.Flow = "implicit" })}, "oauth2.flow"},
		{vault.SecretInput{Kind: vault.KindOAuth2, Value: "x", OAuth2: cc(func(s *vault.OAuth2Settings) { s.TokenURL = "ftp://h/t" })}, "oauth2.token_url"},
		{vault.SecretInput{Kind: vault.KindOAuth2, Value: "x", OAuth2: cc(func(s *vault.OAuth2Settings) { s.TokenURL = "/oauth2/token" })}, "oauth2.token_url"},
		{vault.SecretInput{Kind: vault.KindOAuth2, Value: "x", OAuth2: cc(func(s *vault.OAuth2Settings) { s.TokenURL = "https://u:p@h/t" })}, "oauth2.token_url"},
		{vault.SecretInput{Kind: vault.KindOAuth2, Value: "x", OAuth2: cc(func(s *vault.OAuth2Settings) { s.Flow = vault.FlowAuthorizationCode })}, "oauth2.auth_url"},
		{vault.SecretInput{Kind: vault.KindOAuth2, Value: "x", OAuth2: cc(func(s *vault.OAuth2Settings) { s.Flow = vault.FlowDeviceCode })}, "oauth2.device_auth_url"},
		{vault.SecretInput{Kind: vault.KindOAuth2, Value: "x", OAuth2: cc(func(s *vault.OAuth2Settings) { s.ClientID = "" })}, "oauth2.client_id"},
		{vault.SecretInput{Kind: vault.KindOAuth2, Value: "x", OAuth2: cc(func(s *vault.OAuth2Settings) { s.Scopes = []string{"a b"} })}, "oauth2.scopes[0]"},
		{vault.SecretInput{Kind: vault.KindOAuth2, Value: "x", OAuth2: cc(func(s *vault.OAuth2Settings) { s.AuthParams = map[string]string{"state": "x"} })}, "oauth2.auth_params"},
		{vault.SecretInput{Kind: vault.KindOAuth2, OAuth2: cc(func(*vault.OAuth2Settings) {})}, "client_secret"},
	} {
		c.in.Name = "BAD_ONE"
		_, err := o.svc.CreateSecret(o.ctx, o.user, c.in)
		if vault.ErrorCode(err) != vault.EINVALID || vault.ErrorField(err) != c.field {
			t.Errorf("create with %s wrong: %v, want EINVALID naming %s", c.field, err, c.field)
		}
	}
	if n := o.mustCount(o.user); n != before {
		t.Errorf("refused creates left %d secrets, want %d", n, before)
	}
}

func testOAuth2ClientCredentials(t *testing.T, f *fixture) {
	o := newOAuth2Fixture(t, f, vault.Options{})
	p := o.mustProfile(o.user, "agent")
	sec := o.mustOAuth2Secret("API_TOKEN", vault.FlowClientCredentials)
	o.mustSecret(o.user, "PLAIN", value("plain"))
	env := o.mustRelease(p.ID)
	first := env["API_TOKEN"]
	if !strings.HasPrefix(first, canary) || strings.Contains(first, "client-secret") || env["PLAIN"] != value("plain") {
		t.Fatalf("released API_TOKEN %q: want an access token from the endpoint", first)
	}
	if n := o.ep.calls.Load(); n != 1 || o.ep.grants[0] != "client_credentials" || o.ep.scopes[0] != "read write" {
		t.Errorf("endpoint calls %d, grants %v, scopes %v", n, o.ep.grants, o.ep.scopes)
	}
	st := o.status(sec.ID)
	if st.State != vault.OAuth2Connected || st.ExpiresAt == nil || st.RefreshedAt == nil || time.Until(*st.ExpiresAt) < 50*time.Minute {
		t.Errorf("status after the first token: %+v", st)
	}
	if env := o.mustRelease(p.ID); env["API_TOKEN"] != first || o.ep.calls.Load() != 1 {
		t.Errorf("a token valid for the margin was not reused: %d calls", o.ep.calls.Load())
	}
	o.later()
	if env := o.mustRelease(p.ID); env["API_TOKEN"] == first || !strings.HasPrefix(env["API_TOKEN"], canary) || o.ep.calls.Load() != 2 {
		t.Errorf("a token valid for less than the margin was given again (%d calls)", o.ep.calls.Load())
	}
	// Masking after a restart knows the token held now.
	vals, err := o.svc.ValuesAtVersions(o.ctx, o.user, []vault.EnvSecret{{Name: "API_TOKEN", SecretID: sec.ID, Version: 1}})
	if err != nil || !slices.ContainsFunc(vals, func(v string) bool { return strings.HasPrefix(v, canary+":access-") }) {
		t.Errorf("values at versions miss the access token: %v (%d values)", err, len(vals))
	}
	if n := o.events(vault.ActionOAuth2Refresh); n != 2 {
		t.Errorf("%d oauth2.refresh events, want 2", n)
	}
	o.auditHoldsNoCanary()
}

func testOAuth2RefreshTokenRotated(t *testing.T, f *fixture) {
	o := newOAuth2Fixture(t, f, vault.Options{})
	p := o.mustProfile(o.user, "agent")
	sec := o.mustOAuth2Secret("GH_TOKEN", vault.FlowAuthorizationCode)
	_, err := o.release(o.svc, p.ID)
	if !errors.Is(err, vault.ErrOAuth2) || !strings.Contains(err.Error(), "GH_TOKEN") || !strings.Contains(err.Error(), "not connected") {
		t.Fatalf("release before connecting: %v", err)
	}
	if st := o.status(sec.ID); st.State != vault.OAuth2Pending {
		t.Errorf("a never-connected secret became %s", st.State)
	}
	r0 := value("refresh-0")
	o.ep.set(func(e *tokenEndpoint) { e.refresh, e.rotate = r0, true })
	access := value("access-0")
	if err := o.svc.ConnectOAuth2(o.ctx, o.user, sec.ID, &oauth2.Token{AccessToken: access, RefreshToken: r0, Expiry: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if st := o.status(sec.ID); st.State != vault.OAuth2Connected || !st.Refreshable || st.ConnectedAt == nil {
		t.Errorf("status after connect: %+v", st)
	}
	if env := o.mustRelease(p.ID); env["GH_TOKEN"] != access || o.ep.calls.Load() != 0 {
		t.Fatalf("connected token not given as it is")
	}
	// Each later release refreshes (the clock stays 55 minutes on), each
	// with the refresh token the one before got: the rotated one was
	// stored.
	o.later()
	for i := 1; i <= 2; i++ {
		env := o.mustRelease(p.ID)
		if env["GH_TOKEN"] == access || int(o.ep.calls.Load()) != i || o.ep.grants[i-1] != "refresh_token" {
			t.Fatalf("refresh %d: calls %d, grants %v", i, o.ep.calls.Load(), o.ep.grants)
		}
		access = env["GH_TOKEN"]
	}
	if n := o.events(vault.ActionOAuth2Connect); n != 1 {
		t.Errorf("%d oauth2.connect events, want 1", n)
	}
	if vs := o.mustVersions(o.user, sec.ID); len(vs) != 1 {
		t.Errorf("refreshes made versions: %+v", vs)
	}
	o.auditHoldsNoCanary()
}

func testOAuth2RefreshFails(t *testing.T, f *fixture) {
	o := newOAuth2Fixture(t, f, vault.Options{OAuth2RefreshTimeout: 300 * time.Millisecond})
	p := o.mustProfile(o.user, "agent")
	o.mustSecret(o.user, "PLAIN", value("plain"))
	sec := o.mustOAuth2Secret("GH_TOKEN", vault.FlowAuthorizationCode)
	r0 := value("refresh-0")
	if err := o.svc.ConnectOAuth2(o.ctx, o.user, sec.ID, &oauth2.Token{AccessToken: value("a0"), RefreshToken: r0, Expiry: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	o.later()
	wantFail := func(want string) {
		t.Helper()
		env, err := o.release(o.svc, p.ID)
		if env != nil || !errors.Is(err, vault.ErrOAuth2) || !strings.Contains(err.Error(), "GH_TOKEN") ||
			!strings.Contains(err.Error(), sec.ID) || !strings.Contains(err.Error(), want) {
			t.Errorf("release: env of %d names, error %v; want none and an error naming GH_TOKEN and %q", len(env), err, want)
		}
		if st := o.status(sec.ID); st.State != vault.OAuth2NeedsReconnect || !strings.Contains(st.Reason, want) {
			t.Errorf("status %+v, want needs_reconnect because %q", st, want)
		}
	}
	// A revoked grant: the endpoint refuses the refresh token.
	wantFail("invalid_grant")
	// Reconnecting clears it.
	if err := o.svc.ConnectOAuth2(o.ctx, o.user, sec.ID, &oauth2.Token{AccessToken: value("a1"), RefreshToken: r0, Expiry: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if st := o.status(sec.ID); st.State != vault.OAuth2Connected || st.Reason != "" {
		t.Errorf("status after reconnect: %+v", st)
	}
	// A provider that does not answer in time.
	gate := make(chan struct{})
	o.ep.set(func(e *tokenEndpoint) { e.refresh, e.gate = r0, gate })
	wantFail("did not answer within 300ms")
	close(gate)
	// A provider that is down.
	o.ep.srv.Close()
	wantFail("could not be reached")
	if n := o.events(vault.ActionOAuth2RefreshFailed); n != 3 {
		t.Errorf("%d oauth2.refresh_failed events, want 3", n)
	}
	o.auditHoldsNoCanary()
}

func testOAuth2OneRefresh(t *testing.T, f *fixture) {
	o := newOAuth2Fixture(t, f, vault.Options{})
	p := o.mustProfile(o.user, "agent")
	sec := o.mustOAuth2Secret("API_TOKEN", vault.FlowClientCredentials)
	first := o.mustRelease(p.ID)["API_TOKEN"]
	// The next token lives long enough to be valid for the margin on the
	// moved clock: one refresh serves every release.
	gate := make(chan struct{})
	o.ep.set(func(e *tokenEndpoint) { e.expiresIn, e.gate = 7200, gate })
	o.later()
	// Two services, as two processes: the store's lock (PostgreSQL) is
	// the one they share. SQLite is one process: one service.
	services := []*vault.Service{o.svc}
	if _, ok := o.store.(vault.RefreshLocker); ok {
		services = append(services, o.service())
	}
	const n = 20
	var started, done sync.WaitGroup
	got := make([]string, n)
	errs := make([]error, n)
	started.Add(n)
	for i := range n {
		done.Go(func() {
			started.Done()
			env, err := o.release(services[i%len(services)], p.ID)
			got[i], errs[i] = env["API_TOKEN"], err
		})
	}
	started.Wait()
	close(gate)
	done.Wait()
	for i := range n {
		if errs[i] != nil || got[i] == first || got[i] != got[0] {
			t.Errorf("release %d: %v, token the first one: %v, same as release 0: %v", i, errs[i], got[i] == first, got[i] == got[0])
		}
	}
	if calls := o.ep.calls.Load(); calls != 2 {
		t.Errorf("%d releases at once made %d refreshes, want 1", n, calls-1)
	}
	if st := o.status(sec.ID); st.State != vault.OAuth2Connected {
		t.Errorf("status %+v", st)
	}
}

func testOAuth2Rotation(t *testing.T, f *fixture) {
	o := newOAuth2Fixture(t, f, vault.Options{})
	p := o.mustProfile(o.user, "agent")
	o.mustOAuth2Secret("API_TOKEN", vault.FlowClientCredentials)
	tok := o.mustRelease(p.ID)["API_TOKEN"]
	old := o.keys.CurrentID()
	// The secret's data key and its tokens' data key.
	o.wantCounts(map[string]int{old: 2})
	rotated, keys, _ := o.rotated()
	res := mustRotate(t, rotated, o.ctx, vault.RotateOptions{})
	if res.Rotated != 2 {
		t.Errorf("rotated %d data keys, want 2", res.Rotated)
	}
	o.wantCounts(map[string]int{keys.CurrentID(): 2})
	env, err := vault.NewService(o.store, keys, vault.Options{OAuth2AllowNetworks: testenv.Loopback}).GetDecryptedForProfile(o.ctx, o.user, p.ID)
	if err != nil || env["API_TOKEN"] != tok || o.ep.calls.Load() != 1 {
		t.Errorf("after rotation: %v, same token %v, calls %d", err, env["API_TOKEN"] == tok, o.ep.calls.Load())
	}
}

func testOAuth2Import(t *testing.T, f *fixture) {
	o := newOAuth2Fixture(t, f, vault.Options{})
	sec := o.mustOAuth2Secret("API_TOKEN", vault.FlowClientCredentials)
	_, err := o.svc.ImportSecrets(o.ctx, o.user, []vault.ImportEntry{{Line: 1, Name: "API_TOKEN", Value: value("pasted")}}, vault.ScopeAll, nil)
	var ie *vault.ImportError
	if !errors.As(err, &ie) || len(ie.Lines) != 1 || !strings.Contains(ie.Lines[0].Message, "oauth2") {
		t.Fatalf("import over an oauth2 secret: %v", err)
	}
	got, err := o.svc.Secret(o.ctx, o.user, sec.ID)
	if err != nil || got.Version != 1 || got.Kind != vault.KindOAuth2 {
		t.Errorf("after the refused import: %v %+v", err, got)
	}
}

// testOAuth2Due: a running task's token is due (its task to be restarted)
// when it nears its end, or when the secret got a new token after the
// task started; never when the secret is not connected.
func testOAuth2Due(t *testing.T, f *fixture) {
	o := newOAuth2Fixture(t, f, vault.Options{})
	p := o.mustProfile(o.user, "agent")
	o.mustOAuth2Secret("API_TOKEN", vault.FlowClientCredentials)
	o.mustSecret(o.user, "PLAIN", value("plain"))
	o.mustRelease(p.ID)
	started := time.Now().Add(time.Duration(o.skew.Load()))
	due := func(started time.Time, want ...string) {
		t.Helper()
		got, err := o.svc.OAuth2Due(o.ctx, o.user, p.ID, started)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("due: %v, %v; want %v", got, err, want)
		}
	}
	due(started) // an hour left
	o.skew.Add(int64(49 * time.Minute))
	due(started) // 11 minutes left
	o.skew.Add(int64(2 * time.Minute))
	due(started, "API_TOKEN") // 9 minutes left: within the margin
	// Another start refreshes the token: a task started before holds the
	// old one.
	o.ep.set(func(e *tokenEndpoint) { e.expiresIn = 7200 })
	o.mustRelease(p.ID)
	due(started, "API_TOKEN")
	due(time.Now().Add(time.Duration(o.skew.Load()))) // a task started after it has the new one
	// A failed refresh: not connected, never due.
	o.ep.set(func(e *tokenEndpoint) { e.fail = "invalid_client" })
	o.skew.Add(int64(2 * time.Hour))
	if _, err := o.release(o.svc, p.ID); err == nil {
		t.Fatal("a refused refresh released")
	}
	due(started)
	if _, err := o.svc.OAuth2Due(o.ctx, o.user, "prof_nope", started); vault.ErrorCode(err) != vault.ENOTFOUND {
		t.Errorf("due of no profile: %v, want ENOTFOUND", err)
	}
}

// testOAuth2PrivateEndpointRefused: a user's token URL is theirs to
// choose, so by default envvault connects to public addresses only: a
// token endpoint on loopback gets no request, and the release fails naming
// the secret and the rule, as would one on the operator's network or a
// cloud metadata address. Allowing the network lets the same secret
// release.
func testOAuth2PrivateEndpointRefused(t *testing.T, f *fixture) {
	o := newOAuth2Fixture(t, f, vault.Options{OAuth2AllowNetworks: []netip.Prefix{}})
	p := o.mustProfile(o.user, "agent")
	sec := o.mustOAuth2Secret("API_TOKEN", vault.FlowClientCredentials)
	env, err := o.release(o.svc, p.ID)
	if env != nil || !errors.Is(err, vault.ErrOAuth2) || !strings.Contains(err.Error(), sec.ID) ||
		!strings.Contains(err.Error(), "not public") || !strings.Contains(err.Error(), "--oauth2-allow-network") {
		t.Errorf("release to a loopback token endpoint: env of %d names, %v; want an error naming %s and the rule", len(env), err, sec.ID)
	}
	if calls := o.ep.calls.Load(); calls != 0 {
		t.Errorf("the refused token endpoint got %d requests, want 0", calls)
	}
	if env, err := o.release(o.service(), p.ID); err != nil || env["API_TOKEN"] == "" {
		t.Errorf("release with loopback allowed: %v, token %v", err, env["API_TOKEN"] != "")
	}
}

package web_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/envvault/envvault/internal/testenv"
	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

// Hydra's tokens and codes carry these prefixes (fosite's HMAC strategy):
// none may appear in a page, a log, an audit row or the database file.
var hydraPrefixes = []string{"ory_at_", "ory_rt_", "ory_ac_"}

// The Authorization Code flow with PKCE, driven through the dashboard in
// Chromium against Ory Hydra (issue 17): Connect on the secret's page, the
// provider's login and consent (the test's app accepts), the redirect back
// to the callback, and the secret is connected; a task then receives an
// access token Hydra says is active for the signed-in subject. The
// dashboard is reached at localhost and Hydra at 127.0.0.1, two sites, so
// the session cookie (SameSite=Strict) is not sent on the provider's
// redirect back, as with a real provider. A forged state and the used
// state are refused and change nothing. No client secret, code or token
// is in any page, log, audit row or the database file.
func TestBrowserOAuth2Connect(t *testing.T) {
	const clientSecret = "hydra-client-secret-canary-9Wq2"
	h := testenv.RequireHydra(t)
	s, shell := dockerStack(t)
	ctx := context.Background()
	base := strings.Replace(s.URL, "127.0.0.1", "localhost", 1)
	h.AskConsent(true) // the navigation back starts on Hydra's site, as after a real provider's Allow
	client := h.CreateClient(t, testenv.HydraClientOptions{GrantTypes: []string{"authorization_code", "refresh_token"},
		Scopes: []string{"offline_access", "read"}, RedirectURIs: []string{base + vault.OAuth2CallbackPath}, Secret: clientSecret})
	sec, err := s.svc.CreateSecret(ctx, s.userID, vault.SecretInput{Name: "HYDRA_TOKEN", Kind: vault.KindOAuth2, Value: clientSecret,
		OAuth2: &vault.OAuth2Settings{Flow: vault.FlowAuthorizationCode, AuthURL: h.AuthURL, TokenURL: h.TokenURL,
			ClientID: client.ID, Scopes: []string{"offline_access", "read"}}})
	if err != nil {
		t.Fatal(err)
	}

	b := newBrowser(t, s)
	b.do(chromedp.Navigate(base+"/login"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), s.token),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS("form.signout")))
	b.do(chromedp.Navigate(base+"/settings/secrets/"+sec.ID+"/edit"), chromedp.Click(chromedp.ID("oauth2-connect-link")),
		chromedp.WaitVisible(chromedp.ID("oauth2-connect")))
	if got := b.text("#oauth2-callback-url"); got != base+vault.OAuth2CallbackPath {
		t.Errorf("the page says to register %q, want %q", got, base+vault.OAuth2CallbackPath)
	}
	start := time.Now()
	// The click starts a chain of navigations: no snapshot until it ends.
	if _, err := chromedp.Run(b.ctx, chromedp.Click(chromedp.ID("oauth2-connect"))); err != nil {
		t.Fatal(err)
	}
	awaitPage(t, b, h, `#hydra-allow`)
	if _, err := chromedp.Run(b.ctx, chromedp.Click(chromedp.ID("hydra-allow"))); err != nil {
		t.Fatal(err)
	}
	awaitPage(t, b, h, `#oauth2-state[data-state="connected"]`)
	t.Logf("Connect to connected through Hydra's login and consent (one click on Allow): %s", time.Since(start))
	if h.Logins() != 1 || h.Consents() != 1 || h.TokenRequests("authorization_code") != 1 {
		t.Errorf("Hydra saw %d logins, %d consents, %d code exchanges; want 1 each", h.Logins(), h.Consents(), h.TokenRequests("authorization_code"))
	}
	got, err := s.svc.Secret(ctx, s.userID, sec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st := got.OAuth2Status; st == nil || st.State != vault.OAuth2Connected || !st.Refreshable || st.ExpiresAt == nil {
		t.Fatalf("after Connect the secret's status is %+v, want connected with a refresh token and an expiry", st)
	}
	callback := findCallback(t, b)
	// Hydra is another site: the provider's redirect back came without
	// the session cookie, and the page that reloads it from this site
	// did the work.
	if !slices.ContainsFunc(b.documents(), func(d document) bool { return strings.Contains(d.url, "again=1") && d.status == 303 }) {
		t.Errorf("the callback never went through its same-site reload (again=1): the cross-site case is not tested")
	}
	if !strings.Contains(callback, "code=ory_ac_") {
		t.Fatalf("the provider's redirect back %q carries no Hydra code: is this the callback?", callback)
	}

	// A forged state, and the real one used again: refused, nothing changes.
	for name, u := range map[string]string{"forged": base + vault.OAuth2CallbackPath + "?state=forged-state-0123456789&code=ory_ac_forged", "used": callback} {
		b.do(chromedp.Navigate(u), chromedp.WaitVisible(chromedp.CSS("p.alert")))
		if msg := b.text("p.alert"); !strings.Contains(msg, "not valid") {
			t.Errorf("%s state: the page says %q, want that the link is not valid", name, msg)
		}
	}
	if h.TokenRequests("authorization_code") != 1 {
		t.Errorf("a refused state reached the token endpoint: %d code exchanges", h.TokenRequests("authorization_code"))
	}
	again, err := s.svc.Secret(ctx, s.userID, sec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if again.OAuth2Status.ConnectedAt == nil || !again.OAuth2Status.ConnectedAt.Equal(*got.OAuth2Status.ConnectedAt) {
		t.Errorf("a refused state changed the connection: %+v, was %+v", again.OAuth2Status, got.OAuth2Status)
	}

	connectAgainByAPI(t, s, b, h, base, sec.ID, *got.OAuth2Status.ConnectedAt)
	declined(t, b, h, base, sec.ID)

	token := taskReceivesToken(t, s, shell)
	if in := h.Introspect(t, token); !in.Active || in.Subject != testenv.HydraSubject || in.ClientID != client.ID {
		t.Errorf("the task's token: Hydra says %+v, want active for %s of client %s", in, testenv.HydraSubject, client.ID)
	}
	noOAuth2Secrets(t, s, b, clientSecret, token)
}

// findCallback returns the URL of the provider's redirect back to the
// callback that the tab followed.
func findCallback(t *testing.T, b *browser) string {
	t.Helper()
	for _, d := range b.documents() {
		if strings.Contains(d.url, vault.OAuth2CallbackPath+"?") && strings.Contains(d.url, "code=") && !strings.Contains(d.url, "again=") {
			return d.url
		}
	}
	t.Fatal("the tab never received the callback")
	return ""
}

// taskReceivesToken runs a task of a profile that prints the SHA-256 and
// length of HYDRA_TOKEN, and returns the access token a release gives now,
// after checking it is the one the task printed.
func taskReceivesToken(t *testing.T, s *stack, shell string) string {
	t.Helper()
	ctx := context.Background()
	p, err := s.svc.CreateProfile(ctx, s.userID, vault.ProfileInput{Name: "oauth2-printer", Image: shell,
		Command: []string{"/bin/sh", "-c", `printf '%s' "$HYDRA_TOKEN" | sha256sum; printf 'bytes=%s\n' "$(printf '%s' "$HYDRA_TOKEN" | wc -c)"`}})
	if err != nil {
		t.Fatal(err)
	}
	task, err := s.orch.CreateTask(ctx, s.userID, p.ID, "print the token's hash")
	if err != nil {
		t.Fatal(err)
	}
	view := awaitTask(t, s, task.ID)
	var log strings.Builder
	if err := s.orch.Logs(ctx, s.userID, task.ID, false, func(b []byte) error { log.Write(b); return nil }); err != nil {
		t.Fatal(err)
	}
	env, err := s.svc.GetDecryptedForProfile(ctx, s.userID, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	token := env["HYDRA_TOKEN"]
	want := fmt.Sprintf("%x", sha256.Sum256([]byte(token)))
	if view.Status != orchestrator.StatusSucceeded || !strings.HasPrefix(token, "ory_at_") || !strings.Contains(log.String(), want) ||
		!strings.Contains(log.String(), fmt.Sprintf("bytes=%d", len(token))) {
		t.Fatalf("task %s, log:\n%s\nwant the SHA-256 %s of the access token (%d bytes)", view.Status, log.String(), want, len(token))
	}
	return token
}

// noOAuth2Secrets checks that the client secret, the token and no Hydra
// code or token is in any page the tab held (the bodies and the DOM: the
// provider puts the code in the callback's URL), the server's log, the
// audit trail or the database file.
func noOAuth2Secrets(t *testing.T, s *stack, b *browser, clientSecret, token string) {
	t.Helper()
	canaries := append([]string{clientSecret, token}, hydraPrefixes...)
	noCanary(t, s, map[string]*browser{"main": b}, clientSecret, token, "ory_at_", "ory_rt_")
	b.mu.Lock()
	pages := append([]string(nil), b.pages...)
	for _, d := range b.docs {
		pages = append(pages, d.body)
	}
	b.mu.Unlock()
	for _, p := range pages {
		if strings.Contains(p, "ory_ac_") {
			t.Errorf("a page body holds a Hydra authorization code")
		}
	}
	events, err := s.store.AuditChain(context.Background(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]int{}
	for _, e := range events {
		actions[e.Action]++
		raw, _ := json.Marshal(e)
		for _, c := range canaries {
			if strings.Contains(string(raw), c) {
				t.Errorf("audit event %s holds %q", e.Action, c)
			}
		}
	}
	if actions[vault.ActionOAuth2Authorize] != 3 || actions[vault.ActionOAuth2Connect] != 2 || actions[vault.ActionOAuth2AuthorizeRefused] != 3 {
		t.Errorf("audit actions %v: want three starts (dashboard, API, declined), two connections, three refusals (forged, used, declined)", actions)
	}
	for _, suffix := range []string{"", "-wal"} {
		raw, err := os.ReadFile(s.dbPath + suffix)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, c := range canaries {
			if strings.Contains(string(raw), c) {
				t.Errorf("the database file %s holds %q", s.dbPath+suffix, c)
			}
		}
	}
}

// awaitTask waits until the task has ended, on the orchestrator's change
// signal, for at most two minutes.
func awaitTask(t *testing.T, s *stack, id string) *orchestrator.TaskView {
	t.Helper()
	deadline := time.After(2 * time.Minute)
	for {
		changed := s.orch.Changes()
		v, err := s.orch.Task(context.Background(), s.userID, id)
		if err != nil {
			t.Fatal(err)
		}
		if v.Status.Done() {
			return v
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("task %s still %s after 2 minutes (%s)", id, v.Status, v.Error)
		}
	}
}

// awaitPage waits for a page holding sel; on failure it lists the
// documents the tab received and Hydra's log.
func awaitPage(t *testing.T, b *browser, h *testenv.Hydra, sel string) {
	t.Helper()
	// The tab goes through several navigations (the provider, the login
	// and consent app, the callback): a poll ended by one is asked again.
	expr := `document.readyState === "complete" && document.querySelector(` + jsString(sel) + `) !== null`
	deadline := time.Now().Add(60 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		var ok bool
		ok, err = chromedp.Run(b.ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			// Kept for the canary check; read by script, since the
			// tab's DOM node ids may lag behind so many navigations.
			if h, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`)); err == nil {
				b.mu.Lock()
				b.pages = append(b.pages, h)
				b.mu.Unlock()
				return
			}
			continue
		}
		if err == nil {
			err = fmt.Errorf("no %s yet", sel)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var got []string
	for _, d := range b.documents() {
		got = append(got, fmt.Sprintf("%s %s %d -> %s\n%.300s", d.method, d.url, d.status, d.location, d.body))
	}
	t.Fatalf("no page with %s (%v); the tab received:\n%s\nHydra's log:\n%s", sel, err, strings.Join(got, "\n"), h.Log())
}

// oauth2Pages makes an oauth2 secret of each interactive flow and a device
// flow waiting for approval (written to the store as StartOAuth2Device
// would, without a provider), and returns the paths of their pages.
func oauth2Pages(t *testing.T, s *stack) (connect, device string) {
	t.Helper()
	ctx := context.Background()
	code, err := s.svc.CreateSecret(ctx, s.userID, vault.SecretInput{Name: "GITHUB_APP", Kind: vault.KindOAuth2,
		OAuth2: &vault.OAuth2Settings{Flow: vault.FlowAuthorizationCode, AuthURL: "https://github.com/login/oauth/authorize",
			TokenURL: "https://github.com/login/oauth/access_token", ClientID: "Iv1.example", Scopes: []string{"repo"}}})
	if err != nil {
		t.Fatal(err)
	}
	dev, err := s.svc.CreateSecret(ctx, s.userID, vault.SecretInput{Name: "GITHUB_CLI", Kind: vault.KindOAuth2,
		OAuth2: &vault.OAuth2Settings{Flow: vault.FlowDeviceCode, DeviceAuthURL: "https://github.com/login/device/code",
			TokenURL: "https://github.com/login/oauth/access_token", ClientID: "Iv1.example"}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	f := &vault.OAuth2FlowRecord{ID: vault.NewID(vault.PrefixOAuth2Flow), UserID: s.userID, SecretID: dev.ID, Kind: vault.FlowDeviceCode,
		UserCode: "WDJB-MJHT", VerificationURI: "https://github.com/login/device", Status: vault.OAuth2FlowPending,
		CreatedAt: now, ExpiresAt: now.Add(15 * time.Minute), UpdatedAt: now}
	if err := s.store.Update(ctx, s.userID, func(tx vault.Tx) error { return tx.InsertOAuth2Flow(ctx, f) }); err != nil {
		t.Fatal(err)
	}
	return "/settings/secrets/" + code.ID + "/connect", "/settings/secrets/" + dev.ID + "/device/" + f.ID
}

// connectAgainByAPI starts an authorization through the API (bound to the
// user only) and completes it in the signed-in browser: the secret gets a
// new connection.
func connectAgainByAPI(t *testing.T, s *stack, b *browser, h *testenv.Hydra, base, secretID string, before time.Time) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/v1/secrets/"+secretID+"/oauth2/authorize", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var a struct {
		URL      string `json:"authorization_url"`
		Redirect string `json:"redirect_url"`
	}
	if err := json.NewDecoder(res.Body).Decode(&a); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("POST authorize: %d, %v", res.StatusCode, err)
	}
	if a.Redirect != base+vault.OAuth2CallbackPath {
		t.Errorf("redirect_url %q, want %q", a.Redirect, base+vault.OAuth2CallbackPath)
	}
	if _, err := chromedp.Run(b.ctx, chromedp.Navigate(a.URL)); err != nil {
		t.Fatal(err)
	}
	awaitPage(t, b, h, `#hydra-allow`)
	if _, err := chromedp.Run(b.ctx, chromedp.Click(chromedp.ID("hydra-allow"))); err != nil {
		t.Fatal(err)
	}
	awaitPage(t, b, h, `#oauth2-state[data-state="connected"]`)
	got, err := s.svc.Secret(context.Background(), s.userID, secretID)
	if err != nil {
		t.Fatal(err)
	}
	if at := got.OAuth2Status.ConnectedAt; at == nil || !at.After(before) || h.TokenRequests("authorization_code") != 2 {
		t.Errorf("after a connection started by the API: connected at %v (before %v), %d code exchanges; want a new connection, 2",
			at, before, h.TokenRequests("authorization_code"))
	}
}

// declined has the provider's consent app refuse: the provider sends the
// browser back with error=access_denied, which the callback shows, and the
// connection stays as it was.
func declined(t *testing.T, b *browser, h *testenv.Hydra, base, secretID string) {
	t.Helper()
	h.AskConsent(false)
	h.RefuseConsent("access_denied")
	defer h.RefuseConsent("")
	b.do(chromedp.Navigate(base + "/settings/secrets/" + secretID + "/connect"))
	if _, err := chromedp.Run(b.ctx, chromedp.Click(chromedp.ID("oauth2-connect"))); err != nil {
		t.Fatal(err)
	}
	awaitPage(t, b, h, `p.alert`)
	if msg := b.text("p.alert"); !strings.Contains(msg, "the provider answered access_denied") {
		t.Errorf("declined at the provider: the page says %q", msg)
	}
	if h.TokenRequests("authorization_code") != 2 {
		t.Errorf("a declined consent reached the token endpoint")
	}
}

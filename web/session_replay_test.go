package web_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/envvault/envvault/internal/testenv"
	"github.com/envvault/envvault/internal/testvault"
	"github.com/envvault/envvault/postgres"
	"github.com/envvault/envvault/vault"
)

// sessionCookie returns the session cookie c's jar holds for the stack.
func (c *client) sessionCookie() string {
	c.t.Helper()
	u, _ := url.Parse(c.s.URL)
	for _, ck := range c.http.Jar.Cookies(u) {
		if ck.Name == "envvault_session" {
			return ck.Value
		}
	}
	c.t.Fatal("no session cookie in the jar")
	return ""
}

// replay sends method path to s with only the copied cookie, as an
// attacker holding it would: a client of its own, no jar.
func replay(t *testing.T, s *stack, method, path, cookie string, form url.Values) *response {
	t.Helper()
	c := s.client(t)
	c.http.Jar = nil
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Cookie", "envvault_session="+cookie)
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", s.URL)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	return c.do(req)
}

// TestReplayedCookieAfterSignOut: a session cookie copied before sign-out
// works until then (the copy is a real credential) and is refused after,
// for pages and for a form with the session's CSRF token, which creates
// nothing.
func TestReplayedCookieAfterSignOut(t *testing.T) {
	s := newStack(t)
	c := s.client(t)
	c.signIn()
	cookie := c.sessionCookie()
	csrf := c.csrf("/settings/secrets")
	res := replay(t, s, http.MethodGet, "/settings/secrets", cookie, nil)
	wantStatus(t, res, http.StatusOK)
	wantContains(t, res.Body, "Secrets")

	wantRedirect(t, c.post("/logout", url.Values{"csrf": {csrf}}), "/login?ok=signed-out")
	wantRedirect(t, replay(t, s, http.MethodGet, "/settings/secrets", cookie, nil), "/login")
	form := url.Values{"csrf": {csrf}, "name": {"AFTER_SIGN_OUT"}, "value": {"replayed-value"}, "scope": {"all"}}
	wantRedirect(t, replay(t, s, http.MethodPost, "/settings/secrets", cookie, form), "/login")
	if got := s.secretsByName(t); len(got) != 0 {
		t.Fatalf("the replayed cookie made secrets: %v", got)
	}
}

// newSharedStacks is two envvault processes on one PostgreSQL database:
// each its own pool, service, token cache and dashboard.
func newSharedStacks(t *testing.T) (a, b *stack) {
	t.Helper()
	url := testenv.RequirePostgres(t)
	open := func() *postgres.DB {
		db, err := postgres.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if _, err := db.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		return db
	}
	keys := testvault.MustKeyring(t)
	return newStack(t, stackOptions{store: open(), noTasks: true, keys: keys}),
		newStack(t, stackOptions{store: open(), noTasks: true, keys: keys})
}

// TestReplayedCookieAcrossProcesses: a session opened on one process is
// good on another sharing the database, and once signed out on the
// first, its copy is refused by the second; so is every session of a
// token revoked on the first, through the API.
func TestReplayedCookieAcrossProcesses(t *testing.T) {
	a, b := newSharedStacks(t)
	c := a.client(t)
	c.signIn()
	cookie := c.sessionCookie()
	wantStatus(t, replay(t, b, http.MethodGet, "/settings/secrets", cookie, nil), http.StatusOK)
	wantRedirect(t, c.post("/logout", url.Values{"csrf": {c.csrf("/settings/secrets")}}), "/login?ok=signed-out")
	wantRedirect(t, replay(t, b, http.MethodGet, "/settings/secrets", cookie, nil), "/login")

	// Revoked through the API of process A: its sessions end on B, and
	// B's API, which took the token a moment before, refuses it within a
	// second. (Whether B's cache held it depends on its revocation feed
	// being up yet; postgres.TestRevocationReachesOtherProcesses waits for
	// that and proves the cached case.)
	c.signIn()
	cookie = c.sessionCookie()
	wantStatus(t, replay(t, b, http.MethodGet, "/settings/secrets", cookie, nil), http.StatusOK)
	bearer := func(base, token string) int {
		req, _ := http.NewRequest(http.MethodGet, base+"/v1/secrets", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for range 2 {
		if code := bearer(b.URL, a.token); code != http.StatusOK {
			t.Fatalf("process B's API with the token: %d", code)
		}
	}
	_, spare, err := a.svc.IssueToken(context.Background(), a.userID, vault.TokenSpec{Name: "spare", Scope: vault.TokenFull})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodDelete, a.URL+"/v1/tokens/"+strings.SplitN(a.token, ".", 2)[0], nil)
	req.Header.Set("Authorization", "Bearer "+spare)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("revoke through the API: %d", res.StatusCode)
	}
	revoked := time.Now()
	for bearer(b.URL, a.token) != http.StatusUnauthorized {
		if time.Since(revoked) > time.Second {
			t.Fatal("process B's API still takes the revoked token a second after its revocation")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("process B's API refused the revoked token %v after its revocation", time.Since(revoked))
	wantRedirect(t, replay(t, b, http.MethodGet, "/settings/secrets", cookie, nil), "/login")
	wantRedirect(t, replay(t, a, http.MethodGet, "/settings/secrets", cookie, nil), "/login")
}

// TestBrowserReplayAfterSignOut: in Chromium, the session cookie taken
// before sign-out and put back afterwards does not open the dashboard.
func TestBrowserReplayAfterSignOut(t *testing.T) {
	s := newStack(t)
	b := newBrowser(t, s)
	b.signIn()
	got, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{s.URL}})
	if err != nil {
		t.Fatal(err)
	}
	cookies := got.Cookies
	var copied *network.Cookie
	for _, ck := range cookies {
		if ck.Name == "envvault_session" {
			copied = ck
		}
	}
	if copied == nil {
		t.Fatalf("no session cookie in the browser: %+v", cookies)
	}
	b.do(chromedp.Click(chromedp.CSS(`form.signout button[type=submit]`)), chromedp.WaitVisible(chromedp.ID("token")))
	if got := b.text(".flash"); !strings.Contains(got, "signed out") {
		t.Fatalf("after sign-out: flash %q", got)
	}
	// Put the copied cookie back, as someone who took it would.
	httpOnly := true
	if _, err := chromedp.Call(b.ctx, network.SetCookie, network.SetCookieParams{
		Name: copied.Name, Value: copied.Value, URL: s.URL, Path: "/", HTTPOnly: &httpOnly,
	}); err != nil {
		t.Fatal(err)
	}
	got, err = chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{s.URL}})
	if err != nil || !slices.ContainsFunc(got.Cookies, func(c *network.Cookie) bool { return c.Name == copied.Name && c.Value == copied.Value }) {
		t.Fatalf("the copied cookie is not back in the browser: %v", err)
	}
	before := len(b.documents())
	b.do(chromedp.Navigate(s.URL+"/settings/secrets"), chromedp.WaitVisible(chromedp.ID("token")))
	if loc := b.location(); loc != s.URL+"/login" {
		t.Fatalf("the replayed cookie opened %s", loc)
	}
	// The browser sent the copy, and the server answered it with a
	// redirect to sign in.
	docs := b.documents()[before:]
	if len(docs) == 0 || docs[0].url != s.URL+"/settings/secrets" || docs[0].status != http.StatusSeeOther || docs[0].location != "/login" {
		t.Fatalf("documents after the replay: %+v", docs)
	}
	wantContains(t, b.html(), `id="token"`)
}

package web_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/envvault/envvault/vault"
)

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	s := newStack(t)
	c := s.client(t)
	var responses []*response
	responses = append(responses, c.get("/login"), c.get("/settings/secrets"), c.get("/static/app.css"), c.get("/nowhere"))
	c.signIn()
	responses = append(responses, c.get("/settings/secrets"), c.get("/profiles"), c.get("/tasks"),
		c.get("/settings/secrets/sec_nosuchsecretxxxxxxxxx/edit"),
		c.post("/settings/secrets", url.Values{"name": {"X"}}), // no CSRF token: 403
		c.get("/static/app.js"))
	for _, res := range responses {
		h := res.Header
		csp := h.Get("Content-Security-Policy")
		for _, d := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'",
			"form-action 'self'", "base-uri 'none'", "object-src 'none'"} {
			if !strings.Contains(csp, d) {
				t.Errorf("%s: CSP %q lacks %q", res.Request.URL.Path, csp, d)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP allows unsafe sources: %q", res.Request.URL.Path, csp)
		}
		for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"} {
			if h.Get(k) != v {
				t.Errorf("%s: %s = %q, want %q", res.Request.URL.Path, k, h.Get(k), v)
			}
		}
		if strings.HasPrefix(h.Get("Content-Type"), "text/html") {
			if h.Get("Cache-Control") != "no-store" {
				t.Errorf("%s: Cache-Control %q on a page", res.Request.URL.Path, h.Get("Cache-Control"))
			}
			// No inline script or style: the CSP would block them.
			for _, bad := range []string{"<script>", "<style", " style=", " onclick=", " onload=", " onsubmit="} {
				if strings.Contains(res.Body, bad) {
					t.Errorf("%s: page has inline %q", res.Request.URL.Path, bad)
				}
			}
		}
	}
}

func TestStaticAssets(t *testing.T) {
	s := newStack(t)
	c := s.client(t)
	page := c.get("/login")
	m := regexp.MustCompile(`href="(/static/app\.css\?v=[0-9a-f]+)"`).FindStringSubmatch(page.Body)
	if m == nil {
		t.Fatalf("no versioned stylesheet link in %s", page.Body)
	}
	css := c.get(m[1])
	wantStatus(t, css, http.StatusOK)
	if ct := css.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/css") {
		t.Fatalf("stylesheet Content-Type %q", ct)
	}
	if cc := css.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
		t.Fatalf("versioned asset Cache-Control %q", cc)
	}
	js := c.get("/static/app.js")
	if ct := js.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
		t.Fatalf("script Content-Type %q", ct)
	}
	wantStatus(t, c.get("/static/nope.js"), http.StatusNotFound)
	// The external font and CDN rule: nothing but this origin.
	for _, body := range []string{page.Body, css.Body, js.Body} {
		if regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/`).MatchString(strings.ReplaceAll(body, "http://www.w3.org/2000/svg", "")) {
			t.Fatalf("an asset or page refers to another host")
		}
	}
}

func TestSignInCookie(t *testing.T) {
	s := newStack(t)
	c := s.client(t)
	wantRedirect(t, c.get("/settings/secrets"), "/login")
	csrf := c.csrf("/login")
	res := c.post("/login", url.Values{"csrf": {csrf}, "token": {s.token}})
	wantRedirect(t, res, "/settings/secrets")
	var sess *http.Cookie
	for _, ck := range res.Cookies() {
		if ck.Name == "envvault_session" {
			sess = ck
		}
	}
	if sess == nil {
		t.Fatalf("no session cookie in %v", res.Header["Set-Cookie"])
	}
	if !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.Path != "/" || sess.Secure {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/, not Secure over plain HTTP", sess)
	}
	if until := time.Until(sess.Expires); until < 11*time.Hour || until > 13*time.Hour {
		t.Fatalf("session cookie expires in %v, want about 12h", until)
	}
	if strings.Contains(sess.Value, s.token) || strings.Contains(res.Body, s.token) {
		t.Fatal("the API token is in the cookie or the response")
	}
	page := c.get("/settings/secrets")
	wantStatus(t, page, http.StatusOK)
	wantContains(t, page.Body, "Sign out", "Add secret")
	// Signed in, /login goes to the dashboard.
	wantRedirect(t, c.get("/login"), "/settings/secrets")
	// The log holds the sign-in, so the check below scans what it claims to.
	wantContains(t, s.logs.String(), `msg="signed in"`, `msg="web request"`, "path=/login")
	if strings.Contains(s.logs.String(), s.token) || strings.Contains(s.logs.String(), strings.SplitN(s.token, ".", 2)[1]) {
		t.Fatal("the API token is in the server log")
	}
}

func TestSignInSecureCookies(t *testing.T) {
	for name, o := range map[string]stackOptions{"flag": {secure: true}, "tls": {tls: true}} {
		t.Run(name, func(t *testing.T) {
			s := newStack(t, o)
			c := s.client(t)
			csrf := c.csrf("/login")
			if o.tls {
				// Over TLS the jar sends the __Host- cookie back.
				res := c.post("/login", url.Values{"csrf": {csrf}, "token": {s.token}})
				wantRedirect(t, res, "/settings/secrets")
				checkSecureCookie(t, res)
				wantStatus(t, c.get("/settings/secrets"), http.StatusOK)
				return
			}
			// Behind a TLS proxy the browser holds the Secure cookie; the
			// jar of a plain-HTTP client would not send it back, so send
			// the login cookie by hand.
			var login string
			for _, ck := range c.get("/login").Cookies() {
				if ck.Name == "__Host-envvault_login" {
					login = ck.Value
					checkSecure(t, ck)
				}
			}
			if login == "" {
				t.Fatal("no __Host-envvault_login cookie")
			}
			_ = csrf
			page := c.get("/login")
			csrf = csrfRE.FindStringSubmatch(page.Body)[1]
			for _, ck := range page.Cookies() {
				if ck.Name == "__Host-envvault_login" {
					login = ck.Value
				}
			}
			res := c.post("/login", url.Values{"csrf": {csrf}, "token": {s.token}}, "Cookie", "__Host-envvault_login="+login)
			wantRedirect(t, res, "/settings/secrets")
			checkSecureCookie(t, res)
		})
	}
}

func checkSecureCookie(t *testing.T, res *response) {
	t.Helper()
	for _, ck := range res.Cookies() {
		if ck.Name == "__Host-envvault_session" {
			checkSecure(t, ck)
			return
		}
	}
	t.Fatalf("no __Host-envvault_session cookie in %v", res.Header["Set-Cookie"])
}

func checkSecure(t *testing.T, ck *http.Cookie) {
	t.Helper()
	if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.Domain != "" {
		t.Fatalf("cookie %+v: want Secure, HttpOnly, SameSite=Strict, Path=/, no Domain", ck)
	}
}

func TestSignInRefused(t *testing.T) {
	s := newStack(t)
	c := s.client(t)
	csrf := c.csrf("/login")
	res := c.post("/login", url.Values{"csrf": {csrf}, "token": {"tok_AAAAAAAAAAAAAAAAAAAAA.nope"}})
	wantStatus(t, res, http.StatusUnauthorized)
	wantContains(t, res.Body, `id="token-error"`, "This token is not valid")
	if len(res.Cookies()) > 0 {
		for _, ck := range res.Cookies() {
			if strings.HasSuffix(ck.Name, "envvault_session") {
				t.Fatal("a session cookie for a bad token")
			}
		}
	}
	// The sign-in form's own CSRF token is checked too: a form posted from
	// elsewhere cannot sign the browser in to another account.
	fresh := s.client(t)
	res = fresh.post("/login", url.Values{"csrf": {csrf}, "token": {s.token}})
	wantStatus(t, res, http.StatusForbidden)
	wantRedirect(t, fresh.get("/settings/secrets"), "/login")
}

func TestSignOut(t *testing.T) {
	s := newStack(t)
	c := s.client(t)
	c.signIn()
	csrf := c.csrf("/settings/secrets")
	// Sign-out is a POST with the CSRF token: a link elsewhere cannot sign
	// the user out.
	wantStatus(t, c.post("/logout", url.Values{}), http.StatusForbidden)
	wantStatus(t, c.get("/settings/secrets"), http.StatusOK)
	res := c.post("/logout", url.Values{"csrf": {csrf}})
	wantRedirect(t, res, "/login?ok=signed-out")
	wantRedirect(t, c.get("/settings/secrets"), "/login")
	wantContains(t, c.get("/login?ok=signed-out").Body, "You are signed out.")
}

// Deleting the API token ends the sessions made from it at once.
func TestSessionEndsWithToken(t *testing.T) {
	s := newStack(t)
	c := s.client(t)
	c.signIn()
	wantStatus(t, c.get("/settings/secrets"), http.StatusOK)
	_, tokenID, err := s.svc.Authenticate(context.Background(), s.token)
	if err != nil {
		t.Fatal(err)
	}
	s.deleteToken(t, tokenID)
	res := c.get("/settings/secrets")
	wantRedirect(t, res, "/login")
	cleared := false
	for _, ck := range res.Cookies() {
		cleared = cleared || (ck.Name == "envvault_session" && ck.MaxAge < 0)
	}
	if !cleared {
		t.Fatalf("the ended session's cookie is not cleared: %v", res.Header["Set-Cookie"])
	}
}

func TestForgedPostsChangeNothing(t *testing.T) {
	s := newStack(t)
	p := s.mustProfile(t, "builder")
	c := s.client(t)
	c.signIn()
	csrf := c.csrf("/settings/secrets")
	form := func(tok string) url.Values {
		return url.Values{"csrf": {tok}, "name": {"FORGED"}, "value": {"forged-value"}, "scope": {"all"}}
	}
	other := s.client(t)
	other.signIn()
	otherCSRF := other.csrf("/settings/secrets") // another session's token
	for name, res := range map[string]*response{
		"no token":              c.post("/settings/secrets", url.Values{"name": {"FORGED"}, "value": {"forged-value"}}),
		"wrong token":           c.post("/settings/secrets", form("AAAA"+csrf[4:])),
		"other session's token": c.post("/settings/secrets", form(otherCSRF)),
		"cross-site fetch":      c.post("/settings/secrets", form(csrf), "Sec-Fetch-Site", "cross-site", "Origin", "http://evil.example"),
		"same-site other port":  c.post("/settings/secrets", form(csrf), "Sec-Fetch-Site", "same-site", "Origin", "http://127.0.0.1:1"),
		"foreign origin only":   c.post("/settings/secrets", form(csrf), "Sec-Fetch-Site", "", "Origin", "http://127.0.0.1:1"),
		"delete profile":        c.post("/profiles/"+p.ID+"/delete", url.Values{}),
		"sign out":              c.post("/logout", url.Values{"csrf": {"x"}}),
	} {
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", name, res.StatusCode)
		}
		wantContains(t, res.Body, "Nothing was changed")
	}
	if n := len(s.secretsByName(t)); n != 0 {
		t.Fatalf("%d secrets after forged posts", n)
	}
	if _, err := s.svc.Profile(context.Background(), s.userID, p.ID); err != nil {
		t.Fatalf("profile gone after a forged delete: %v", err)
	}
	wantStatus(t, c.get("/settings/secrets"), http.StatusOK) // still signed in
	// And the real form works.
	wantSecretRedirect(t, c.post("/settings/secrets", form(csrf)), "secret-added")
}

// The Secrets forms, without JavaScript: every rule shows next to its
// field with the other input kept and the value never rendered back.
func TestSecretFormsWithoutJS(t *testing.T) {
	const canary = "canary-Zq9-value-never-shown"
	s := newStack(t)
	builder, reviewer := s.mustProfile(t, "builder"), s.mustProfile(t, "reviewer")
	c := s.client(t)
	c.signIn()
	csrf := c.csrf("/settings/secrets/new")
	add := func(v url.Values) *response {
		v.Set("csrf", csrf)
		return c.post("/settings/secrets", v)
	}

	res := add(url.Values{"name": {"github_token"}, "value": {canary}, "description": {"my PAT"},
		"scope": {"agents"}, "profile_ids": {builder.ID}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, res.Body,
		`<p class="error" id="secret-name-error" aria-live="polite">must use only upper-case letters, digits and underscores, not starting with a digit`,
		`value="github_token"`, ">my PAT</textarea>", `value="agents" id="scope-agents" checked`,
		`value="`+builder.ID+`" id="profile-`+builder.ID+`" checked`,
		"the value you typed was not kept")
	wantAbsent(t, res.Body, canary, `value="`+reviewer.ID+`" id="profile-`+reviewer.ID+`" checked`)

	res = add(url.Values{"name": {"GITHUB_TOKEN"}, "value": {""}, "scope": {"all"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, res.Body, `id="secret-value-error" aria-live="polite">is required`)

	res = add(url.Values{"name": {"GITHUB_TOKEN"}, "value": {canary}, "scope": {"agents"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, res.Body, `id="secret-scope-error" aria-live="polite">is required and must not be empty with scope &#34;agents&#34;`)
	wantAbsent(t, res.Body, canary)

	res = add(url.Values{"name": {"LD_PRELOAD"}, "value": {canary}, "scope": {"all"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, res.Body, `id="secret-name-error" aria-live="polite">LD_PRELOAD changes how programs load code`)

	// "All profiles" with agents ticked (which app.js prevents) is
	// refused, not silently dropped.
	res = add(url.Values{"name": {"GITHUB_TOKEN"}, "value": {canary}, "description": {"org PAT"},
		"scope": {"all"}, "profile_ids": {builder.ID}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, res.Body, `id="secret-scope-error" aria-live="polite">“All profiles” gives the secret to every profile, so no agent may be ticked`,
		`id="error-summary" role="alert" tabindex="-1" autofocus`, `<a href="#scope-all">Available to: `)
	wantAbsent(t, res.Body, canary)
	if n := len(s.secretsByName(t)); n != 0 {
		t.Fatalf("%d secrets after a refused form", n)
	}
	wantSecretRedirect(t, add(url.Values{"name": {"GITHUB_TOKEN"}, "value": {canary}, "description": {"org PAT"},
		"scope": {"all"}}), "secret-added")
	res = add(url.Values{"name": {"GITHUB_TOKEN"}, "value": {canary + "2"}, "scope": {"all"}})
	wantStatus(t, res, http.StatusConflict)
	wantContains(t, res.Body, `id="secret-name-error" aria-live="polite">You already have a secret GITHUB_TOKEN for all profiles`)
	wantAbsent(t, res.Body, "sec_")
	wantSecretRedirect(t, add(url.Values{"name": {"GITHUB_TOKEN"}, "value": {canary + "-builder"}, "scope": {"agents"},
		"profile_ids": {builder.ID}}), "secret-added")

	list := c.get("/settings/secrets?ok=secret-added")
	wantStatus(t, list, http.StatusOK)
	wantContains(t, list.Body, "Secret added.", "GITHUB_TOKEN", "All profiles", "Only selected agents",
		`<span class="tag">builder</span>`, "org PAT")
	wantAbsent(t, list.Body, canary)

	env, err := s.svc.GetDecryptedForProfile(context.Background(), s.userID, builder.ID)
	if err != nil || env["GITHUB_TOKEN"] != canary+"-builder" {
		t.Fatalf("builder's env: %v", err)
	}
	secs := s.secretsByName(t)
	_ = secs
	page, err := s.svc.Secrets(context.Background(), s.userID, vault.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var all *vault.Secret
	for _, sec := range page.Items {
		if sec.Scope == vault.ScopeAll {
			all = sec
		}
	}

	// Edit: the form holds no value; an empty value keeps it.
	edit := c.get("/settings/secrets/" + all.ID + "/edit")
	wantStatus(t, edit, http.StatusOK)
	wantContains(t, edit.Body, `value="GITHUB_TOKEN"`, "Leave empty to keep the current value", ">org PAT</textarea>")
	wantAbsent(t, edit.Body, canary)
	res = c.post("/settings/secrets/"+all.ID, url.Values{"csrf": {csrf}, "name": {"GITHUB_TOKEN"}, "value": {""},
		"scope": {"agents"}, "profile_ids": {reviewer.ID}, "description": {"now reviewer only"}})
	wantSecretRedirect(t, res, "secret-saved")
	got, err := s.svc.Secret(context.Background(), s.userID, all.ID)
	if err != nil || got.Scope != vault.ScopeAgents || len(got.ProfileIDs) != 1 || got.ProfileIDs[0] != reviewer.ID || got.Version != 1 {
		t.Fatalf("after edit: %+v, %v", got, err)
	}
	env, err = s.svc.GetDecryptedForProfile(context.Background(), s.userID, reviewer.ID)
	if err != nil || env["GITHUB_TOKEN"] != canary {
		t.Fatal("an edit without a value changed the value")
	}
	// A refused edit keeps the other input.
	res = c.post("/settings/secrets/"+all.ID, url.Values{"csrf": {csrf}, "name": {"GITHUB_TOKEN"}, "value": {canary + "-new"},
		"scope": {"agents"}, "profile_ids": {builder.ID}, "description": {"clash"}})
	wantStatus(t, res, http.StatusConflict)
	wantContains(t, res.Body, `id="secret-scope-error" aria-live="polite">Another secret GITHUB_TOKEN already goes to builder`, ">clash</textarea>", "the value you typed was not kept")
	wantAbsent(t, res.Body, canary)
	// Replace the value.
	wantSecretRedirect(t, c.post("/settings/secrets/"+all.ID, url.Values{"csrf": {csrf}, "name": {"GITHUB_TOKEN"}, "value": {canary + "-rotated"},
		"scope": {"agents"}, "profile_ids": {reviewer.ID}, "description": {"rotated"}}), "secret-saved")
	env, err = s.svc.GetDecryptedForProfile(context.Background(), s.userID, reviewer.ID)
	if err != nil || env["GITHUB_TOKEN"] != canary+"-rotated" {
		t.Fatal("the value was not replaced")
	}

	// Delete asks first, on a page of its own.
	confirm := c.get("/settings/secrets/" + all.ID + "/delete")
	wantStatus(t, confirm, http.StatusOK)
	wantContains(t, confirm.Body, "Delete <code class=\"name\">GITHUB_TOKEN</code>?", "reviewer", `id="confirm-delete"`)
	if _, err := s.svc.Secret(context.Background(), s.userID, all.ID); err != nil {
		t.Fatal("the confirm page deleted the secret")
	}
	wantRedirect(t, c.post("/settings/secrets/"+all.ID+"/delete", url.Values{"csrf": {csrf}}), "/settings/secrets?name=GITHUB_TOKEN&ok=secret-deleted")
	if _, err := s.svc.Secret(context.Background(), s.userID, all.ID); vault.ErrorCode(err) != vault.ENOTFOUND {
		t.Fatalf("after delete: %v", err)
	}
	wantRedirect(t, c.post("/settings/secrets/"+all.ID+"/delete", url.Values{"csrf": {csrf}}), "/settings/secrets?ok=secret-not-found")
	wantStatus(t, c.get("/settings/secrets/"+all.ID+"/edit"), http.StatusNotFound)

	c.mu.Lock()
	seen := c.seen.String()
	c.mu.Unlock()
	// What the client saw holds the pages above, and the log their
	// requests, so the two checks below scan what they claim to.
	wantContains(t, seen, "Secret added.", `id="confirm-delete"`, "the value you typed was not kept")
	wantContains(t, s.logs.String(), "path=/settings/secrets/"+all.ID+"/delete", "status=303", "status=409", "status=422")
	if strings.Contains(seen, canary) {
		t.Fatal("a secret value is in a response")
	}
	if strings.Contains(s.logs.String(), canary) {
		t.Fatal("a secret value is in the server log")
	}
}

// Another user's secrets and profiles answer 404, like ids that never
// existed.
func TestOtherUsersObjects(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	bob, _, err := s.svc.CreateUser(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	bp, err := s.svc.CreateProfile(ctx, bob.ID, vault.ProfileInput{Name: "bobs", Image: "x"})
	if err != nil {
		t.Fatal(err)
	}
	bs, err := s.svc.CreateSecret(ctx, bob.ID, vault.SecretInput{Name: "BOB", Value: "bob-value"})
	if err != nil {
		t.Fatal(err)
	}
	c := s.client(t)
	c.signIn()
	csrf := c.csrf("/settings/secrets")
	for _, p := range []string{"/settings/secrets/" + bs.ID + "/edit", "/settings/secrets/" + bs.ID + "/delete", "/profiles/" + bp.ID} {
		wantStatus(t, c.get(p), http.StatusNotFound)
	}
	wantStatus(t, c.post("/settings/secrets/"+bs.ID, url.Values{"csrf": {csrf}, "name": {"MINE"}, "scope": {"all"}}), http.StatusNotFound)
	wantStatus(t, c.post("/profiles/"+bp.ID+"/delete", url.Values{"csrf": {csrf}}), http.StatusNotFound)
	res := c.post("/settings/secrets", url.Values{"csrf": {csrf}, "name": {"X"}, "value": {"v-long"}, "scope": {"agents"}, "profile_ids": {bp.ID}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, res.Body, "A profile you ticked no longer exists")
	wantAbsent(t, res.Body, bp.ID)
	own := c.get("/settings/secrets")
	wantStatus(t, own, http.StatusOK)
	wantContains(t, own.Body, "<h1>Secrets</h1>", "Add secret")
	wantAbsent(t, own.Body, "BOB")
}

func TestProfilesPages(t *testing.T) {
	s := newStack(t)
	c := s.client(t)
	c.signIn()
	csrf := c.csrf("/profiles/new")
	form := url.Values{"csrf": {csrf}, "name": {"builder"}, "image": {"ghcr.io/acme/agent:1"},
		"command": {"agent\r\n--verbose\r\n\r\n"}, "setup_commands": {"apk add git\r\n"}, "env": {"MODE=fast\r\nbad line\r\n"}}
	res := c.post("/profiles", form)
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, res.Body, `id="profile-env-error" aria-live="polite">line 2: expected NAME=value`, `value="builder"`, "apk add git")

	form.Set("env", "MODE=fast\nGITHUB_TOKEN=placeholder\n# comment\n")
	res = c.post("/profiles", form)
	wantStatus(t, res, http.StatusSeeOther)
	loc := res.Header.Get("Location")
	id := strings.TrimSuffix(strings.TrimPrefix(loc, "/profiles/"), "?ok=profile-added")
	p, err := s.svc.Profile(context.Background(), s.userID, id)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(p.Command, "|") != "agent|--verbose" || strings.Join(p.SetupCommands, "|") != "apk add git" || p.Env["MODE"] != "fast" || len(p.Env) != 2 {
		t.Fatalf("profile as stored: %+v", p)
	}
	sec, err := s.svc.CreateSecret(context.Background(), s.userID, vault.SecretInput{Name: "GITHUB_TOKEN", Value: "preview-canary"})
	if err != nil {
		t.Fatal(err)
	}
	show := c.get(loc)
	wantStatus(t, show, http.StatusOK)
	wantContains(t, show.Body, "Profile created.", "MODE</code>", "profile env", sec.ID, "overrides the profile’s env", "<code class=\"name\">TASK_PROMPT</code>", "set for each task")
	wantAbsent(t, show.Body, "preview-canary")

	res = c.post("/profiles/"+id, url.Values{"csrf": {csrf}, "name": {"builder"}, "image": {"has space"}, "env": {"A=1"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, res.Body, `id="profile-image-error" aria-live="polite">must be an image reference`, `value="has space"`)
	wantRedirect(t, c.post("/profiles/"+id, url.Values{"csrf": {csrf}, "name": {"builder2"}, "image": {"busybox"}, "env": {""}}),
		"/profiles/"+id+"?ok=profile-saved")
	wantContains(t, c.get("/profiles").Body, "builder2", "busybox")

	wantContains(t, c.get("/profiles/"+id+"/delete").Body, `id="confirm-delete"`)
	wantRedirect(t, c.post("/profiles/"+id+"/delete", url.Values{"csrf": {csrf}}), "/profiles?ok=profile-deleted")
	wantStatus(t, c.get("/profiles/"+id), http.StatusNotFound)
}

func TestTasksPages(t *testing.T) {
	s := newStack(t)
	p := s.mustProfile(t, "builder")
	c := s.client(t)
	c.signIn()
	csrf := c.csrf("/tasks")
	res := c.post("/tasks", url.Values{"csrf": {csrf}, "profile_id": {""}, "prompt": {"fix the bug"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, res.Body, `id="task-profile-error" aria-live="polite">is required`, ">fix the bug</textarea>")

	res = c.post("/tasks", url.Values{"csrf": {csrf}, "profile_id": {p.ID}, "prompt": {"fix the bug"}})
	wantStatus(t, res, http.StatusSeeOther)
	loc := res.Header.Get("Location")
	id := strings.TrimSuffix(strings.TrimPrefix(loc, "/tasks/"), "?ok=task-started")
	page := c.get(loc)
	wantStatus(t, page, http.StatusOK)
	wantContains(t, page.Body, "Task queued.", `id="task-status">queued`, "builder", "fix the bug",
		`<noscript><meta http-equiv="refresh" content="3; url=/tasks/`+id+`"></noscript>`, `data-follow="/tasks/`+id+`/logs?follow=1"`)
	wantContains(t, c.get("/tasks").Body, id, "builder", "queued")
	logs := c.get("/tasks/" + id + "/logs")
	wantStatus(t, logs, http.StatusOK)
	if ct := logs.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Fatalf("logs Content-Type %q", ct)
	}

	wantRedirect(t, c.post("/tasks/"+id+"/stop", url.Values{"csrf": {csrf}}), "/tasks/"+id+"?ok=task-stopping")
	page = c.get("/tasks/" + id)
	wantStatus(t, page, http.StatusOK)
	wantContains(t, page.Body, `id="task-status">stopped`)
	wantAbsent(t, page.Body, "http-equiv", "data-follow", `id="stop-task"`)
	wantRedirect(t, c.post("/tasks/"+id+"/restart", url.Values{"csrf": {csrf}}), "/tasks/"+id+"?ok=task-restarting")
	v, err := s.orch.Task(context.Background(), s.userID, id)
	if err != nil || v.Status != "queued" || v.Attempt != 2 {
		t.Fatalf("after restart: %+v %v", v, err)
	}
	wantStatus(t, c.get("/tasks/tsk_nosuchtaskxxxxxxxxxxx"), http.StatusNotFound)
	wantStatus(t, c.post("/tasks/tsk_nosuchtaskxxxxxxxxxxx/stop", url.Values{"csrf": {csrf}}), http.StatusNotFound)
}

func TestNoTasksWithoutOrchestrator(t *testing.T) {
	s := newStack(t, stackOptions{noTasks: true})
	c := s.client(t)
	c.signIn()
	page := c.get("/settings/secrets")
	wantStatus(t, page, http.StatusOK)
	// The nav is there, without its Tasks link.
	wantContains(t, page.Body, "Add secret", `href="/profiles"`, `href="/settings/secrets"`)
	wantAbsent(t, page.Body, `href="/tasks"`)
	wantStatus(t, c.get("/tasks"), http.StatusNotFound)
}

// The API keeps its routes beside the dashboard.
func TestAPIBesideDashboard(t *testing.T) {
	s := newStack(t)
	c := s.client(t)
	wantStatus(t, c.get("/healthz"), http.StatusOK)
	res := c.get("/v1/secrets")
	wantStatus(t, res, http.StatusUnauthorized)
	if !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("API answered %q", res.Header.Get("Content-Type"))
	}
}

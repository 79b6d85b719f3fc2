package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/envvault/envvault/vault"
)

// wantSecretRedirect checks that res sends the browser to the Secrets page
// with notice ok about one secret, its row in view, and returns that
// secret's id.
func wantSecretRedirect(t testing.TB, res *response, ok string) string {
	t.Helper()
	wantStatus(t, res, http.StatusSeeOther)
	loc := res.Header.Get("Location")
	u, err := url.Parse(loc)
	if err != nil || u.Path != "/settings/secrets" || u.Query().Get("ok") != ok {
		t.Fatalf("%s %s: redirect to %q, want the Secrets page with ok=%s", res.Request.Method, res.Request.URL.Path, loc, ok)
	}
	id := u.Query().Get("secret")
	if !strings.HasPrefix(id, "sec_") || u.Fragment != "secret-"+id {
		t.Fatalf("redirect to %q: no secret id, or its row is not in view", loc)
	}
	return id
}

// After a change the Secrets page names the secret and highlights its
// row; a link cannot make it name anything else.
func TestSecretNotices(t *testing.T) {
	s := newStack(t)
	c := s.client(t)
	c.signIn()
	csrf := c.csrf("/settings/secrets/new")
	res := c.post("/settings/secrets", url.Values{"csrf": {csrf}, "name": {"SHORT"}, "value": {"abc"}, "scope": {"all"}})
	id := wantSecretRedirect(t, res, "secret-added")
	if res.Header.Get("Location") != "/settings/secrets?ok=secret-added&secret="+id+"&warn=short#secret-"+id {
		t.Fatalf("a 3-byte value: redirect to %q, want the short-value warning", res.Header.Get("Location"))
	}
	page := c.get(strings.TrimSuffix(res.Header.Get("Location"), "#secret-"+id))
	wantStatus(t, page, http.StatusOK)
	wantContains(t, page.Body, `<p class="flash" role="status">Secret SHORT added.</p>`,
		`<tr id="secret-`+id+`" data-name="SHORT" class="changed" aria-current="true">`,
		`id="short-value">The value of SHORT is shorter than 4 characters, so task logs cannot mask it`)
	wantAbsent(t, page.Body, "abc<", ">abc")

	long := wantSecretRedirect(t, c.post("/settings/secrets/"+id, url.Values{"csrf": {csrf}, "name": {"SHORT"}, "value": {"long enough"}, "scope": {"all"}}), "secret-saved")
	page = c.get("/settings/secrets?ok=secret-saved&secret=" + long)
	wantContains(t, page.Body, "Secret SHORT saved.")
	wantAbsent(t, page.Body, "short-value")

	// Forged links: another id, a name that is no name, a warning
	// without a secret.
	for _, q := range []string{"ok=secret-saved&secret=sec_nosuchsecretxxxxxxxxx", "ok=secret-deleted&name=%3Cb%3Ehacked", "warn=short"} {
		page = c.get("/settings/secrets?" + q)
		wantStatus(t, page, http.StatusOK)
		wantContains(t, page.Body, "<h1>Secrets</h1>")
		wantAbsent(t, page.Body, "hacked", "short-value", `class="changed"`, "Secret SHORT")
	}
	page = c.get("/settings/secrets?ok=secret-deleted&name=OLD_NAME")
	wantContains(t, page.Body, "Secret OLD_NAME deleted.")
}

// The Secrets page filters by scope and profile and sorts, with query
// parameters (no JavaScript); an override links to the secret it
// overrides; a locked name is marked.
func TestSecretsFilterAndSort(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	builder, reviewer := s.mustProfile(t, "builder"), s.mustProfile(t, "reviewer")
	mk := func(name string, scope vault.Scope, ids ...string) *vault.Secret {
		t.Helper()
		sec, err := s.svc.CreateSecret(ctx, s.userID, vault.SecretInput{Name: name, Value: "value-" + name, Scope: scope, ProfileIDs: ids})
		if err != nil {
			t.Fatal(err)
		}
		return sec
	}
	allTok := mk("API_TOKEN", vault.ScopeAll)
	over := mk("API_TOKEN", vault.ScopeAgents, builder.ID)
	mk("ZED", vault.ScopeAll)
	mk("BETA", vault.ScopeAgents, reviewer.ID)
	c := s.client(t)
	c.signIn()
	order := func(path string) string {
		t.Helper()
		page := c.get(path)
		wantStatus(t, page, http.StatusOK)
		var names []string
		for _, part := range strings.Split(page.Body, `data-name="`)[1:] {
			names = append(names, part[:strings.IndexByte(part, '"')])
		}
		return strings.Join(names, " ")
	}
	for path, want := range map[string]string{
		"/settings/secrets":                                         "API_TOKEN API_TOKEN BETA ZED",
		"/settings/secrets?scope=agents":                            "API_TOKEN BETA",
		"/settings/secrets?scope=all":                               "API_TOKEN ZED",
		"/settings/secrets?profile=" + reviewer.ID:                  "API_TOKEN BETA ZED",
		"/settings/secrets?profile=" + builder.ID + "&scope=agents": "API_TOKEN",
		"/settings/secrets?sort=updated":                            "BETA ZED API_TOKEN API_TOKEN",
		"/settings/secrets?sort=scope":                              "API_TOKEN ZED API_TOKEN BETA",
		"/settings/secrets?q=TOKEN&scope=bogus&sort=bogus":          "API_TOKEN API_TOKEN",
	} {
		if got := order(path); got != want {
			t.Errorf("%s: rows %q, want %q", path, got, want)
		}
	}
	page := c.get("/settings/secrets?scope=agents")
	wantContains(t, page.Body, `<option value="agents" selected>`,
		`overrides <a href="/settings/secrets?q=API_TOKEN&amp;scope=all#secret-`+allTok.ID+`" class="overrides">API_TOKEN for all profiles</a>`)
	page = c.get("/settings/secrets")
	wantContains(t, page.Body, `<tr id="secret-`+over.ID+`"`, `overrides <a href="#secret-`+allTok.ID+`" class="overrides">`)
	wantAbsent(t, page.Body, "badge locked")
	if strings.Count(page.Body, `class="overrides"`) != 1 {
		t.Fatal("a secret that overrides nothing links to an override")
	}
}

// A locked name (the operator's) is marked on the Secrets page.
func TestSecretsLockedNameMarked(t *testing.T) {
	s := newStack(t, stackOptions{names: vault.NamePolicy{Locked: []string{"PLATFORM_URL"}}})
	// Saved before the operator locked the name: by a vault on the same
	// store and keys without the lock.
	before := vault.NewService(s.store, s.keys, vault.Options{})
	if _, err := before.CreateSecret(context.Background(), s.userID, vault.SecretInput{Name: "PLATFORM_URL", Value: "https://x"}); err != nil {
		t.Fatal(err)
	}
	c := s.client(t)
	c.signIn()
	page := c.get("/settings/secrets")
	wantStatus(t, page, http.StatusOK)
	wantContains(t, page.Body, `data-name="PLATFORM_URL"`, `<span class="badge locked"`, "locked by the operator")
	add := c.get("/settings/secrets/new")
	wantContains(t, add.Body, "Locked by the operator (always the platform’s value): <code>PLATFORM_URL</code>")
}

// A finished task's page says how it ended: no "Task queued." notice
// from the link that started it, no "No output yet." once it finished;
// the tasks list shows prompts, cut, not ids.
func TestTaskPagesAfterTheEnd(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	p := s.mustProfile(t, "builder")
	long := "Review every open pull request of the payments service and write a summary of the risky changes for the on-call engineer\nsecond line"
	failed, err := s.orch.CreateTask(ctx, s.userID, p.ID, long)
	if err != nil {
		t.Fatal(err)
	}
	c := s.client(t)
	c.signIn()
	page := c.get("/tasks/" + failed.ID + "?ok=task-started")
	wantStatus(t, page, http.StatusOK)
	wantContains(t, page.Body, "Task queued.", `data-follow=`) // queued: the notice and the live log
	finish(t, s, failed.ID, "failed", "the image could not be pulled")
	page = c.get("/tasks/" + failed.ID + "?ok=task-started")
	wantStatus(t, page, http.StatusOK)
	wantContains(t, page.Body, `id="task-status">failed`, "the image could not be pulled", `id="log-empty">The task failed without writing any output.`)
	wantAbsent(t, page.Body, "Task queued.", `class="flash"`, `data-follow=`, `<pre class="log"`)

	list := c.get("/tasks")
	wantStatus(t, list, http.StatusOK)
	cut := "Review every open pull request of the payments service and write a summary of t…"
	wantContains(t, list.Body, `<a href="/tasks/`+failed.ID+`">`+cut+`<span class="visually-hidden"> (task `+failed.ID+`)</span></a>`)
	wantAbsent(t, list.Body, "on-call engineer", "second line")
}

// An import whose lines collide with the user's secrets is a 409 that
// names the other secret's profiles, not its id; nothing is imported.
func TestImportConflictNamesProfiles(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	builder := s.mustProfile(t, "builder")
	if _, err := s.svc.CreateSecret(ctx, s.userID, vault.SecretInput{Name: "API_TOKEN", Value: "old-value-Ty5", Scope: vault.ScopeAgents, ProfileIDs: []string{builder.ID, s.mustProfile(t, "other").ID}}); err != nil {
		t.Fatal(err)
	}
	c := s.client(t)
	c.signIn()
	res := c.post("/settings/secrets/import", url.Values{"csrf": {c.csrf("/settings/secrets/import")}, "env": {"NEW_ONE=new-value-Gh6\r\nAPI_TOKEN=new-value-Jk7\r\n"},
		"scope": {"agents"}, "profile_ids": {builder.ID}})
	wantStatus(t, res, http.StatusConflict)
	wantContains(t, res.Body, `<li data-line="2">Line 2: Another secret API_TOKEN already goes to builder`)
	wantAbsent(t, res.Body, "sec_", "new-value-Gh6", "new-value-Jk7")
	if n := len(s.secretsByName(t)); n != 1 {
		t.Fatalf("%d secrets after a refused import, want 1", n)
	}
}

// Every refused form opens on its error summary: focus by autofocus (no
// script), each error a link to its field, the rule in words.
func TestErrorSummaries(t *testing.T) {
	s := newStack(t)
	c := s.client(t)
	c.signIn()
	csrf := c.csrf("/profiles/new")
	res := c.post("/profiles", url.Values{"csrf": {csrf}, "name": {"p"}, "image": {"busybox"}, "env": {"lower=x"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, res.Body, `id="error-summary" role="alert" tabindex="-1" autofocus`,
		`<a href="#profile-env">Env: line 1: a name must use only upper-case letters, digits and underscores, not starting with a digit</a>`)
	res = c.post("/tasks", url.Values{"csrf": {csrf}, "profile_id": {""}, "prompt": {"x"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, res.Body, `id="error-summary" role="alert" tabindex="-1" autofocus`, `<a href="#task-profile">Profile: is required</a>`)
	res = c.post("/settings/secrets", url.Values{"csrf": {csrf}, "name": {"9LIVES"}, "value": {""}, "scope": {"all"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, res.Body, `<a href="#secret-name">Name: must use only upper-case letters`, `<a href="#secret-value">Value: is required`)
	wantAbsent(t, res.Body, "^[A-Z_]")
	// A page that is not a refused form has no summary.
	wantAbsent(t, c.get("/settings/secrets/new").Body, `id="error-summary"`)
}

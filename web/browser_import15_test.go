package web_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/envvault/envvault/vault"
)

// The .env a test pastes: a comment, a multi-line quoted PEM, and, in bad,
// a third line that is no NAME=value and a lower-case name on line 7.
const (
	envGood = "# deploy keys\nDEPLOY_TOKEN=canary-deploy-Hy6\nDEPLOY_KEY=\"-----BEGIN KEY-----\ncanary-pem-Jk2\n-----END KEY-----\"\nexport REGION=eu-west-canary-Mn5\n"
	envBad  = "# deploy keys\nDEPLOY_TOKEN=canary-deploy-Hy6\ncanary-loose-line-Zx1\nDEPLOY_KEY=\"-----BEGIN KEY-----\ncanary-pem-Jk2\n-----END KEY-----\"\nlower_name=canary-lower-Cv3\nexport REGION=eu-west-canary-Mn5\n"
)

var envCanaries = []string{"canary-deploy-Hy6", "canary-pem-Jk2", "eu-west-canary-Mn5", "canary-loose-line-Zx1", "canary-lower-Cv3"}

// checkImportRefused checks the page of a refused import: every bad line
// by number, in words, the focus on the error summary, nothing imported,
// the textarea empty.
func checkImportRefused(t *testing.T, s *stack, b *browser, focus bool) {
	t.Helper()
	lines := b.text("#import-lines")
	for _, want := range []string{"Line 3: expected NAME=value", "Line 7: name must use only upper-case letters, digits and underscores"} {
		if !strings.Contains(lines, want) {
			t.Fatalf("the refused import says %q, want %q", lines, want)
		}
	}
	if strings.Contains(lines, "^[A-Z") || strings.Count(lines, "Line ") != 2 {
		t.Fatalf("the refused import lists %q", lines)
	}
	if got := b.text("#import-read"); !strings.Contains(got, "line 2: DEPLOY_TOKEN") || !strings.Contains(got, "line 4: DEPLOY_KEY") || !strings.Contains(got, "line 8: REGION") {
		t.Fatalf("the names read: %q", got)
	}
	if focus {
		if id := js[string](b, `document.activeElement.id`); id != "error-summary" {
			t.Fatalf("after the refused import the focus is on %q, want the error summary", id)
		}
	}
	if v := b.value("#import-env"); v != "" {
		t.Fatal("the refused import rendered the pasted text back")
	}
	if n := len(s.secretsByName(t)); n != 0 {
		t.Fatalf("a refused import added %d secrets", n)
	}
}

// wantImported checks that the store holds envGood's three values, for a
// profile that has no override.
func wantImported(t *testing.T, s *stack, profileID string) {
	t.Helper()
	env, err := s.svc.GetDecryptedForProfile(context.Background(), s.userID, profileID)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"DEPLOY_TOKEN": "canary-deploy-Hy6", "DEPLOY_KEY": "-----BEGIN KEY-----\ncanary-pem-Jk2\n-----END KEY-----", "REGION": "eu-west-canary-Mn5"} {
		if env[name] != want {
			t.Errorf("%s: a task gets %d bytes, want %d", name, len(env[name]), len(want))
		}
	}
}

// A pasted .env with bad lines adds nothing and names each line, never
// its value; fixed, it adds everything. Keyboard only, with JavaScript;
// then the same with JavaScript off.
func TestBrowserImport(t *testing.T) {
	s := newStack(t)
	builder := s.mustProfile(t, "builder")
	b := newBrowser(t, s)
	b.do(chromedp.EmulateViewport(1280, 1000))
	b.signIn()

	// Keyboard only: Tab to each control, type, Enter.
	b.do(chromedp.Navigate(s.URL+"/settings/secrets"), chromedp.WaitVisible(chromedp.ID("import-secrets")))
	b.tabTo("#import-secrets")
	b.do(chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.ID("import-env")))
	b.tabTo("#import-env")
	b.do(chromedp.KeyEvent(envBad))
	b.tabTo("#import-submit")
	b.do(chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.ID("error-summary")))
	checkImportRefused(t, s, b, true)
	b.findDocument("main", http.StatusUnprocessableEntity, `id="import-lines"`)
	b.tabTo("#import-env")
	b.do(chromedp.KeyEvent(envGood))
	b.tabTo("#import-submit")
	b.do(chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS(`tr[data-name="DEPLOY_KEY"]`)))
	if got := b.text("p.flash"); got != "Imported: 3 added, 0 updated, 0 unchanged." {
		t.Fatalf("flash %q", got)
	}
	wantImported(t, s, builder.ID)
	b.screenshot("import.png")

	// JavaScript off: the same, for selected agents, over the secrets
	// just added (agents secrets of their own: 3 more).
	nojs := b.tab()
	nojs.setScripts(false)
	nojs.do(chromedp.Navigate(s.URL+"/settings/secrets/import"), chromedp.WaitReady(chromedp.ID("import-env")),
		chromedp.SendKeys(chromedp.ID("import-env"), envBad),
		chromedp.Click(chromedp.ID("import-scope-agents")),
		chromedp.Click(chromedp.ID("import-profile-"+builder.ID)),
		chromedp.Click(chromedp.ID("import-submit")),
		chromedp.WaitReady(chromedp.ID("error-summary")))
	if n := len(s.secretsByName(t)); n != 3 {
		t.Fatalf("%d secrets after a refused import, want the 3 of before", n)
	}
	lines := nojs.text("#import-lines")
	if !strings.Contains(lines, "Line 3") || !strings.Contains(lines, "Line 7") {
		t.Fatalf("without JavaScript the refused import says %q", lines)
	}
	if attrs := run(nojs, chromedp.Attributes(chromedp.ID("import-profile-"+builder.ID))); attrs["checked"] == "" && !hasKey(attrs, "checked") {
		t.Fatal("the refused import forgot the ticked agent")
	}
	nojs.do(chromedp.SendKeys(chromedp.ID("import-env"), envGood),
		chromedp.Click(chromedp.ID("import-submit")),
		chromedp.WaitReady(chromedp.CSS("p.flash")))
	if got := nojs.text("p.flash"); got != "Imported: 3 added, 0 updated, 0 unchanged." {
		t.Fatalf("without JavaScript: flash %q", got)
	}
	page, err := s.svc.Secrets(context.Background(), s.userID, vault.ListOptions{Limit: vault.MaxPageLimit})
	if err != nil || len(page.Items) != 6 {
		t.Fatalf("%d secrets after both imports (%v), want 6", len(page.Items), err)
	}
	wantImported(t, s, builder.ID)
	nojs.findDocument("no-JavaScript", http.StatusUnprocessableEntity, `id="import-lines"`)
	noCanary(t, s, map[string]*browser{"main": b, "no-JavaScript": nojs}, envCanaries...)
}

func hasKey(m map[string]string, k string) bool { _, ok := m[k]; return ok }

// A rollback from the version panel, asked for and confirmed by keyboard
// alone, changes what the next task receives; with JavaScript off too.
func TestBrowserRollback(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	builder := s.mustProfile(t, "builder")
	sec, err := s.svc.CreateSecret(ctx, s.userID, vault.SecretInput{Name: "DB_PASSWORD", Value: "canary-v1-Pw8"})
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, s)
	b.do(chromedp.EmulateViewport(1280, 1000))
	b.signIn()
	// Version 2, saved through the dashboard: the panel names its token.
	b.do(chromedp.Navigate(s.URL+"/settings/secrets/"+sec.ID+"/edit"), chromedp.WaitVisible(chromedp.ID("secret-value")),
		chromedp.SendKeys(chromedp.ID("secret-value"), "canary-v2-Qw9"),
		chromedp.Click(chromedp.CSS(`#secret-form button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS("p.flash")))
	release := func() string {
		t.Helper()
		task, err := s.orch.CreateTask(ctx, s.userID, builder.ID, "print the password")
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.svc.ReleaseForTask(ctx, s.userID, vault.TaskRelease{TaskID: task.ID, ProfileID: builder.ID})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range got {
			if r.Name == "DB_PASSWORD" {
				return r.Value
			}
		}
		return ""
	}
	if got := release(); got != "canary-v2-Qw9" {
		t.Fatal("before the rollback the next task does not get version 2")
	}

	b.do(chromedp.Navigate(s.URL+"/settings/secrets"), chromedp.WaitVisible(chromedp.CSS(`tr[data-name="DB_PASSWORD"]`)))
	b.tabTo(`tr[data-name="DB_PASSWORD"] a.history`)
	b.do(chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.ID("version-list")))
	panel := b.text("#version-list")
	tokenID, _, _ := strings.Cut(s.token, ".")
	if !strings.Contains(panel, "v2") || !strings.Contains(panel, "current") || !strings.Contains(panel, "v1") ||
		!strings.Contains(panel, vault.InitialTokenName+" "+tokenID) {
		t.Fatalf("the version panel shows %q, want v2 current saved by token %s (%s) and v1", panel, vault.InitialTokenName, tokenID)
	}
	if w := js[[]int](b, `(w => [w.scrollWidth, w.clientWidth])(document.querySelector("#versions .table-wrap"))`); w[0] > w[1] {
		t.Fatalf("the version panel is %d px wide in %d px: its actions are cut off", w[0], w[1])
	}
	if !js[bool](b, `!!document.querySelector("#version-2 time[datetime][title]")`) {
		t.Fatal("the version panel's times have no exact time")
	}
	b.tabTo(`#version-1 a.rollback`)
	b.do(chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.ID("confirm-rollback")))
	if h := b.text("h1"); h != "Roll back DB_PASSWORD to version 1?" {
		t.Fatalf("the confirmation asks %q", h)
	}
	if got := release(); got != "canary-v2-Qw9" {
		t.Fatal("asking to confirm rolled back")
	}
	b.tabTo("#confirm-rollback")
	b.do(chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS("#version-3.current")))
	if got := b.text("p.flash"); !strings.Contains(got, "version 1’s value is now current, as version 3") {
		t.Fatalf("flash %q", got)
	}
	if got := release(); got != "canary-v1-Pw8" {
		t.Fatal("after the rollback the next task does not get version 1's value")
	}

	// JavaScript off: back to version 2's value, now version 4.
	nojs := b.tab()
	nojs.setScripts(false)
	nojs.do(chromedp.Navigate(s.URL+"/settings/secrets/"+sec.ID+"/edit"), chromedp.WaitReady(chromedp.ID("version-list")))
	// Without JavaScript the value field is a plain textarea: no toggle,
	// nothing masked.
	if js[bool](nojs, `document.querySelector(".toggle-value") !== null || document.getElementById("secret-value").classList.contains("masked")`) {
		t.Fatal("without JavaScript the value field is masked or has a toggle")
	}
	nojs.do(chromedp.Click(chromedp.CSS(`#version-2 a.rollback`)), chromedp.WaitReady(chromedp.ID("confirm-rollback")),
		chromedp.Click(chromedp.ID("confirm-rollback")), chromedp.WaitReady(chromedp.CSS("#version-4.current")))
	if got := release(); got != "canary-v2-Qw9" {
		t.Fatal("after the second rollback the next task does not get version 2's value")
	}
	b.findDocument("main", http.StatusOK, `id="confirm-rollback"`)
	noCanary(t, s, map[string]*browser{"main": b, "no-JavaScript": nojs}, "canary-v1-Pw8", "canary-v2-Qw9")
}

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

// signIn signs the tab in with the stack's token, by the login form.
func (b *browser) signIn() {
	b.t.Helper()
	b.do(chromedp.Navigate(b.s.URL+"/login"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), b.s.token),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS("form.signout"))) // only a signed-in page has it
}

// tabTo moves the focus with the Tab key alone until the element sel
// has it, and fails the test if 80 presses do not get there.
func (b *browser) tabTo(sel string) {
	b.t.Helper()
	for range 80 {
		if js[bool](b, `document.activeElement && document.activeElement.matches(`+jsString(sel)+`)`) {
			return
		}
		b.do(chromedp.KeyEvent(kb.Tab))
	}
	b.t.Fatalf("the Tab key never reached %s (focus on %s)", sel, js[string](b, `document.activeElement.outerHTML.slice(0, 120)`))
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

// noCanary fails the test if a page a tab held, or the server log, holds
// one of canaries.
func noCanary(t *testing.T, s *stack, tabs map[string]*browser, canaries ...string) {
	t.Helper()
	for name, tab := range tabs {
		for _, p := range tab.held(name) {
			for _, c := range canaries {
				if strings.Contains(p, c) {
					t.Errorf("a page of the %s tab holds the secret value %q", name, c)
				}
			}
		}
	}
	logs := s.logs.String()
	if !strings.Contains(logs, "web request") {
		t.Fatal("the server log holds no request: nothing to scan")
	}
	for _, c := range canaries {
		if strings.Contains(logs, c) {
			t.Errorf("the server log holds %q", c)
		}
	}
}

// A four-line PEM key typed into the value field, and another pasted
// into it, reach a task byte for byte as the API stores them: line
// breaks as LF (the browser sends CRLF), trailing spaces kept. The field
// is masked while typed, with a toggle to show it.
func TestBrowserMultilineValue(t *testing.T) {
	const (
		pemTyped = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7canaryTyped\nline three ends in two spaces  \n-----END PRIVATE KEY-----\n"
		pemPaste = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBcanaryPastedQ9fZ0\n\tindented line \n-----END EC PRIVATE KEY-----"
	)
	s := newStack(t)
	ctx := context.Background()
	builder := s.mustProfile(t, "builder")
	b := newBrowser(t, s)
	b.do(chromedp.EmulateViewport(1280, 1000))
	b.signIn()

	b.do(chromedp.Click(chromedp.ID("add-secret")), chromedp.WaitVisible(chromedp.ID("add-secret-dialog")),
		chromedp.SendKeys(chromedp.ID("secret-name"), "TLS_KEY"),
		chromedp.SendKeys(chromedp.ID("secret-value"), pemTyped))
	if tag := js[string](b, `document.getElementById("secret-value").tagName`); tag != "TEXTAREA" {
		t.Fatalf("the value field is a %s", tag)
	}
	// Masked while typed; the toggle shows it, and says so.
	if !js[bool](b, `document.getElementById("secret-value").classList.contains("masked") && getComputedStyle(document.getElementById("secret-value")).webkitTextSecurity === "disc"`) {
		t.Fatal("the value being typed is not masked")
	}
	toggle := `#add-secret-dialog .toggle-value`
	if got := js[string](b, `document.querySelector(`+jsString(toggle)+`).getAttribute("aria-pressed")`); got != "false" {
		t.Fatalf("toggle aria-pressed %q before a click", got)
	}
	// By keyboard: Tab to the toggle, Space presses it.
	b.tabTo(toggle)
	b.do(chromedp.KeyEvent(" "))
	if !js[bool](b, `getComputedStyle(document.getElementById("secret-value")).webkitTextSecurity === "none" && document.querySelector(`+jsString(toggle)+`).getAttribute("aria-pressed") === "true"`) {
		t.Fatal("the toggle did not show the value")
	}
	if got := js[string](b, `document.getElementById("secret-value").value`); got != pemTyped {
		t.Fatalf("the field holds %q, want the PEM as typed", got)
	}
	b.do(chromedp.Click(chromedp.ID("scope-all")),
		chromedp.Click(chromedp.CSS(`#add-secret-dialog button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-name="TLS_KEY"].changed`)))
	if got := b.text("p.flash"); got != "Secret TLS_KEY added." {
		t.Fatalf("flash %q", got)
	}
	env, err := s.svc.GetDecryptedForProfile(ctx, s.userID, builder.ID)
	if err != nil || env["TLS_KEY"] != pemTyped {
		t.Fatalf("a task gets %q (%v), want the typed PEM byte for byte", env["TLS_KEY"], err)
	}

	// Pasted: the editing pipeline's insertText, as a paste inserts.
	b.do(chromedp.Click(chromedp.CSS(`tr[data-name="TLS_KEY"] a.edit`)), chromedp.WaitVisible(chromedp.ID("secret-value")),
		chromedp.Focus(chromedp.ID("secret-value")),
		chromedp.Evaluate[chromedp.Void](`document.execCommand("insertText", false, `+jsString(pemPaste)+`)`),
		chromedp.Click(chromedp.CSS(`#secret-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-name="TLS_KEY"].changed`)))
	env, err = s.svc.GetDecryptedForProfile(ctx, s.userID, builder.ID)
	if err != nil || env["TLS_KEY"] != pemPaste {
		t.Fatalf("a task gets %q (%v), want the pasted PEM byte for byte", env["TLS_KEY"], err)
	}
	if sec := s.secretsByName(t)["TLS_KEY"]; sec == nil || sec.Version != 2 {
		t.Fatalf("after the paste: %+v", sec)
	}
	b.findDocument("main", http.StatusOK, "Secret TLS_KEY saved.")
	noCanary(t, s, map[string]*browser{"main": b}, "canaryTyped", "canaryPasted", "two spaces", "indented line")
}

// Deleting an `agents` secret that overrides an `all` one says that its
// profiles fall back to the `all` secret, and they do.
func TestBrowserOverrideDelete(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	builder, reviewer := s.mustProfile(t, "builder"), s.mustProfile(t, "reviewer")
	all, err := s.svc.CreateSecret(ctx, s.userID, vault.SecretInput{Name: "API_TOKEN", Value: "value-for-all-Qe4", Scope: vault.ScopeAll})
	if err != nil {
		t.Fatal(err)
	}
	over, err := s.svc.CreateSecret(ctx, s.userID, vault.SecretInput{Name: "API_TOKEN", Value: "value-for-builder-Rt7", Scope: vault.ScopeAgents, ProfileIDs: []string{builder.ID}})
	if err != nil {
		t.Fatal(err)
	}
	only, err := s.svc.CreateSecret(ctx, s.userID, vault.SecretInput{Name: "REVIEW_ONLY", Value: "value-review-only-Yu8", Scope: vault.ScopeAgents, ProfileIDs: []string{reviewer.ID}})
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, s)
	b.signIn()
	b.do(chromedp.Navigate(s.URL+"/settings/secrets"), chromedp.WaitVisible(chromedp.CSS(`#secret-`+over.ID+` a.overrides`)),
		chromedp.Click(chromedp.CSS(`#secret-`+over.ID+` a.delete`)), chromedp.WaitVisible(chromedp.ID("confirm-delete")))
	fallback := b.text("#delete-fallback")
	if !strings.Contains(fallback, "builder") || !strings.Contains(fallback, "falls back") || !strings.Contains(fallback, "API_TOKEN for all profiles") {
		t.Fatalf("the delete page says %q, want builder falling back to API_TOKEN for all profiles", fallback)
	}
	if href := js[string](b, `document.querySelector("#delete-fallback a").getAttribute("href")`); href != "/settings/secrets/"+all.ID+"/edit" {
		t.Fatalf("the fallback links to %q", href)
	}
	if strings.Contains(b.html(), `id="delete-lose"`) || strings.Contains(b.html(), "will not get") {
		t.Fatal("the delete page says builder loses API_TOKEN")
	}
	b.do(chromedp.Click(chromedp.ID("confirm-delete")), chromedp.WaitVisible(chromedp.CSS("p.flash")))
	env, err := s.svc.GetDecryptedForProfile(ctx, s.userID, builder.ID)
	if err != nil || env["API_TOKEN"] != "value-for-all-Qe4" {
		t.Fatalf("after the delete the builder does not get the all secret (%v)", err)
	}

	// A secret that overrides nothing: its profile loses the name.
	b.do(chromedp.Navigate(s.URL+"/settings/secrets/"+only.ID+"/delete"), chromedp.WaitVisible(chromedp.ID("confirm-delete")))
	if got := b.text("#delete-lose"); !strings.Contains(got, "reviewer") || !strings.Contains(got, "no REVIEW_ONLY at all") {
		t.Fatalf("the delete page of a secret without fallback says %q", got)
	}
	// The `all` secret: the builder, now without an override, loses it;
	// with a new override the reviewer keeps its own.
	if _, err := s.svc.CreateSecret(ctx, s.userID, vault.SecretInput{Name: "API_TOKEN", Value: "value-for-reviewer-Op3", Scope: vault.ScopeAgents, ProfileIDs: []string{reviewer.ID}}); err != nil {
		t.Fatal(err)
	}
	b.do(chromedp.Navigate(s.URL+"/settings/secrets/"+all.ID+"/delete"), chromedp.WaitVisible(chromedp.ID("confirm-delete")))
	if lose, keep := b.text("#delete-lose"), b.text("#delete-keep"); !strings.Contains(lose, "builder") || strings.Contains(lose, "reviewer") || !strings.Contains(keep, "reviewer") {
		t.Fatalf("delete page of the all secret: lose %q, keep %q", lose, keep)
	}
	noCanary(t, s, map[string]*browser{"main": b}, "value-for-all-Qe4", "value-for-builder-Rt7", "value-review-only-Yu8", "value-for-reviewer-Op3")
}

// At 1280 px no secret name wraps mid-name; under "All profiles" the
// agent checklist cannot be ticked (disabled), and "Only selected agents"
// enables it again.
func TestBrowserNamesAndAgentList(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	builder := s.mustProfile(t, "builder")
	for _, name := range []string{"STRIPE_WEBHOOK_SIGNING_SECRET_FOR_PRODUCTION_EU_WEST", "GITHUB_APP_PRIVATE_KEY_FOR_RELEASE_AUTOMATION"} {
		_, err := s.svc.CreateSecret(ctx, s.userID, vault.SecretInput{Name: name, Value: "value-of-" + name,
			Description: "A long description that takes room in its column, as real descriptions of real secrets do, so the table must share its width."})
		if err != nil {
			t.Fatal(err)
		}
	}
	b := newBrowser(t, s)
	b.do(chromedp.EmulateViewport(1280, 900))
	b.signIn()
	b.do(chromedp.Navigate(s.URL+"/settings/secrets"), chromedp.WaitVisible(chromedp.ID("secrets")))
	lines := js[[]int](b, `[...document.querySelectorAll("#secrets code.name")].map(c => c.getClientRects().length)`)
	if len(lines) != 2 || lines[0] != 1 || lines[1] != 1 {
		t.Fatalf("at 1280 px the names take %v lines each, want 1", lines)
	}
	if w := js[[]int](b, `[document.querySelector(".table-wrap").scrollWidth, document.querySelector(".table-wrap").clientWidth]`); w[0] > w[1] {
		t.Fatalf("at 1280 px the table is %d px wide in %d px: its actions are cut off", w[0], w[1])
	}

	b.do(chromedp.Click(chromedp.ID("add-secret")), chromedp.WaitVisible(chromedp.ID("add-secret-dialog")))
	box := "profile-" + builder.ID
	if !js[bool](b, `document.getElementById("scope-all").checked && document.getElementById(`+jsString(box)+`).matches(":disabled")`) {
		t.Fatal("under All profiles the agent checkbox is not disabled")
	}
	b.do(chromedp.Click(chromedp.CSS(`label[for="` + box + `"], label:has(#` + box + `)`)))
	if js[bool](b, `document.getElementById(`+jsString(box)+`).checked`) {
		t.Fatal("a click ticked an agent under All profiles")
	}
	b.do(chromedp.Click(chromedp.ID("scope-agents")), chromedp.Click(chromedp.ID(box)))
	if !js[bool](b, `document.getElementById(`+jsString(box)+`).checked`) {
		t.Fatal("under Only selected agents the agent cannot be ticked")
	}
	// Back to All profiles: the tick stays but is disabled, so it is not
	// sent, and the secret is saved for all profiles.
	b.do(chromedp.Click(chromedp.ID("scope-all")),
		chromedp.SendKeys(chromedp.ID("secret-name"), "SHARED_KEY"), chromedp.SendKeys(chromedp.ID("secret-value"), "value-shared-Kd3"),
		chromedp.Click(chromedp.CSS(`#add-secret-dialog button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-name="SHARED_KEY"]`)))
	if sec := s.secretsByName(t)["SHARED_KEY"]; sec == nil || sec.Scope != vault.ScopeAll || len(sec.ProfileIDs) != 0 {
		t.Fatalf("saved as %+v", sec)
	}
	b.screenshot("secrets-list.png")
}

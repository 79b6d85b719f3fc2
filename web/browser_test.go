package web_test

import (
	"context"
	"flag"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/envvault/envvault/internal/testenv"
	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

// updateDocs makes TestDocsScreenshots write the README's screenshots,
// docs/screenshots/*.png: go test ./web -run TestDocsScreenshots
// -update-docs. It is off by default so that a test run never changes the
// repository.
var updateDocs = flag.Bool("update-docs", false, "write docs/screenshots/*.png (TestDocsScreenshots)")

// browser is one Chromium tab on the stack, with every page it held kept
// for the canary check: each document the tab received (every navigation,
// each hop of a redirect, on any origin), and the DOM after every action.
type browser struct {
	t   *testing.T
	ctx context.Context
	s   *stack

	mu    sync.Mutex
	docs  []document // as received, in order
	pages []string   // the DOM as the tab held it, after each action
}

// document is a response the tab received for a page.
type document struct {
	method, url string
	status      int64
	location    string // of a redirect, whose body the browser never shows
	body        string
}

// record has the tab pause every document response until its body is kept
// (Fetch domain, response stage), so the record holds a page before the
// page is shown: no wait is needed before reading it.
func (b *browser) record() {
	b.t.Helper()
	err := chromedp.Listen(b.ctx, func(ev any) {
		if e, ok := ev.(*fetch.EventRequestPaused); ok {
			go b.keep(e) // a listener must not run commands
		}
	})
	if err != nil {
		b.t.Fatalf("listen to the tab: %v", err)
	}
	_, err = chromedp.Call(b.ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{
		URLPattern: "*", ResourceType: network.ResourceTypeDocument, RequestStage: fetch.RequestStageResponse,
	}}})
	if err != nil {
		b.t.Fatalf("intercept the tab's documents: %v", err)
	}
}

// keep records a paused document and lets it through.
func (b *browser) keep(e *fetch.EventRequestPaused) {
	d := document{method: e.Request.Method, url: e.Request.URL, status: e.ResponseStatusCode}
	for _, h := range e.ResponseHeaders {
		if strings.EqualFold(h.Name, "Location") {
			d.location = h.Value
		}
	}
	// The protocol has no body for a redirect.
	if d.location == "" || d.status < 300 || d.status > 399 {
		res, err := chromedp.Call(b.ctx, fetch.GetResponseBody, fetch.GetResponseBodyParams{RequestID: e.RequestID})
		if err != nil {
			if b.ctx.Err() == nil {
				b.t.Errorf("body of %s %s: %v", d.method, d.url, err)
			}
		} else {
			d.body = string(res.Body)
		}
	}
	b.mu.Lock()
	b.docs = append(b.docs, d)
	b.mu.Unlock()
	if _, err := chromedp.Call(b.ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: e.RequestID}); err != nil && b.ctx.Err() == nil {
		b.t.Errorf("continue %s %s: %v", d.method, d.url, err)
	}
}

// documents returns the documents the tab received so far.
func (b *browser) documents() []document {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.docs)
}

// held returns every page the tab held: the documents it received and the
// DOM after each action. It fails the test if the tab recorded none.
func (b *browser) held(name string) []string {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.docs) == 0 || len(b.pages) == 0 {
		b.t.Fatalf("the %s tab recorded %d documents and %d DOM snapshots: nothing to check", name, len(b.docs), len(b.pages))
	}
	all := slices.Clone(b.pages)
	for _, d := range b.docs {
		all = append(all, d.url+"\n"+d.location+"\n"+d.body)
	}
	return all
}

// findDocument fails the test unless the tab received a document with
// status and a body holding want, and returns it.
func (b *browser) findDocument(name string, status int64, want string) document {
	b.t.Helper()
	docs := b.documents()
	for _, d := range docs {
		if d.status == status && strings.Contains(d.body, want) {
			return d
		}
	}
	var got []string
	for _, d := range docs {
		got = append(got, fmt.Sprintf("%s %s %d (%d bytes)", d.method, d.url, d.status, len(d.body)))
	}
	b.t.Fatalf("the %s tab received no %d document holding %q; it received:\n%s", name, status, want, strings.Join(got, "\n"))
	return document{}
}

// newBrowser starts the system's Chromium, headless, for the test.
func newBrowser(t *testing.T, s *stack) *browser {
	t.Helper()
	chromium := testenv.RequireChromium(t)
	// One bound for the whole test: it stops the browser if a step hangs.
	parent, cancelParent := context.WithTimeout(context.Background(), 3*time.Minute)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 860),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("lang", "en-US"),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to sandbox as root
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(parent, opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		_ = chromedp.Cancel(ctx)
		cancelCtx()
		cancelAlloc()
		cancelParent()
	})
	b := &browser{t: t, ctx: ctx, s: s}
	b.record() // starts the browser
	b.do(chromedp.Navigate("about:blank"))
	return b
}

// tab opens another tab of the same browser: same cookies.
func (b *browser) tab() *browser {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.t.Cleanup(cancel)
	nb := &browser{t: b.t, ctx: ctx, s: b.s}
	nb.record()
	nb.do(chromedp.Navigate("about:blank"))
	return nb
}

// do runs steps, failing the test with the page's address on error, and
// keeps the page the tab then holds.
func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		loc, _ := chromedp.Run(b.ctx, chromedp.Location())
		b.t.Fatalf("browser at %s: %v", loc, err)
	}
	b.html()
}

func run[T any](b *browser, a chromedp.Action[T]) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, a)
	if err != nil {
		loc, _ := chromedp.Run(b.ctx, chromedp.Location())
		b.t.Fatalf("browser at %s: %v", loc, err)
	}
	return v
}

// html returns the page's HTML as the browser holds it, and keeps it.
func (b *browser) html() string {
	b.t.Helper()
	h := run(b, chromedp.OuterHTML(chromedp.CSS("html")))
	b.mu.Lock()
	b.pages = append(b.pages, h)
	b.mu.Unlock()
	return h
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	return run(b, chromedp.Text(chromedp.CSS(sel)))
}

func (b *browser) value(sel string) string {
	b.t.Helper()
	return run(b, chromedp.Value(chromedp.CSS(sel)))
}

func (b *browser) location() string {
	b.t.Helper()
	return run(b, chromedp.Location())
}

// js evaluates an expression in the page.
func js[T any](b *browser, expr string) T {
	b.t.Helper()
	return run(b, chromedp.Evaluate[T](expr))
}

func (b *browser) screenshot(name string) string {
	b.t.Helper()
	png := run(b, chromedp.CaptureScreenshot())
	dir := os.Getenv("ENVVAULT_SCREENSHOT_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "envvault-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
	return path
}

// waitJS waits until a JavaScript expression is true in the page.
func (b *browser) waitJS(expr, failure string) {
	b.t.Helper()
	_, err := chromedp.Run(b.ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		b.t.Fatalf("%s (waiting for %s: %v)", failure, expr, err)
	}
}

// setScripts turns JavaScript on or off in the tab.
func (b *browser) setScripts(on bool) {
	b.t.Helper()
	b.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: !on})
		return err
	}))
}

// The browser test of issue 4: sign in, add a secret for all profiles and
// one for selected agents, see both listed without values, edit a scope,
// replace a value, delete with confirmation, get the error for a
// lower-case name with JavaScript off, and fail a forged cross-site POST.
func TestBrowserSecrets(t *testing.T) {
	const (
		canaryAll     = "canary-all-7Hq2-never-on-a-page"
		canaryAgents  = "canary-agents-Lw9x-never-on-a-page"
		canaryRotated = "canary-rotated-Pz4k-never-on-a-page"
		canaryNoJS    = "canary-nojs-Vb6m-never-on-a-page"
	)
	s := newStack(t)
	ctx := context.Background()
	builder := s.mustProfile(t, "builder")
	b := newBrowser(t, s)
	b.do(chromedp.EmulateViewport(1280, 1000)) // tall enough for the whole Add dialog
	start := time.Now()

	// Sign in.
	b.do(chromedp.Navigate(s.URL+"/settings/secrets"), chromedp.WaitVisible(chromedp.ID("token")))
	if loc := b.location(); loc != s.URL+"/login" {
		t.Fatalf("signed out, /settings/secrets went to %s", loc)
	}
	b.do(chromedp.SendKeys(chromedp.ID("token"), s.token),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("no-secrets")))
	if got := b.text("h1"); got != "Secrets" {
		t.Fatalf("after sign-in: h1 %q", got)
	}

	// A profile made through the Profiles page.
	b.do(chromedp.Navigate(s.URL+"/profiles/new"), chromedp.WaitVisible(chromedp.ID("profile-name")),
		chromedp.SendKeys(chromedp.ID("profile-name"), "reviewer"),
		chromedp.SendKeys(chromedp.ID("profile-image"), "busybox:latest"),
		chromedp.SendKeys(chromedp.ID("profile-command"), "sh\n-c\nenv"),
		chromedp.SendKeys(chromedp.ID("profile-env"), "MODE=review"),
		chromedp.Click(chromedp.CSS(`#profile-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("env-preview")))
	var reviewer *vault.Profile
	page, err := s.svc.Profiles(ctx, s.userID, vault.ListOptions{Query: "reviewer"})
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("reviewer profile: %v %v", page.Items, err)
	}
	reviewer = page.Items[0]
	if strings.Join(reviewer.Command, "|") != "sh|-c|env" || reviewer.Env["MODE"] != "review" {
		t.Fatalf("reviewer as stored: %+v", reviewer)
	}

	// Add, in the dialog, a secret for all profiles. The name is checked
	// as it is typed.
	b.do(chromedp.Navigate(s.URL+"/settings/secrets"), chromedp.WaitVisible(chromedp.ID("add-secret")),
		chromedp.Click(chromedp.ID("add-secret")), chromedp.WaitVisible(chromedp.ID("add-secret-dialog")))
	if !js[bool](b, `document.getElementById("add-secret-dialog").open`) || b.location() != s.URL+"/settings/secrets" {
		t.Fatal("Add did not open the dialog on the Secrets page")
	}
	if id := js[string](b, `document.activeElement.id`); id != "secret-name" {
		t.Fatalf("the dialog put the focus on %q, want the name field", id)
	}
	b.do(chromedp.SendKeys(chromedp.ID("secret-name"), "github_token"))
	if msg := b.text("#secret-name-error"); !strings.Contains(msg, "must use only upper-case letters, digits and underscores") || !strings.Contains(msg, "Did you mean GITHUB_TOKEN?") {
		t.Fatalf("live name check: %q", msg)
	}
	if js[bool](b, `document.getElementById("secret-name").checkValidity()`) {
		t.Fatal("a lower-case name passes the live check")
	}
	b.do(chromedp.Evaluate[chromedp.Void](`(() => { const i = document.getElementById("secret-name"); i.value = ""; i.dispatchEvent(new Event("input")); })()`),
		chromedp.SendKeys(chromedp.ID("secret-name"), "GITHUB_TOKEN"))
	if msg := b.text("#secret-name-error"); msg != "" {
		t.Fatalf("live name check of a good name: %q", msg)
	}
	b.do(chromedp.SendKeys(chromedp.ID("secret-value"), canaryAll),
		chromedp.SendKeys(chromedp.ID("secret-description"), "Org-wide GitHub PAT"),
		chromedp.Click(chromedp.ID("scope-all")),
		chromedp.Click(chromedp.CSS(`#add-secret-dialog button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-name="GITHUB_TOKEN"]`)))

	// Escape closes the dialog and forgets what was typed.
	b.do(chromedp.Click(chromedp.ID("add-secret")), chromedp.WaitVisible(chromedp.ID("add-secret-dialog")),
		chromedp.SendKeys(chromedp.ID("secret-value"), "typed-then-abandoned"),
		chromedp.KeyEvent(kb.Escape), chromedp.WaitNotVisible(chromedp.ID("add-secret-dialog")))
	// The dialog's close event, which resets the form, comes after it is
	// hidden.
	b.waitJS(`document.getElementById("secret-value").value === "" && document.activeElement.id === "add-secret"`,
		"a closed dialog keeps the typed value, or the focus is not back on Add")

	// Add one for selected agents; the screenshot is of this form.
	b.do(chromedp.Click(chromedp.ID("add-secret")), chromedp.WaitVisible(chromedp.ID("add-secret-dialog")),
		chromedp.SendKeys(chromedp.ID("secret-name"), "STRIPE_WEBHOOK_SECRET"),
		chromedp.SendKeys(chromedp.ID("secret-value"), canaryAgents),
		chromedp.SendKeys(chromedp.ID("secret-description"), "Signs Stripe webhooks for the builder"),
		chromedp.Click(chromedp.ID("scope-agents")),
		chromedp.Click(chromedp.ID("profile-"+builder.ID)))
	b.screenshot("secrets-add.png")
	b.do(chromedp.Click(chromedp.CSS(`#add-secret-dialog button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-name="STRIPE_WEBHOOK_SECRET"]`)))

	// Both listed, by name, scope and granted profile names; no value.
	list := b.html()
	for _, want := range []string{"GITHUB_TOKEN", "STRIPE_WEBHOOK_SECRET", "All profiles", "Only selected agents",
		"Org-wide GitHub PAT", "Signs Stripe webhooks for the builder", `<span class="tag">builder</span>`} {
		if !strings.Contains(list, want) {
			t.Fatalf("the Secrets page lacks %q", want)
		}
	}
	if got := b.text(`tr[data-name="STRIPE_WEBHOOK_SECRET"] .grants`); strings.TrimSpace(got) != "builder" {
		t.Fatalf("STRIPE_WEBHOOK_SECRET granted to %q", got)
	}
	secs := s.secretsByName(t)
	all, agents := secs["GITHUB_TOKEN"], secs["STRIPE_WEBHOOK_SECRET"]
	if all == nil || agents == nil || all.Scope != vault.ScopeAll || agents.Scope != vault.ScopeAgents ||
		len(agents.ProfileIDs) != 1 || agents.ProfileIDs[0] != builder.ID {
		t.Fatalf("as stored: %+v %+v", all, agents)
	}

	// Edit the scope: GITHUB_TOKEN for the reviewer only.
	b.do(chromedp.Click(chromedp.CSS(`tr[data-name="GITHUB_TOKEN"] a.edit`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/settings/secrets/`+all.ID+`"]`)))
	if v := b.value("#secret-value"); v != "" {
		t.Fatal("the edit form holds a value")
	}
	if v := b.value("#secret-name"); v != "GITHUB_TOKEN" {
		t.Fatalf("edit form name %q", v)
	}
	b.html()
	b.do(chromedp.Click(chromedp.ID("scope-agents")), chromedp.Click(chromedp.ID("profile-"+reviewer.ID)),
		chromedp.Click(chromedp.CSS(`#secret-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-name="GITHUB_TOKEN"] .badge.agents`)))
	if got := b.text("p.flash"); got != "Secret GITHUB_TOKEN saved." {
		t.Fatalf("flash %q", got)
	}
	got, err := s.svc.Secret(ctx, s.userID, all.ID)
	if err != nil || got.Scope != vault.ScopeAgents || len(got.ProfileIDs) != 1 || got.ProfileIDs[0] != reviewer.ID || got.Version != 1 {
		t.Fatalf("after the scope edit: %+v %v", got, err)
	}
	env, err := s.svc.GetDecryptedForProfile(ctx, s.userID, reviewer.ID)
	if err != nil || env["GITHUB_TOKEN"] != canaryAll {
		t.Fatalf("the scope edit changed the value (%v)", err)
	}

	// Replace a value.
	b.do(chromedp.Click(chromedp.CSS(`tr[data-name="STRIPE_WEBHOOK_SECRET"] a.edit`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/settings/secrets/`+agents.ID+`"]`)),
		chromedp.SendKeys(chromedp.ID("secret-value"), canaryRotated),
		chromedp.Click(chromedp.CSS(`#secret-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS("p.flash")))
	env, err = s.svc.GetDecryptedForProfile(ctx, s.userID, builder.ID)
	if err != nil || env["STRIPE_WEBHOOK_SECRET"] != canaryRotated {
		t.Fatalf("the value was not replaced (%v)", err)
	}
	if _, ok := env["GITHUB_TOKEN"]; ok {
		t.Fatal("the builder still gets GITHUB_TOKEN")
	}
	b.html()

	// Delete asks first.
	b.do(chromedp.Click(chromedp.CSS(`tr[data-name="GITHUB_TOKEN"] a.delete`)),
		chromedp.WaitVisible(chromedp.ID("confirm-delete")))
	if _, err := s.svc.Secret(ctx, s.userID, all.ID); err != nil {
		t.Fatalf("asking to confirm deleted the secret: %v", err)
	}
	if h := b.html(); !strings.Contains(h, "reviewer") {
		t.Fatal("the confirm page does not say who receives the secret")
	}
	b.do(chromedp.Click(chromedp.ID("confirm-delete")), chromedp.WaitVisible(chromedp.CSS("p.flash")))
	if got := b.text("p.flash"); got != "Secret GITHUB_TOKEN deleted." {
		t.Fatalf("flash %q", got)
	}
	if strings.Contains(b.html(), `data-name="GITHUB_TOKEN"`) {
		t.Fatal("the deleted secret is still listed")
	}
	if _, err := s.svc.Secret(ctx, s.userID, all.ID); vault.ErrorCode(err) != vault.ENOTFOUND {
		t.Fatalf("after delete: %v", err)
	}

	// With JavaScript off: Add is a page, and the server's error for a
	// lower-case name shows next to the field with the other input kept.
	nojs := b.tab()
	nojs.setScripts(false)
	nojs.do(chromedp.Navigate(s.URL+"/settings/secrets"), chromedp.WaitReady(chromedp.ID("add-secret")),
		chromedp.Click(chromedp.ID("add-secret")), chromedp.WaitReady(chromedp.CSS(`section.narrow #secret-form`)))
	if loc := nojs.location(); loc != s.URL+"/settings/secrets/new" {
		t.Fatalf("without JavaScript, Add went to %s", loc)
	}
	nojs.do(chromedp.SendKeys(chromedp.ID("secret-name"), "stripe_key"),
		chromedp.SendKeys(chromedp.ID("secret-value"), canaryNoJS),
		chromedp.SendKeys(chromedp.ID("secret-description"), "kept across the error"),
		chromedp.Click(chromedp.ID("scope-agents")),
		chromedp.Click(chromedp.ID("profile-"+reviewer.ID)),
		chromedp.Click(chromedp.CSS(`#secret-form button[type=submit]`)),
		chromedp.WaitReady(chromedp.CSS(`.field.invalid #secret-name[aria-invalid="true"]`)))
	field := run(nojs, chromedp.OuterHTML(chromedp.CSS(`.field:has(> #secret-name)`)))
	if !strings.Contains(field, `id="secret-name-error"`) || !strings.Contains(html.UnescapeString(field), "must use only upper-case letters, digits and underscores") {
		t.Fatalf("the name error is not next to the name field:\n%s", field)
	}
	if v := nojs.value("#secret-name"); v != "stripe_key" {
		t.Fatalf("name kept as %q", v)
	}
	if v := nojs.value("#secret-description"); v != "kept across the error" {
		t.Fatalf("description kept as %q", v)
	}
	if v := nojs.value("#secret-value"); v != "" {
		t.Fatal("the value field was rendered back with the value")
	}
	if msg := nojs.text("#secret-value-error"); !strings.Contains(msg, "not kept") {
		t.Fatalf("the value field does not say the value was not kept: %q", msg)
	}
	for sel, want := range map[string]bool{"#scope-agents": true, "#scope-all": false, "#profile-" + reviewer.ID: true, "#profile-" + builder.ID: false} {
		attrs := run(nojs, chromedp.Attributes(chromedp.CSS(sel)))
		if _, checked := attrs["checked"]; checked != want {
			t.Errorf("%s checked = %v, want %v", sel, checked, want)
		}
	}
	nojs.html()
	if n := len(s.secretsByName(t)); n != 1 {
		t.Fatalf("%d secrets after the refused form, want 1", n)
	}

	// A forged cross-site POST: a page on another origin (same host, other
	// port, so the SameSite cookie is sent) posts to the dashboard.
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>cute cats</title>
<form method="post" action="%[1]s/settings/secrets/%[2]s/delete"><input type="hidden" name="csrf" value="guessed"><button id="delete">Win a prize</button></form>
<form method="post" action="%[1]s/settings/secrets"><input type="hidden" name="name" value="PWNED"><input type="hidden" name="value" value="attacker-value"><input type="hidden" name="scope" value="all"><button id="create">Win another</button></form>`,
			s.URL, agents.ID)
	}))
	t.Cleanup(attacker.Close)
	evil := b.tab()
	for _, button := range []string{"delete", "create"} {
		evil.do(chromedp.Navigate(attacker.URL), chromedp.WaitVisible(chromedp.ID(button)),
			chromedp.Click(chromedp.ID(button)), chromedp.WaitVisible(chromedp.CSS("p.alert")))
		if !strings.HasPrefix(evil.location(), s.URL+"/") {
			t.Fatalf("the forged form did not reach the dashboard: at %s", evil.location())
		}
		if msg := evil.text("p.alert"); !strings.Contains(msg, "came from another site and was refused") {
			t.Fatalf("forged %s: %q", button, msg)
		}
	}
	if secs := s.secretsByName(t); len(secs) != 1 || secs["STRIPE_WEBHOOK_SECRET"] == nil {
		t.Fatalf("the forged POSTs changed the secrets: %v", secs)
	}
	env, err = s.svc.GetDecryptedForProfile(ctx, s.userID, builder.ID)
	if err != nil || env["STRIPE_WEBHOOK_SECRET"] != canaryRotated {
		t.Fatal("the forged POSTs changed a value")
	}
	if !strings.Contains(s.logs.String(), "cross-origin request refused") {
		t.Fatal("the refused forgery is not logged")
	}

	// At phone width the page fits the screen.
	b.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)),
		chromedp.Navigate(s.URL+"/settings/secrets"), chromedp.WaitVisible(chromedp.ID("add-secret")))
	if !js[bool](b, `document.documentElement.scrollWidth <= window.innerWidth`) {
		t.Fatalf("the Secrets page is wider than a phone: %d > %d",
			js[int](b, `document.documentElement.scrollWidth`), js[int](b, `window.innerWidth`))
	}
	b.screenshot("secrets-phone.png")
	b.do(chromedp.ResetViewport())

	// Sign out.
	b.do(chromedp.Click(chromedp.CSS(`form.signout button`)), chromedp.WaitVisible(chromedp.ID("token")))
	b.do(chromedp.Navigate(s.URL+"/settings/secrets"), chromedp.WaitVisible(chromedp.ID("token")))
	if loc := b.location(); loc != s.URL+"/login" {
		t.Fatalf("signed out, /settings/secrets went to %s", loc)
	}

	// The record holds what each tab was shown: the pages after redirects
	// (sign-in, a saved form), the refused form, both sides of the forgery.
	if d := b.findDocument("main", http.StatusSeeOther, ""); d.location == "" {
		t.Fatalf("the redirect from %s names no Location", d.url)
	}
	b.findDocument("main", http.StatusOK, "Secret GITHUB_TOKEN saved.")
	b.findDocument("main", http.StatusOK, `id="confirm-delete"`)
	nojs.findDocument("no-JavaScript", http.StatusUnprocessableEntity, `id="secret-name-error"`)
	evil.findDocument("forged-request", http.StatusOK, "attacker-value")
	evil.findDocument("forged-request", http.StatusForbidden, "came from another site and was refused")

	// No value anywhere: not in a page the browser held, not in a log line.
	for name, tab := range map[string]*browser{"main": b, "no-JavaScript": nojs, "forged-request": evil} {
		pages := tab.held(name)
		// The scan sees what the pages hold: the attacker's own value is
		// in the forged-request tab's record.
		if name == "forged-request" && !slices.ContainsFunc(pages, func(p string) bool { return strings.Contains(p, "attacker-value") }) {
			t.Fatal("the forged-request tab's record lacks the attacker's page")
		}
		for _, p := range pages {
			for _, c := range []string{canaryAll, canaryAgents, canaryRotated, canaryNoJS} {
				if strings.Contains(p, c) {
					t.Errorf("a page of the %s tab holds the secret value %q", name, c)
				}
			}
		}
	}
	logs := s.logs.String()
	for _, c := range []string{canaryAll, canaryAgents, canaryRotated, canaryNoJS, s.token} {
		if strings.Contains(logs, c) {
			t.Errorf("the server log holds %q", c)
		}
	}
	t.Logf("browser steps took %v", time.Since(start).Round(time.Millisecond))
}

// A running task's page streams its log in with JavaScript, and reloads
// to show the end when the task finishes. The task's life is played by
// the store (no Docker here): the stream is the dashboard's own.
func TestBrowserTaskLogFollow(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	p := s.mustProfile(t, "builder")
	task, err := s.orch.CreateTask(ctx, s.userID, p.ID, "follow me")
	if err != nil {
		t.Fatal(err)
	}
	setStatus := func(st orchestrator.Status) {
		t.Helper()
		_, err := s.store.UpdateTask(ctx, task.ID, func(x *orchestrator.Task) error {
			now := time.Now().UTC().Truncate(time.Microsecond)
			x.Status, x.UpdatedAt = st, now
			if st == orchestrator.StatusRunning {
				x.StartedAt, x.Worker = &now, "test"
			} else {
				code := 0
				x.FinishedAt, x.ExitCode = &now, &code
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	setStatus(orchestrator.StatusRunning)
	if err := s.store.AppendTaskLog(ctx, task.ID, []byte("first line\n")); err != nil {
		t.Fatal(err)
	}

	b := newBrowser(t, s)
	b.do(chromedp.Navigate(s.URL+"/login"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), s.token),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("add-secret")),
		chromedp.Navigate(s.URL+"/tasks/"+task.ID+"?ok=task-started"),
		chromedp.WaitVisible(chromedp.CSS(`pre#log[data-follow]`)))
	if got := b.text("#task-status"); got != "running" {
		t.Fatalf("status %q", got)
	}
	if err := s.store.AppendTaskLog(ctx, task.ID, []byte("second line\n")); err != nil {
		t.Fatal(err)
	}
	// The second line arrives without a reload: the page still has its
	// one-time notice, which a reload would drop.
	b.waitJS(`document.getElementById("log").textContent.includes("second line")`, "the second line never streamed in")
	if got := b.text("#log"); !strings.Contains(got, "first line") || strings.Count(got, "first line") != 1 {
		t.Fatalf("log %q", got)
	}
	if !strings.Contains(b.html(), "Task queued.") {
		t.Fatal("the page reloaded instead of streaming")
	}
	setStatus(orchestrator.StatusSucceeded)
	b.do(chromedp.WaitVisible(chromedp.CSS(`#task-status.succeeded`)))
	h := b.html()
	if strings.Contains(h, "data-follow") || strings.Contains(h, "Task queued.") || !strings.Contains(h, "second line") {
		t.Fatalf("after the end: follow %v, notice %v", strings.Contains(h, "data-follow"), strings.Contains(h, "Task queued."))
	}
	if loc := b.location(); loc != s.URL+"/tasks/"+task.ID {
		t.Fatalf("reloaded to %s", loc)
	}
}

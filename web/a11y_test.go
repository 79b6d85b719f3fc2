package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

// a11yCheck is the checker script (testdata/a11y.js): it returns the
// page's failures.
func a11yCheck(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/a11y.js")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkA11y runs the checker on the page the tab holds, as a keyboard
// user finds it: a key press first, so that focus shows as a keyboard
// user sees it (:focus-visible).
func (b *browser) checkA11y(script, name string) []string {
	b.t.Helper()
	b.do(chromedp.KeyEvent(kb.Shift))
	var out []string
	for _, f := range js[[]string](b, script) {
		out = append(out, name+": "+f)
	}
	return out
}

// The checker finds what it is for: on a page built to break each rule,
// it reports each one.
func TestAccessibilityCheckerFindsFailures(t *testing.T) {
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><html lang="en"><head><title>bad</title><style>
body { background: #fff; color: #111; }
.faint { color: #bbb; }
.dim { opacity: 0.3; }
a:focus-visible { outline: 2px solid #ddd; }
button:focus-visible { outline: none; }
input { border: 1px solid #ddd; }
</style></head><body>
<h1>One</h1><h1>Two</h1>
<p class="faint">faint text</p>
<p class="dim">dimmed text</p>
<a href="#x" id="dup">pale ring</a>
<button id="dup">no ring</button>
<input type="text" id="unlabelled">
</body></html>`)
	}))
	t.Cleanup(bad.Close)
	s := &stack{URL: bad.URL}
	b := newBrowser(t, s)
	b.do(chromedp.Navigate(bad.URL), chromedp.WaitVisible(chromedp.CSS("h1")))
	got := strings.Join(b.checkA11y(a11yCheck(t), "bad"), "\n")
	for _, want := range []string{
		"p.faint: text contrast", "p.dim: text contrast", "a#dup: focus ring contrast", "button#dup: no focus ring",
		"input#unlabelled: border contrast", "input#unlabelled: has no accessible name", "2 h1 elements", "id dup is used 2 times",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the checker missed %q; it reported:\n%s", want, got)
		}
	}
}

// Every page of the dashboard, in light and dark mode, passes the
// accessibility check: text and non-text contrast computed from the
// styles (WCAG 2.2 formula), every control labelled, one h1, unique ids;
// and at 320 CSS px none scrolls sideways (reflow).
func TestAccessibility(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	script := a11yCheck(t)
	builder := s.mustProfile(t, "builder")
	all, err := s.svc.CreateSecret(ctx, s.userID, vault.SecretInput{Name: "GITHUB_TOKEN", Value: "a11y-value-1", Description: "Org-wide PAT"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.svc.UpdateSecret(ctx, s.userID, all.ID, vault.SecretPatch{Value: ptr("a11y-value-2")}); err != nil {
		t.Fatal(err)
	}
	over, err := s.svc.CreateSecret(ctx, s.userID, vault.SecretInput{Name: "GITHUB_TOKEN", Value: "a11y-value-3", Scope: vault.ScopeAgents, ProfileIDs: []string{builder.ID}})
	if err != nil {
		t.Fatal(err)
	}
	queued, err := s.orch.CreateTask(ctx, s.userID, builder.ID, "review the open pull requests and summarise them")
	if err != nil {
		t.Fatal(err)
	}
	failed, err := s.orch.CreateTask(ctx, s.userID, builder.ID, "this one fails")
	if err != nil {
		t.Fatal(err)
	}
	finish(t, s, failed.ID, orchestrator.StatusFailed, "the image could not be pulled")
	// A task waiting for secrets: its request's form tops the Secrets pages.
	waiting, req := s.waitingTask(t, builder.ID, "OPENAI_API_KEY", "SLACK_WEBHOOK")
	// And a running task's ask, with its message.
	asker := s.mustProfile(t, "asker")
	running, err := s.orch.CreateTask(ctx, s.userID, asker.ID, "asks for a key")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.svc.AskSecretRequest(ctx, s.userID, asker.ID, running.ID, 1, []vault.RequiredSecret{{Name: "LINEAR_API_KEY"}},
		"I need the Linear key to read the issues", time.Hour); err != nil {
		t.Fatal(err)
	}
	connect, device := oauth2Pages(t, s)

	pages := []struct{ name, path string }{
		{"secrets", "/settings/secrets?ok=secret-saved&secret=" + all.ID + "&warn=short"},
		{"secrets filtered", "/settings/secrets?scope=agents&profile=" + builder.ID},
		{"add secret", "/settings/secrets/new"},
		{"edit secret", "/settings/secrets/" + all.ID + "/edit"},
		{"delete override", "/settings/secrets/" + over.ID + "/delete"},
		{"rollback", "/settings/secrets/" + all.ID + "/rollback?version=1"},
		{"oauth2 connect", connect},
		{"oauth2 device code", device},
		{"import", "/settings/secrets/import"},
		{"profiles", "/profiles"},
		{"new profile", "/profiles/new"},
		{"profile", "/profiles/" + builder.ID},
		{"profile delete", "/profiles/" + builder.ID + "/delete"},
		{"tasks", "/tasks"},
		{"queued task", "/tasks/" + queued.ID},
		{"failed task", "/tasks/" + failed.ID},
		{"awaiting task", "/tasks/" + waiting.ID},
		{"tokens", "/settings/tokens"},
		{"not found", "/nowhere"},
	}
	var paths []string
	for _, p := range pages {
		paths = append(paths, p.path)
	}
	wantEveryPage(t, append(paths, "/login", "/settings/secrets/new"))
	b := newBrowser(t, s)
	b.do(chromedp.Navigate(s.URL+"/login"), chromedp.WaitVisible(chromedp.ID("token")))
	var failures []string
	for _, dark := range []bool{false, true} {
		mode := "light"
		if dark {
			mode = "dark"
		}
		b.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: mode}}})
			return err
		}))
		if dark {
			b.do(chromedp.Navigate(s.URL + "/login"))
		}
		failures = append(failures, b.checkA11y(script, mode+" login")...)
		if !dark {
			b.signIn()
		}
		for _, p := range pages {
			b.do(chromedp.Navigate(s.URL+p.path), chromedp.WaitVisible(chromedp.CSS("h1")))
			failures = append(failures, b.checkA11y(script, mode+" "+p.name)...)
		}
		// Pages of refused forms: a conflict, and an import with a bad line.
		b.do(chromedp.Navigate(s.URL+"/settings/secrets/new"), chromedp.WaitVisible(chromedp.ID("secret-name")),
			chromedp.SendKeys(chromedp.ID("secret-name"), "GITHUB_TOKEN"), chromedp.SendKeys(chromedp.ID("secret-value"), "a11y-value-4"),
			chromedp.Click(chromedp.CSS(`#secret-form button[type=submit]`)), chromedp.WaitVisible(chromedp.ID("error-summary")))
		failures = append(failures, b.checkA11y(script, mode+" refused secret")...)
		b.do(chromedp.Navigate(s.URL+"/settings/secrets/import"), chromedp.WaitVisible(chromedp.ID("import-env")),
			chromedp.SendKeys(chromedp.ID("import-env"), "GOOD=a11y-value-5\nnot a line\n"),
			chromedp.Click(chromedp.ID("import-submit")), chromedp.WaitVisible(chromedp.ID("error-summary")))
		failures = append(failures, b.checkA11y(script, mode+" refused import")...)
		// A secret request's form sent empty (the browser's own check off).
		b.do(chromedp.Navigate(s.URL+"/settings/secrets"), chromedp.WaitVisible(chromedp.ID("request-"+req.ID)),
			chromedp.Evaluate[chromedp.Void](`document.getElementById("request-`+req.ID+`-form").noValidate = true`),
			chromedp.Click(chromedp.ID("request-"+req.ID+"-submit")), chromedp.WaitVisible(chromedp.ID("error-summary")))
		failures = append(failures, b.checkA11y(script, mode+" refused secret request")...)
		// The Add dialog, open.
		b.do(chromedp.Navigate(s.URL+"/settings/secrets"), chromedp.WaitVisible(chromedp.ID("add-secret")),
			chromedp.Click(chromedp.ID("add-secret")), chromedp.WaitVisible(chromedp.ID("add-secret-dialog")))
		failures = append(failures, b.checkA11y(script, mode+" add dialog")...)
	}
	// Reflow (WCAG 1.4.10): at 320 CSS px no page scrolls sideways.
	b.do(chromedp.EmulateViewport(320, 700))
	for _, p := range pages {
		b.do(chromedp.Navigate(s.URL+p.path), chromedp.WaitVisible(chromedp.CSS("h1")))
		if w := js[[]int](b, `[document.documentElement.scrollWidth, window.innerWidth]`); w[0] > w[1] {
			failures = append(failures, fmt.Sprintf("%s at 320 px: the page is %d px wide", p.name, w[0]))
		}
	}
	if len(failures) > 0 {
		t.Fatalf("%d accessibility failures:\n%s", len(failures), strings.Join(failures, "\n"))
	}
}

func ptr[T any](v T) *T { return &v }

// finish ends a task as a worker would, with status st.
func finish(t *testing.T, s *stack, id string, st orchestrator.Status, why string) {
	t.Helper()
	_, err := s.store.UpdateTask(context.Background(), id, func(x *orchestrator.Task) error {
		now := time.Now().UTC().Truncate(time.Microsecond)
		code := 1
		x.Status, x.UpdatedAt, x.StartedAt, x.FinishedAt, x.ExitCode, x.Error, x.Worker = st, now, &now, &now, &code, why, "test"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// routeRE finds the GET routes web.go registers.
var routeRE = regexp.MustCompile(`m\.Handle(?:Func)?\("GET (/[^"]*)"`)

// notPages are GET routes that answer no HTML page of their own.
var notPages = map[string]bool{"/static/": true, "/{$}": true, "/settings": true, "/tasks/{id}/logs": true}

// wantEveryPage fails the test unless paths visit every page route of
// web.go, so that a new page cannot miss the accessibility check.
func wantEveryPage(t *testing.T, paths []string) {
	t.Helper()
	src, err := os.ReadFile("web.go")
	if err != nil {
		t.Fatal(err)
	}
	routes := routeRE.FindAllStringSubmatch(string(src), -1)
	if len(routes) < 10 {
		t.Fatalf("found %d GET routes in web.go: the pattern no longer reads it", len(routes))
	}
	for _, m := range routes {
		route := m[1]
		if notPages[route] {
			continue
		}
		re := regexp.MustCompile("^" + regexp.MustCompile(`\\\{[a-z]+\\\}`).ReplaceAllString(regexp.QuoteMeta(route), "[^/?]+") + `(\?|$)`)
		if !slices.ContainsFunc(paths, re.MatchString) {
			t.Errorf("the accessibility check visits no page of route GET %s: add it to TestAccessibility", route)
		}
	}
}

package web_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

// awaitTask waits until ok accepts the stored task, reading it again at
// every change the stack's orchestrator signals.
func (s *stack) awaitTask(t *testing.T, id, what string, ok func(*orchestrator.Task) bool) *orchestrator.Task {
	t.Helper()
	deadline := time.After(90 * time.Second)
	for {
		changed := s.orch.Changes()
		task, err := s.store.Task(context.Background(), s.userID, id)
		if err != nil {
			t.Fatal(err)
		}
		if ok(task) {
			return task
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("task %s is %s (%q), not %s", id, task.Status, task.Error, what)
		}
	}
}

func hasStatus(st orchestrator.Status) func(*orchestrator.Task) bool {
	return func(t *orchestrator.Task) bool { return t.Status == st }
}

// The end-to-end test of issue 13's dashboard part, on the real Docker
// Engine in Chromium: a task on a profile requiring two names without a
// value waits in awaiting_secrets; the user signs in and finds the
// request at the top of the dashboard, sends it once with a value
// missing (refused, naming it, the other value not kept), then answers
// both, one for this profile only and one for all profiles; the task
// starts and its container sees both values (it prints their SHA-256 and
// lengths; the values themselves are masked in its log). A second
// request is cancelled from the dashboard and its task ends cancelled.
// No page the browser received or held, and no server log line, holds a
// value.
func TestBrowserAnswersSecretRequest(t *testing.T) {
	const (
		apiKey = "sk-canary-request-Zq81-only-for-this-profile"
		shared = "canary-shared-Hn4w-for-every-profile"
	)
	s, shell := dockerStack(t)
	ctx := context.Background()
	needs, err := s.svc.CreateProfile(ctx, s.userID, vault.ProfileInput{Name: "needs-keys", Image: shell,
		Command: []string{"/bin/sh", "-c", `printf '%s' "$OPENAI_API_KEY" | sha256sum; printf '%s' "$SHARED_TOKEN" | sha256sum; ` +
			`echo "lengths=${#OPENAI_API_KEY}/${#SHARED_TOKEN}"; echo "key: $OPENAI_API_KEY"`},
		RequiredSecrets: []vault.RequiredSecret{{Name: "OPENAI_API_KEY", Description: "the team's OpenAI key"}, {Name: "SHARED_TOKEN", Description: "any agent may use it"}}})
	if err != nil {
		t.Fatal(err)
	}
	task, err := s.orch.CreateTask(ctx, s.userID, needs.ID, "summarise the open issues")
	if err != nil {
		t.Fatal(err)
	}
	s.awaitTask(t, task.ID, "awaiting secrets", hasStatus(orchestrator.StatusAwaitingSecrets))
	req, err := s.svc.PendingSecretRequestOf(ctx, s.userID, needs.ID)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	form, prefix := "#request-"+req.ID, "request-"+req.ID+"-"
	b := newBrowser(t, s)
	b.do(chromedp.EmulateViewport(1280, 1000))
	b.signIn()
	b.do(chromedp.WaitVisible(chromedp.CSS(form)))
	if above := js[bool](b, `document.getElementById("secret-requests").getBoundingClientRect().top < document.querySelector(".lede").getBoundingClientRect().top`); !above {
		t.Fatal("the request is not at the top of the dashboard")
	}
	if got := b.text(form + " h3"); got != "Profile needs-keys needs 2 secrets" {
		t.Fatalf("request heading %q", got)
	}

	// Sent with SHARED_TOKEN empty (the browser's own check turned off, as
	// an old browser would send it): refused, naming it; the key typed is
	// not kept.
	b.do(chromedp.SendKeys(chromedp.ID(prefix+"value-OPENAI_API_KEY"), apiKey),
		chromedp.Click(chromedp.ID(prefix+"all-SHARED_TOKEN")))
	if !js[bool](b, `document.getElementById("`+prefix+`value-OPENAI_API_KEY").classList.contains("masked")`) {
		t.Fatal("the value is not masked while typed")
	}
	b.do(chromedp.Evaluate[chromedp.Void](`document.getElementById("`+prefix+`form").noValidate = true`),
		chromedp.Click(chromedp.ID(prefix+"submit")), chromedp.WaitVisible(chromedp.ID("error-summary")))
	if msg := b.text("#error-summary"); !strings.Contains(msg, "Value of SHARED_TOKEN: The value is required") {
		t.Fatalf("error summary %q", msg)
	}
	if id := js[string](b, `document.activeElement.id`); id != "error-summary" {
		t.Errorf("the refused form put the focus on %q, want the error summary", id)
	}
	if v := b.value("#" + prefix + "value-OPENAI_API_KEY"); v != "" {
		t.Fatal("the refused form was rendered back with a value")
	}
	if !js[bool](b, `document.getElementById("`+prefix+`all-SHARED_TOKEN").checked && document.getElementById("`+prefix+`agents-OPENAI_API_KEY").checked`) {
		t.Error("the refused form lost the scopes chosen")
	}
	if n := len(s.secretsByName(t)); n != 0 {
		t.Fatalf("the refused answer stored %d secrets", n)
	}

	// The answer: the task starts with both values.
	b.do(chromedp.SendKeys(chromedp.ID(prefix+"value-OPENAI_API_KEY"), apiKey),
		chromedp.SendKeys(chromedp.ID(prefix+"value-SHARED_TOKEN"), shared))
	submitted := time.Now()
	b.do(chromedp.Click(chromedp.ID(prefix+"submit")), chromedp.WaitVisible(chromedp.ID("answered-tasks")))
	running := s.awaitTask(t, task.ID, "running", func(x *orchestrator.Task) bool { return x.StartedAt != nil })
	t.Logf("form submit to the task's container running: %v (recorded start %v after the submit)",
		time.Since(submitted).Round(time.Millisecond), running.StartedAt.Sub(submitted).Round(time.Millisecond))
	if got := b.text("p.flash"); !strings.Contains(got, "Saved OPENAI_API_KEY, SHARED_TOKEN.") {
		t.Errorf("flash %q", got)
	}
	b.do(chromedp.Click(chromedp.CSS(`#answered-tasks a`)), chromedp.WaitVisible(chromedp.CSS(`#task-status.succeeded, #task-status.failed`)))
	log := b.text("#log")
	sumKey, sumShared := sha256.Sum256([]byte(apiKey)), sha256.Sum256([]byte(shared))
	for _, want := range []string{fmt.Sprintf("%x", sumKey), fmt.Sprintf("%x", sumShared), fmt.Sprintf("lengths=%d/%d", len(apiKey), len(shared)), "key: ***"} {
		if !strings.Contains(log, want) {
			t.Fatalf("task %s, log:\n%s\nwant %q: the container did not see the values", b.text("#task-status"), log, want)
		}
	}
	secs := s.secretsByName(t)
	if k, sh := secs["OPENAI_API_KEY"], secs["SHARED_TOKEN"]; k == nil || sh == nil || k.Scope != vault.ScopeAgents ||
		len(k.ProfileIDs) != 1 || k.ProfileIDs[0] != needs.ID || sh.Scope != vault.ScopeAll {
		t.Fatalf("stored: %+v %+v, want OPENAI_API_KEY for needs-keys only and SHARED_TOKEN for all profiles", k, sh)
	}

	// Cancelled from the dashboard: the task ends cancelled.
	other, err := s.svc.CreateProfile(ctx, s.userID, vault.ProfileInput{Name: "never", Image: shell, Command: []string{"/bin/true"},
		RequiredSecrets: []vault.RequiredSecret{{Name: "NEVER_GIVEN"}}})
	if err != nil {
		t.Fatal(err)
	}
	waiting, err := s.orch.CreateTask(ctx, s.userID, other.ID, "never starts")
	if err != nil {
		t.Fatal(err)
	}
	s.awaitTask(t, waiting.ID, "awaiting secrets", hasStatus(orchestrator.StatusAwaitingSecrets))
	r2, err := s.svc.PendingSecretRequestOf(ctx, s.userID, other.ID)
	if err != nil {
		t.Fatal(err)
	}
	b.do(chromedp.Navigate(s.URL+"/tasks/"+waiting.ID), chromedp.WaitVisible(chromedp.ID("missing-secrets")),
		chromedp.Click(chromedp.CSS("#missing-secrets a")), chromedp.WaitVisible(chromedp.ID("request-"+r2.ID+"-cancel")),
		chromedp.Click(chromedp.ID("request-"+r2.ID+"-cancel")), chromedp.WaitVisible(chromedp.ID("answered-tasks")))
	s.awaitTask(t, waiting.ID, "cancelled", hasStatus(orchestrator.StatusCancelled))
	if got := b.text("p.flash"); got != "Request for NEVER_GIVEN cancelled: its 1 waiting task ended cancelled." {
		t.Errorf("flash %q", got)
	}
	b.do(chromedp.Navigate(s.URL+"/tasks/"+waiting.ID), chromedp.WaitVisible(chromedp.CSS("#task-status.cancelled")))
	if got := b.text("#cancelled-why"); !strings.Contains(got, r2.ID) {
		t.Errorf("the cancelled task says %q", got)
	}

	// What the browser was sent: the refused form, the pages after each
	// redirect; none holds a value, nor does the server's log.
	b.findDocument("main", http.StatusUnprocessableEntity, "Value of SHARED_TOKEN")
	b.findDocument("main", http.StatusOK, "Saved OPENAI_API_KEY, SHARED_TOKEN.")
	b.findDocument("main", http.StatusOK, "Request for NEVER_GIVEN cancelled")
	noCanary(t, s, map[string]*browser{"main": b}, apiKey, shared)
	t.Logf("browser steps took %v", time.Since(start).Round(time.Millisecond))
}

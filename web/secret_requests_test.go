package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

// waitingTask queues a task on the profile and puts it where a worker's
// start would: awaiting secrets on the profile's request for names, each
// NAME or NAME=description (orchestrator/awaiting.go does this on Docker
// in the browser test).
func (s *stack) waitingTask(t testing.TB, profileID string, names ...string) (*orchestrator.Task, *vault.SecretRequest) {
	t.Helper()
	ctx := context.Background()
	var list []vault.RequiredSecret
	for _, n := range names {
		name, desc, ok := strings.Cut(n, "=")
		if !ok {
			desc = "the " + strings.ToLower(name)
		}
		list = append(list, vault.RequiredSecret{Name: name, Description: desc})
	}
	task, err := s.orch.CreateTask(ctx, s.userID, profileID, "needs "+strings.Join(vault.RequiredNames(list), ", "))
	if err != nil {
		t.Fatal(err)
	}
	req, err := s.svc.OpenSecretRequest(ctx, s.userID, profileID, task.ID, list, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	task, err = s.store.UpdateTask(ctx, task.ID, func(x *orchestrator.Task) error {
		x.Status, x.Error = orchestrator.StatusAwaitingSecrets, "awaiting secrets: "+strings.Join(vault.RequiredNames(list), ", ")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return task, req
}

// The pending requests at the top of the Secrets page, without
// JavaScript: a form for exactly the missing names with an empty value
// field each and "this profile only" chosen; a missing value or a bad
// scope is refused naming the name, the scopes chosen kept and no value
// rendered back, nothing stored; a form without the CSRF token changes
// nothing; an answer stores each value with its own scope and queues the
// waiting tasks; a cancel ends them cancelled; a second answer or cancel
// is refused (409). No page or log line holds a value.
func TestSecretRequestForm(t *testing.T) {
	const (
		canaryA = "canary-request-A-9fK2-never-on-a-page"
		canaryB = "canary-request-B-Qm7x-never-on-a-page"
	)
	s := newStack(t)
	ctx := context.Background()
	builder, other := s.mustProfile(t, "builder"), s.mustProfile(t, "reviewer")
	task, req := s.waitingTask(t, builder.ID, "API_KEY", "DEPLOY_TOKEN")
	otherTask, otherReq := s.waitingTask(t, other.ID, "NEVER_GIVEN")
	// A running task of a third profile asks, with a message for the user.
	asker := s.mustProfile(t, "asker")
	running, err := s.orch.CreateTask(ctx, s.userID, asker.ID, "asks")
	if err != nil {
		t.Fatal(err)
	}
	asked, err := s.svc.AskSecretRequest(ctx, s.userID, asker.ID, running.ID, 1, []vault.RequiredSecret{{Name: "SLACK_WEBHOOK"}},
		"I need to <post> the summary", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c := s.client(t)
	c.signIn()

	page := c.get("/settings/secrets")
	wantStatus(t, page, http.StatusOK)
	prefix := "request-" + req.ID + "-"
	wantContains(t, page.Body, `id="secret-requests"`, `action="/secret-requests/`+req.ID+`/answer"`,
		`action="/secret-requests/`+req.ID+`/cancel"`, `name="value.API_KEY"`, `name="value.DEPLOY_TOKEN"`,
		`<label for="`+prefix+`value-API_KEY">Value of API_KEY</label>`, "the deploy_token", "/tasks/"+task.ID,
		`id="`+prefix+`agents-API_KEY" checked`, `name="value.NEVER_GIVEN"`)
	wantContains(t, page.Body, `id="request-`+asked.ID+`"`, "asks for SLACK_WEBHOOK: “I need to &lt;post&gt; the summary”",
		`id="request-`+asked.ID+`-submit">Save</button>`)
	if strings.Index(page.Body, `id="secret-requests"`) > strings.Index(page.Body, `class="lede"`) {
		t.Error("the requests are not at the top of the page")
	}
	csrf := csrfRE.FindStringSubmatch(page.Body)[1]
	answer := "/secret-requests/" + req.ID + "/answer"
	unchanged := func() {
		t.Helper()
		if n := len(s.secretsByName(t)); n != 0 {
			t.Fatalf("a refused answer stored %d secrets", n)
		}
		if r, _ := s.svc.SecretRequest(ctx, s.userID, req.ID); r.Status != vault.RequestPending {
			t.Fatalf("a refused answer left the request %s", r.Status)
		}
	}

	// A missing value.
	res := c.post(answer, url.Values{"csrf": {csrf}, "value.API_KEY": {canaryA}, "scope.API_KEY": {"all"},
		"value.DEPLOY_TOKEN": {""}, "scope.DEPLOY_TOKEN": {"agents"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, res.Body, `id="error-summary"`, `href="#`+prefix+`value-DEPLOY_TOKEN">Value of DEPLOY_TOKEN: The value is required`,
		`id="`+prefix+`value-DEPLOY_TOKEN"`, `aria-invalid="true"`, `id="`+prefix+`all-API_KEY" checked`, "were not kept")
	wantAbsent(t, res.Body, canaryA)
	unchanged()

	// A bad scope, and a value with a NUL byte.
	res = c.post(answer, url.Values{"csrf": {csrf}, "value.API_KEY": {canaryA}, "scope.API_KEY": {"everyone"},
		"value.DEPLOY_TOKEN": {canaryB + "\x00"}, "scope.DEPLOY_TOKEN": {"agents"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, res.Body, `href="#`+prefix+`agents-API_KEY">API_KEY: Choose`, "must not contain a NUL byte")
	wantAbsent(t, res.Body, canaryA, canaryB)
	unchanged()

	// Without the CSRF token.
	res = c.post(answer, url.Values{"value.API_KEY": {canaryA}, "scope.API_KEY": {"all"}, "value.DEPLOY_TOKEN": {canaryB}, "scope.DEPLOY_TOKEN": {"agents"}})
	wantStatus(t, res, http.StatusForbidden)
	unchanged()

	// The answer: API_KEY for all profiles, DEPLOY_TOKEN for this one.
	res = c.post(answer, url.Values{"csrf": {csrf}, "value.API_KEY": {canaryA}, "scope.API_KEY": {"all"},
		"value.DEPLOY_TOKEN": {canaryB + "\r\nline two"}, "scope.DEPLOY_TOKEN": {"agents"}})
	wantRedirect(t, res, "/settings/secrets?ok=request-answered&request="+req.ID+"#secret-requests")
	secs := s.secretsByName(t)
	if a, d := secs["API_KEY"], secs["DEPLOY_TOKEN"]; a == nil || d == nil || a.Scope != vault.ScopeAll ||
		d.Scope != vault.ScopeAgents || len(d.ProfileIDs) != 1 || d.ProfileIDs[0] != builder.ID {
		t.Fatalf("after the answer: %+v %+v", a, d)
	}
	env, err := s.svc.GetDecryptedForProfile(ctx, s.userID, builder.ID)
	if err != nil || env["API_KEY"] != canaryA || env["DEPLOY_TOKEN"] != canaryB+"\nline two" {
		t.Fatalf("the builder gets other values (%v)", err)
	}
	if got, _ := s.store.Task(ctx, s.userID, task.ID); got.Status != orchestrator.StatusQueued {
		t.Fatalf("the waiting task is %s after the answer, want queued", got.Status)
	}
	page = c.get("/settings/secrets?ok=request-answered&request=" + req.ID)
	wantContains(t, page.Body, "Saved API_KEY, DEPLOY_TOKEN. Its 1 waiting task went back to the queue", `href="/tasks/`+task.ID+`"`)
	if strings.Contains(page.Body, `action="/secret-requests/`+req.ID+`/answer"`) {
		t.Fatal("the answered request still has its form")
	}
	res = c.post(answer, url.Values{"csrf": {csrf}, "value.API_KEY": {canaryA}, "scope.API_KEY": {"all"},
		"value.DEPLOY_TOKEN": {canaryB}, "scope.DEPLOY_TOKEN": {"agents"}})
	wantStatus(t, res, http.StatusConflict)
	wantContains(t, res.Body, `id="request-alert"`, "not pending", "Nothing was saved.")
	wantAbsent(t, res.Body, canaryA, canaryB)

	// The other request, cancelled; its task page said what it waited for.
	res = c.get("/tasks/" + otherTask.ID)
	wantContains(t, res.Body, `id="missing-secrets"`, "NEVER_GIVEN", `href="/settings/secrets#request-`+otherReq.ID+`"`)
	res = c.post("/secret-requests/"+otherReq.ID+"/cancel", url.Values{"csrf": {csrf}})
	wantRedirect(t, res, "/settings/secrets?ok=request-cancelled&request="+otherReq.ID)
	if got, _ := s.store.Task(ctx, s.userID, otherTask.ID); got.Status != orchestrator.StatusCancelled {
		t.Fatalf("the cancelled request's task is %s", got.Status)
	}
	wantContains(t, c.get("/settings/secrets?ok=request-cancelled&request="+otherReq.ID).Body, "Request for NEVER_GIVEN cancelled: its 1 waiting task ended cancelled.")
	wantContains(t, c.get("/tasks/"+otherTask.ID).Body, `id="cancelled-why"`, "was cancelled")
	res = c.post("/secret-requests/"+otherReq.ID+"/cancel", url.Values{"csrf": {csrf}})
	wantStatus(t, res, http.StatusConflict)
	wantContains(t, res.Body, `id="request-alert"`)
	wantStatus(t, c.post("/secret-requests/sreq_nope/cancel", url.Values{"csrf": {csrf}}), http.StatusNotFound)

	c.mu.Lock()
	seen := c.seen.String()
	c.mu.Unlock()
	wantAbsent(t, seen, canaryA, canaryB)
	wantAbsent(t, s.logs.String(), canaryA, canaryB)
}

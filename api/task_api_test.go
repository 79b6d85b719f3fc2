package api

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

// taskAPIRequest is the TaskSecretRequest schema.
type taskAPIRequest struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Names  []struct {
		Name        string `json:"name"`
		Description string `json:"description"`
	} `json:"names"`
	Asks []struct {
		TaskID  string   `json:"task_id"`
		Attempt int      `json:"attempt"`
		Names   []string `json:"names"`
		Message string   `json:"message"`
	} `json:"asks"`
}

func decodeTaskRequest(t *testing.T, r *response) taskAPIRequest {
	t.Helper()
	var out taskAPIRequest
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatalf("not a task secret request: %v: %s", err, r.body)
	}
	return out
}

// runningTask queues a task on the profile, records it as running its
// attempt (no container: the orchestrator has no runner), and returns its
// id and a credential of that attempt, as a worker's start would make it.
func (e *taskEnv) runningTask(user, tok, profileID string) (string, string) {
	e.t.Helper()
	id := e.startTask(tok, profileID, "ask").ID
	return id, e.setRunning(user, id, 1)
}

// setRunning records the task as running attempt and returns that
// attempt's credential.
func (e *taskEnv) setRunning(user, id string, attempt int) string {
	e.t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	_, err := e.store.UpdateTask(e.t.Context(), id, func(t *orchestrator.Task) error {
		t.Status, t.Attempt, t.Worker, t.StartedAt, t.UpdatedAt = orchestrator.StatusRunning, attempt, "nobody", &now, now
		t.StopRequested, t.RestartRequested = false, false
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return e.svc.IssueTaskCredential(vault.TaskCredential{TaskID: id, UserID: user, Attempt: attempt, Expires: now.Add(time.Hour)})
}

func (e *taskEnv) setStatus(id string, status orchestrator.Status) {
	e.t.Helper()
	_, err := e.store.UpdateTask(e.t.Context(), id, func(t *orchestrator.Task) error {
		t.Status = status
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// TestTaskCredentialScopes walks every /v1 operation of the document with
// a live task credential: the four /v1/task operations let it through
// (their GETs answer 200), every other answers 403 forbidden naming scope
// task, before anything is read or done. No operation answers it a value.
func TestTaskCredentialScopes(t *testing.T) {
	e := newTaskEnv(t, taskEnvOptions{})
	alice, full := e.newUser("alice")
	pid := e.mustProfile(full, "p", "img", nil, nil)
	sid := e.mustSecret(full, "API_KEY", "CANARY-scope-walk-value", pid)
	tid, cred := e.runningTask(alice, full, pid)
	r := e.call("POST", "/v1/task/secret-requests", cred, `{"names":[{"name":"WANTED","description":"d"}],"message":"m"}`)
	want(t, r, http.StatusOK, "")
	req := decodeTaskRequest(t, r)
	ids := map[string]string{"secrets": sid, "profiles": pid, "tasks": tid, "secret-requests": req.ID, "task": req.ID, "tokens": "tok_x"}
	let, refused := 0, 0
	for path, item := range e.doc.Paths.Map() {
		if !strings.HasPrefix(path, "/v1/") || path == "/v1/openapi.json" {
			continue
		}
		for method := range item.Operations() {
			kind := strings.Split(path, "/")[2]
			p := strings.ReplaceAll(path, "{id}", ids[kind])
			body := ""
			if method == "POST" || method == "PATCH" {
				body = "{}"
			}
			r := e.call(method, p, cred, body)
			if strings.HasPrefix(path, "/v1/task/") {
				let++
				if r.status == http.StatusForbidden || r.status == http.StatusUnauthorized || (method == "GET" && r.status != http.StatusOK) {
					t.Errorf("%s %s with the task credential: %s", method, path, r)
				}
				continue
			}
			refused++
			want(t, r, http.StatusForbidden, "")
			if code, _, msg := r.errorOf(t); code != "forbidden" || !strings.Contains(msg, "scope task") {
				t.Errorf("%s %s with the task credential: %s", method, path, r.body)
			}
		}
	}
	if let != 4 || refused < 25 {
		t.Errorf("let through %d, refused %d operations", let, refused)
	}
	t.Logf("task credential: %d operations let through, %d refused", let, refused)
	e.finish()
	e.assertNoLeak("CANARY-scope-walk-value", cred)
}

// TestTaskCredentialRefused: a credential answers 401 once its attempt no
// longer runs (finished, stopped, cancelled, restarted: the old attempt's),
// when expired, forged (another task's id under its MAC) or malformed; it
// sees only the requests its own task asked (another task's, or another
// user's, are not found).
func TestTaskCredentialRefused(t *testing.T) {
	e := newTaskEnv(t, taskEnvOptions{})
	alice, full := e.newUser("alice")
	bob, bobFull := e.newUser("bob")
	bobPid := e.mustProfile(bobFull, "p", "img", nil, nil)
	pid := e.mustProfile(full, "p", "img", nil, nil)
	t1, cred1 := e.runningTask(alice, full, pid)
	t2, cred2 := e.runningTask(alice, full, pid)
	_, bobCred := e.runningTask(bob, bobFull, bobPid)

	r := e.call("POST", "/v1/task/secret-requests", cred1, `{"names":[{"name":"WANTED"}],"message":"need it"}`)
	want(t, r, http.StatusOK, "")
	req := decodeTaskRequest(t, r)
	want(t, e.call("GET", "/v1/task/secret-requests/"+req.ID, cred1, ""), http.StatusOK, "")
	// Another task of the same user, and another user's task: not found.
	want(t, e.call("GET", "/v1/task/secret-requests/"+req.ID, cred2, ""), http.StatusNotFound, "")
	want(t, e.call("GET", "/v1/task/secret-requests/"+req.ID, bobCred, ""), http.StatusNotFound, "")
	for _, c := range []string{cred2, bobCred} {
		r := e.call("GET", "/v1/task/secret-requests", c, "")
		want(t, r, http.StatusOK, "")
		if strings.Contains(string(r.body), req.ID) {
			t.Errorf("another task lists the request: %s", r.body)
		}
	}
	// The user sees the ask, with its message.
	r = e.call("GET", "/v1/secret-requests/"+req.ID, full, "")
	want(t, r, http.StatusOK, "")
	if !strings.Contains(string(r.body), `"message":"need it"`) || !strings.Contains(string(r.body), `"task_id":"`+t1+`"`) {
		t.Errorf("the user's request does not show the ask: %s", r.body)
	}

	// Forged: task 2's id with task 1's MAC; malformed; expired.
	forged := strings.Replace(cred1, t1, t2, 1)
	expired := e.svc.IssueTaskCredential(vault.TaskCredential{TaskID: t1, UserID: alice, Attempt: 1, Expires: time.Now().Add(-time.Second)})
	otherUser := e.svc.IssueTaskCredential(vault.TaskCredential{TaskID: t1, UserID: bob, Attempt: 1, Expires: time.Now().Add(time.Hour)})
	for name, c := range map[string]string{"forged": forged, "malformed": cred1[:len(cred1)-3], "expired": expired,
		"another user's id": otherUser, "bad MAC": cred1[:len(cred1)-2] + "AA"} {
		r := e.call("GET", "/v1/task/secret-keys", c, "")
		want(t, r, http.StatusUnauthorized, "")
		if _, _, msg := r.errorOf(t); !strings.Contains(msg, "task credential") {
			t.Errorf("%s: %s", name, r.body)
		}
	}

	// The restart's new attempt: the old credential stops, the new works
	// and still sees the request its task asked in attempt 1.
	cred1b := e.setRunning(alice, t1, 2)
	want(t, e.call("GET", "/v1/task/secret-keys", cred1, ""), http.StatusUnauthorized, "")
	want(t, e.call("GET", "/v1/task/secret-requests/"+req.ID, cred1b, ""), http.StatusOK, "")
	// Every way a task ends.
	for _, st := range []orchestrator.Status{orchestrator.StatusSucceeded, orchestrator.StatusFailed, orchestrator.StatusStopped,
		orchestrator.StatusCancelled, orchestrator.StatusQueued, orchestrator.StatusAwaitingSecrets} {
		e.setStatus(t1, st)
		want(t, e.call("GET", "/v1/task/secret-keys", cred1b, ""), http.StatusUnauthorized, "")
	}
	e.setStatus(t1, orchestrator.StatusStarting)
	want(t, e.call("GET", "/v1/task/secret-keys", cred1b, ""), http.StatusOK, "")
	// Bob's credential reads bob's profile only.
	r = e.call("GET", "/v1/task/secret-keys", bobCred, "")
	want(t, r, http.StatusOK, "")
	if string(r.body) != `{"data":[]}` {
		t.Errorf("bob's task keys: %s", r.body)
	}
}

// TestAskSecretsRules: what a task may ask for, each refusal naming its
// field and rule and changing nothing; the keys it lists; the audit event
// of an ask (the task as actor, never the message); an answer asks the
// asking task's restart, a cancel leaves it running and tells it.
func TestAskSecretsRules(t *testing.T) {
	e := newTaskEnv(t, taskEnvOptions{})
	alice, full := e.newUser("alice")
	pid := e.mustCreate("/v1/profiles", full, mustJSON(t, map[string]any{"name": "p", "image": "img", "env": map[string]string{"MODE": "x"},
		"required_secrets": []map[string]string{{"name": "TEAM_KEY", "description": "the team's key"}}}))
	e.mustSecret(full, "HAVE_IT", "CANARY-ask-rules-value", pid)
	e.mustSecret(full, "TEAM_KEY", "CANARY-ask-team-value", pid)
	tid, cred := e.runningTask(alice, full, pid)

	r := e.call("GET", "/v1/task/secret-keys", cred, "")
	want(t, r, http.StatusOK, "")
	same := e.call("GET", "/v1/profiles/"+pid+"/secret-keys", full, "")
	if string(r.body) != string(same.body) || !strings.Contains(string(r.body), `"name":"HAVE_IT","has_value":true`) {
		t.Errorf("task keys %s, profile keys %s", r.body, same.body)
	}

	many := make([]map[string]string, vault.MaxAskNames+1)
	for i := range many {
		many[i] = map[string]string{"name": "N" + strings.Repeat("X", i)}
	}
	for _, c := range []struct {
		body   string
		status int
		field  string
	}{
		{`{"names":[]}`, 422, "names"},
		{`{"message":"m"}`, 422, "names"},
		{mustJSON(t, map[string]any{"names": many}), 422, "names"},
		{`{"names":[{"name":"lower"}]}`, 422, "names"},
		{`{"names":[{"name":"A"},{"name":"A"}]}`, 422, "names"},
		{`{"names":[{"name":"A","description":"` + strings.Repeat("d", 1001) + `"}]}`, 422, "names"},
		{`{"names":[{"name":"A"}],"message":"` + strings.Repeat("m", vault.MaxAskMessageLen+1) + `"}`, 422, "message"},
		{`{"names":[{"name":"A"}],"message":"bell\u0007"}`, 422, "message"},
		{`{"names":[{"name":"TASK_ID"}]}`, 422, "names"},
		{`{"names":[{"name":"ENVVAULT_TASK_TOKEN"}]}`, 422, "names"},
		{`{"names":[{"name":"A"}],"value":"x"}`, 422, "value"},
		{`{"names":[{"name":"HAVE_IT"},{"name":"NEW"}]}`, 409, "names"},
		{`{"names":[{"name":"MODE"}]}`, 409, "names"},
	} {
		want(t, e.call("POST", "/v1/task/secret-requests", cred, c.body), c.status, c.field)
	}
	want(t, e.call("POST", "/v1/task/secret-requests", cred, `{"names":[{"name":"A"}],"message":"`+strings.Repeat("m", DefaultBodyLimit)+`"}`), 413, "")
	plain := e.request("POST", "/v1/task/secret-requests", cred, `{"names":[{"name":"A"}]}`)
	plain.Header.Set("Content-Type", "text/plain")
	want(t, e.send(plain), 415, "")
	want(t, e.call("GET", "/v1/task/secret-requests/sreq_x", cred, ""), 404, "")
	if list, err := e.svc.SecretRequests(t.Context(), alice); err != nil || len(list) != 0 {
		t.Fatalf("refused asks made requests: %v %v", list, err)
	}

	// A message at the limit, with line breaks; a second ask of the same
	// attempt adds its names and replaces the message.
	msg := strings.Repeat("m", vault.MaxAskMessageLen-2) + "\n\t"
	want(t, e.call("POST", "/v1/task/secret-requests", cred, mustJSON(t, map[string]any{"names": []map[string]string{{"name": "OPENAI_API_KEY", "description": "for the model"}}, "message": msg})), 200, "")
	r = e.call("POST", "/v1/task/secret-requests", cred, `{"names":[{"name":"GITHUB_TOKEN"}],"message":"and this"}`)
	want(t, r, http.StatusOK, "")
	req := decodeTaskRequest(t, r)
	if len(req.Asks) != 1 || req.Asks[0].Message != "and this" || !slices.Equal(req.Asks[0].Names, []string{"GITHUB_TOKEN", "OPENAI_API_KEY"}) ||
		len(req.Names) != 2 || req.Names[1].Description != "for the model" || req.Status != "pending" {
		t.Errorf("after two asks: %s", r.body)
	}

	// The audit trail: the task's credential as actor, no message.
	page, err := e.svc.AuditEvents(t.Context(), alice, vault.AuditOptions{Action: vault.ActionSecretRequestOpen, Limit: 10})
	if err != nil || len(page.Items) != 2 {
		t.Fatalf("open events: %d, %v", len(page.Items), err)
	}
	for _, ev := range page.Items {
		b, _ := json.Marshal(ev)
		if ev.TokenID != vault.PrefixTaskCredential+tid+".1" || ev.Details["by"] != "task" || ev.Details["task_id"] != tid ||
			strings.Contains(string(b), "and this") || strings.Contains(string(b), cred) {
			t.Errorf("event %s", b)
		}
	}

	// A cancel: refused, and the task keeps running.
	want(t, e.call("POST", "/v1/secret-requests/"+req.ID+"/cancel", full, ""), 200, "")
	r = e.call("GET", "/v1/task/secret-requests/"+req.ID, cred, "")
	if req := decodeTaskRequest(t, r); req.Status != "cancelled" {
		t.Errorf("after a cancel the task reads %s", r.body)
	}
	if task := e.getTask(full, tid); task.Status != "running" || task.RestartRequested {
		t.Errorf("after a cancel: %s", task)
	}

	// An answer: the asking attempt is asked to restart; a task that
	// asked in an earlier attempt is not.
	other, otherCred := e.runningTask(alice, full, pid)
	r = e.call("POST", "/v1/task/secret-requests", cred, `{"names":[{"name":"GITHUB_TOKEN"}]}`)
	want(t, r, 200, "")
	want(t, e.call("POST", "/v1/task/secret-requests", otherCred, `{"names":[{"name":"GITHUB_TOKEN"}]}`), 200, "")
	e.setRunning(alice, other, 2)
	req = decodeTaskRequest(t, r)
	want(t, e.call("POST", "/v1/secret-requests/"+req.ID+"/answer", full, `{"values":{"GITHUB_TOKEN":"CANARY-ask-answer"}}`), 200, "")
	if task := e.getTask(full, tid); !task.RestartRequested || !task.StopRequested {
		t.Errorf("the asking task was not asked to restart: %s", task)
	}
	if task := e.getTask(full, other); task.RestartRequested {
		t.Errorf("a later attempt of a task that asked was restarted: %s", task)
	}
	if logs := e.taskLogs(full, tid); !strings.Contains(logs, "restarting (attempt 2) because secret request "+req.ID+" was answered") {
		t.Errorf("logs %q", logs)
	}
	r = e.call("GET", "/v1/task/secret-requests/"+req.ID, cred, "")
	if got := decodeTaskRequest(t, r); got.Status != "answered" {
		t.Errorf("after the answer the task reads %s", r.body)
	}
	e.finish()
	e.assertNoLeak("CANARY-ask-rules-value", "CANARY-ask-team-value", "CANARY-ask-answer", cred)
}

// TestTaskAPIEdges: each of the four operations answers 401 to a
// credential that proves nothing and 503 on a server without tasks; the
// ask answers 400 to malformed JSON; a task whose profile was deleted gets
// 404 for its keys and its asks.
func TestTaskAPIEdges(t *testing.T) {
	e := newTaskEnv(t, taskEnvOptions{})
	alice, full := e.newUser("alice")
	pid := e.mustProfile(full, "p", "img", nil, nil)
	tid, cred := e.runningTask(alice, full, pid)
	expired := e.svc.IssueTaskCredential(vault.TaskCredential{TaskID: tid, UserID: alice, Attempt: 1, Expires: time.Now().Add(-time.Minute)})
	ops := []struct{ method, path, body string }{
		{"GET", "/v1/task/secret-keys", ""},
		{"GET", "/v1/task/secret-requests", ""},
		{"POST", "/v1/task/secret-requests", `{"names":[{"name":"A"}]}`},
		{"GET", "/v1/task/secret-requests/sreq_x", ""},
	}
	without := newTestEnv(t)
	for _, o := range ops {
		want(t, e.call(o.method, o.path, expired, o.body), http.StatusUnauthorized, "")
		want(t, without.call(o.method, o.path, cred, o.body), http.StatusServiceUnavailable, "")
	}
	want(t, e.call("POST", "/v1/task/secret-requests", cred, `{"names":`), http.StatusBadRequest, "")
	want(t, e.call("DELETE", "/v1/profiles/"+pid, full, ""), http.StatusNoContent, "")
	want(t, e.call("GET", "/v1/task/secret-keys", cred, ""), http.StatusNotFound, "")
	want(t, e.call("POST", "/v1/task/secret-requests", cred, `{"names":[{"name":"A"}]}`), http.StatusNotFound, "")
}

package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

// waitingTask queues a task on the profile and puts it where a worker's
// start would: awaiting secrets, on the profile's request for names.
func (e *taskEnv) waitingTask(user, token, profileID string, names ...string) (taskID string, req *vault.SecretRequest) {
	e.t.Helper()
	r := e.call("POST", "/v1/tasks", token, `{"profile_id":"`+profileID+`","prompt":"p"}`)
	want(e.t, r, http.StatusAccepted, "")
	taskID = r.json(e.t)["id"].(string)
	var list []vault.RequiredSecret
	for _, n := range names {
		list = append(list, vault.RequiredSecret{Name: n, Description: "give " + n})
	}
	req, err := e.svc.OpenSecretRequest(context.Background(), user, profileID, taskID, list, time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	_, err = e.store.UpdateTask(context.Background(), taskID, func(t *orchestrator.Task) error {
		t.Status = orchestrator.StatusAwaitingSecrets
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return taskID, req
}

// TestSecretRequestRoutes: list (pending first), read, answer (values
// write-only, all or nothing, the request's names only, scope agents
// grants its profile, its tasks queued again), cancel (its tasks
// cancelled), and the refusals, each naming its field and changing
// nothing.
func TestSecretRequestRoutes(t *testing.T) {
	const canary = "CANARY-sreq-5be1-value"
	e := newTaskEnv(t, taskEnvOptions{})
	alice, tok := e.newUser("alice")
	_, bob := e.newUser("bob")
	p := e.mustCreate("/v1/profiles", tok, `{"name":"p","image":"img","required_secrets":[{"name":"NEEDED"},{"name":"ALSO"}]}`)
	q := e.mustCreate("/v1/profiles", tok, `{"name":"q","image":"img"}`)
	t1, r1 := e.waitingTask(alice, tok, p, "NEEDED", "ALSO")
	t2, _ := e.waitingTask(alice, tok, p, "NEEDED")
	t3, r3 := e.waitingTask(alice, tok, q, "OTHER")

	// A waiting task names what it waits for: its profile's request.
	missing := `"missing_secrets":{"request_id":"` + r1.ID + `","names":["ALSO","NEEDED"]}`
	for _, path := range []string{"/v1/tasks/" + t1, "/v1/tasks/" + t2, "/v1/tasks"} {
		if r := e.call("GET", path, tok, ""); r.status != 200 || !strings.Contains(string(r.body), missing) {
			t.Errorf("GET %s: %d %s, want %s", path, r.status, r.body, missing)
		}
	}

	r := e.call("GET", "/v1/secret-requests", tok, "")
	want(t, r, 200, "")
	if !strings.Contains(string(r.body), `"id":"`+r1.ID+`"`) || !strings.Contains(string(r.body), `"task_ids":["`+t1+`","`+t2+`"]`) {
		t.Errorf("list: %s", r.body)
	}
	r = e.call("GET", "/v1/secret-requests/"+r1.ID, tok, "")
	want(t, r, 200, "")
	if !strings.Contains(string(r.body), `"names":[{"name":"ALSO","description":"give ALSO"},{"name":"NEEDED","description":"give NEEDED"}]`) ||
		!strings.Contains(string(r.body), `"status":"pending"`) || !strings.Contains(string(r.body), `"answered_at":null`) {
		t.Errorf("read: %s", r.body)
	}
	want(t, e.call("GET", "/v1/secret-requests/"+r1.ID, bob, ""), 404, "")
	want(t, e.call("GET", "/v1/secret-requests/sreq_nope", tok, ""), 404, "")
	if r := e.call("GET", "/v1/secret-requests", bob, ""); string(r.body) != `{"data":[]}` {
		t.Errorf("bob's list: %s", r.body)
	}

	path := "/v1/secret-requests/" + r1.ID + "/answer"
	for _, c := range []struct{ body, field string }{
		{`{"values":{}}`, "values"},
		{`{"values":{"NOT_ASKED":"` + canary + `"}}`, "values"},
		{`{"values":{"NEEDED":"` + canary + `","ALSO":"a\u0000b"}}`, "values"},
		{`{"values":{"NEEDED":"` + canary + `"},"scope":"some"}`, "scope"},
		{`{"values":{"NEEDED":1}}`, "values"},
	} {
		want(t, e.call("POST", path, tok, c.body), 422, c.field)
	}
	want(t, e.call("POST", path, tok, `{"values":{"NEEDED":"`+canary+`"}`), 400, "")
	want(t, e.call("POST", path, bob, `{"values":{"NEEDED":"`+canary+`"}}`), 404, "")
	if r := e.call("GET", "/v1/secrets", tok, ""); strings.Contains(string(r.body), "NEEDED") {
		t.Fatalf("a refused answer stored a secret: %s", r.body)
	}

	r = e.call("POST", path, tok, `{"values":{"NEEDED":"`+canary+`","ALSO":"`+canary+`-2"},"scope":"agents"}`)
	want(t, r, 200, "")
	if !strings.Contains(string(r.body), `"status":"answered"`) || strings.Contains(string(r.body), `"answered_at":null`) {
		t.Errorf("answered: %s", r.body)
	}
	for _, id := range []string{t1, t2} {
		if got, _ := e.store.Task(context.Background(), alice, id); got.Status != orchestrator.StatusQueued {
			t.Errorf("task %s after the answer: %s, want queued", id, got.Status)
		}
		if r := e.call("GET", "/v1/tasks/"+id, tok, ""); !strings.Contains(string(r.body), `"missing_secrets":null`) {
			t.Errorf("task %s after the answer: %s, want missing_secrets null", id, r.body)
		}
	}
	r = e.call("GET", "/v1/profiles/"+p+"/secret-keys", tok, "")
	if !strings.Contains(string(r.body), `{"name":"NEEDED","has_value":true,"source":"agents","required":true,"description":""}`) {
		t.Errorf("after the answer: %s", r.body)
	}
	if r := e.call("GET", "/v1/profiles/"+q+"/secret-keys", tok, ""); strings.Contains(string(r.body), "NEEDED") {
		t.Errorf("scope agents reached another profile: %s", r.body)
	}
	want(t, e.call("POST", path, tok, `{"values":{"NEEDED":"`+canary+`"}}`), 409, "")

	r = e.call("POST", "/v1/secret-requests/"+r3.ID+"/cancel", tok, "")
	want(t, r, 200, "")
	if got, _ := e.store.Task(context.Background(), alice, t3); got.Status != orchestrator.StatusCancelled {
		t.Errorf("task after the cancel: %s", got.Status)
	}
	want(t, e.call("POST", "/v1/secret-requests/"+r3.ID+"/cancel", tok, ""), 409, "")
	want(t, e.call("POST", "/v1/secret-requests/"+r3.ID+"/cancel", bob, ""), 404, "")

	e.testEnv.mu.Lock()
	transcript := e.transcript.String()
	e.testEnv.mu.Unlock()
	if !strings.Contains(transcript, r1.ID) {
		t.Fatal("the transcript holds none of this test's responses")
	}
	if strings.Contains(transcript, canary) || strings.Contains(e.logs.String(), canary) {
		t.Error("a value of an answer reached a response or the log")
	}
}

// TestSecretRequestRoutesWithoutTasks: a server without an orchestrator
// reads requests but cannot answer or cancel them (503).
func TestSecretRequestRoutesWithoutTasks(t *testing.T) {
	e := newTestEnv(t)
	_, tok := e.newUser("alice")
	want(t, e.call("GET", "/v1/secret-requests", tok, ""), 200, "")
	want(t, e.call("POST", "/v1/secret-requests/sreq_x/answer", tok, `{"values":{"A":"b"}}`), 503, "")
	want(t, e.call("POST", "/v1/secret-requests/sreq_x/cancel", tok, ""), 503, "")
}

// TestAnswerReleasesWaitingTasks runs on the real Docker Engine: two tasks
// of a profile requiring a name without a value wait in awaiting_secrets on
// one request; one answer through the API releases both, and each
// container sees the value (its length printed; the value itself would be
// masked).
func TestAnswerReleasesWaitingTasks(t *testing.T) {
	const value = "CANARY-answered-0123456789"
	e := newTaskEnv(t, taskEnvOptions{docker: true})
	_, tok := e.newUser("alice")
	p := e.mustCreate("/v1/profiles", tok, mustJSON(t, map[string]any{"name": "needs", "image": e.shellImage,
		"command":          []string{"/bin/sh", "-c", `echo "len=${#OPENAI_API_KEY}"`},
		"required_secrets": []map[string]string{{"name": "OPENAI_API_KEY", "description": "the team key"}}}))
	first, second := e.startTask(tok, p, "one"), e.startTask(tok, p, "two")
	e.awaitStatus(tok, first.ID, "awaiting_secrets")
	waiting := e.awaitStatus(tok, second.ID, "awaiting_secrets")
	if waiting.Error == nil || !strings.Contains(*waiting.Error, "OPENAI_API_KEY") {
		t.Errorf("a waiting task's error %v does not name the name", waiting.Error)
	}
	r := e.call("GET", "/v1/secret-requests", tok, "")
	want(t, r, 200, "")
	var list struct {
		Data []struct {
			ID      string   `json:"id"`
			TaskIDs []string `json:"task_ids"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.body, &list); err != nil || len(list.Data) != 1 || len(list.Data[0].TaskIDs) != 2 {
		t.Fatalf("requests: %s (%v), want one holding both tasks", r.body, err)
	}
	answered := time.Now()
	want(t, e.call("POST", "/v1/secret-requests/"+list.Data[0].ID+"/answer", tok, `{"values":{"OPENAI_API_KEY":"`+value+`"},"scope":"agents"}`), 200, "")
	for _, id := range []string{first.ID, second.ID} {
		done := e.awaitTask(tok, id, "succeeded", func(a apiTask) bool { return a.Status == "succeeded" })
		if logs := e.taskLogs(tok, id); !strings.Contains(logs, fmt.Sprintf("len=%d\n", len(value))) {
			t.Errorf("task %s logs %q, want the value's length", done.ID, logs)
		}
	}
	t.Logf("answer to both tasks succeeded: %v", time.Since(answered))
	e.testEnv.mu.Lock()
	transcript := e.transcript.String()
	e.testEnv.mu.Unlock()
	if strings.Contains(transcript, value) || strings.Contains(e.logs.String(), value) {
		t.Error("the answered value reached a response or the log")
	}
}

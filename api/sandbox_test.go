package api

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/envvault/envvault/vault"
)

// TestProfileSandboxRefused: a profile asking for more than the operator
// allows is refused with 422 naming the field, and nothing changes.
func TestProfileSandboxRefused(t *testing.T) {
	e := newTestEnv(t)
	_, tok := e.newUser("alice")
	for _, tc := range []struct {
		sandbox string
		field   string
	}{
		{`{"memory_mb":4097}`, "sandbox.memory_mb"},
		{`{"memory_mb":-1}`, "sandbox.memory_mb"},
		{`{"pids_limit":4097}`, "sandbox.pids_limit"},
		{`{"cpu_millis":1000000}`, "sandbox.cpu_millis"},
		{`{"cap_add":["NET_ADMIN"]}`, "sandbox.cap_add"},
		{`{"cap_add":["ALL"]}`, "sandbox.cap_add"},
		{`{"network":"host"}`, "sandbox.network"},
		{`{"writable_rootfs":true}`, "sandbox.writable_rootfs"},
		{`{"user":"a b"}`, "sandbox.user"},
		{`{"env_delivery":"file"}`, "sandbox.env_delivery"},
	} {
		r := e.call("POST", "/v1/profiles", tok, `{"name":"p","image":"img","sandbox":`+tc.sandbox+`}`)
		want(t, r, http.StatusUnprocessableEntity, tc.field)
	}
	if r := e.call("GET", "/v1/profiles", tok, ""); !strings.Contains(string(r.body), `"data":[]`) {
		t.Fatalf("a refused profile was stored: %s", r.body)
	}

	id := e.mustCreate("/v1/profiles", tok, `{"name":"p","image":"img","sandbox":{"user":"1000:1000","memory_mb":256,"network":"none","cap_add":[]}}`)
	before := e.call("GET", "/v1/profiles/"+id, tok, "")
	want(t, before, http.StatusOK, "")
	var p struct {
		Sandbox sandboxJSON `json:"sandbox"`
	}
	if err := json.Unmarshal(before.body, &p); err != nil {
		t.Fatal(err)
	}
	if w := (sandboxJSON{User: "1000:1000", MemoryMB: 256, Network: "none", CapAdd: []string{}}); !reflect.DeepEqual(p.Sandbox, w) {
		t.Fatalf("stored sandbox %+v, want %+v", p.Sandbox, w)
	}
	r := e.call("PATCH", "/v1/profiles/"+id, tok, `{"name":"q","sandbox":{"memory_mb":100000}}`)
	want(t, r, http.StatusUnprocessableEntity, "sandbox.memory_mb")
	if after := e.call("GET", "/v1/profiles/"+id, tok, ""); string(after.body) != string(before.body) {
		t.Fatalf("a refused PATCH changed the profile:\n%s\n%s", before.body, after.body)
	}
	r = e.call("PATCH", "/v1/profiles/"+id, tok, `{"sandbox":null}`)
	want(t, r, http.StatusOK, "")
	if !strings.Contains(string(r.body), `"sandbox":{"user":"","memory_mb":0,"cpu_millis":0,"pids_limit":0,"cap_add":[],"network":"","writable_rootfs":false,"env_delivery":""}`) {
		t.Fatalf("sandbox null should ask for the defaults: %s", r.body)
	}
}

// taskSandbox reads a task's sandbox object.
func (e *taskEnv) taskSandbox(tok, id string) map[string]any {
	e.t.Helper()
	r := e.call("GET", "/v1/tasks/"+id, tok, "")
	want(e.t, r, http.StatusOK, "")
	sb, _ := r.json(e.t)["sandbox"].(map[string]any)
	return sb
}

// TestTaskSandboxInJSONAndInspect: a non-root task runs as its user, and
// its JSON shows the settings `docker inspect` shows.
func TestTaskSandboxInJSONAndInspect(t *testing.T) {
	t.Parallel()
	e := newTaskEnv(t, taskEnvOptions{docker: true, sandbox: vault.SandboxPolicy{ForbidRoot: true, MaxCPUMillis: 2000}})
	_, tok := e.newUser("alice")
	r := e.call("POST", "/v1/profiles", tok, mustJSON(t, map[string]any{"name": "root", "image": e.shellImage, "sandbox": map[string]any{"user": "0"}}))
	want(t, r, http.StatusUnprocessableEntity, "sandbox.user")

	prof := e.mustCreate("/v1/profiles", tok, mustJSON(t, map[string]any{"name": "p", "image": e.shellImage,
		"command": []string{"/bin/sh", "-c", "id; exec sleep 600"},
		"sandbox": map[string]any{"user": "1234:5678", "memory_mb": 64, "pids_limit": 40, "cpu_millis": 500, "network": "none"}}))
	task := e.startTask(tok, prof, "")
	if task.Status != "queued" || e.taskSandbox(tok, task.ID) != nil {
		t.Fatalf("a queued task has no sandbox yet: %s", task)
	}
	running := e.awaitStatus(tok, task.ID, "running")
	if out, _ := e.followLogs(tok, task.ID, func(s string) bool { return strings.Contains(s, "\n") }); !strings.HasPrefix(out, "uid=1234 gid=5678") {
		t.Fatalf("the task printed %q, want it to run as uid 1234 gid 5678", out)
	}
	got := e.taskSandbox(tok, task.ID)
	wantJSON := map[string]any{"user": "1234:5678", "memory_mb": 64.0, "cpu_millis": 500.0, "pids_limit": 40.0,
		"cap_drop": []any{"ALL"}, "cap_add": []any{}, "network": "none", "read_only_rootfs": true,
		"tmpfs": []any{"/tmp"}, "no_new_privileges": true, "privileged": false, "env_delivery": "stdin"}
	if !reflect.DeepEqual(got, wantJSON) {
		t.Fatalf("task sandbox %v, want %v", got, wantJSON)
	}
	c, err := e.cli.ContainerInspect(context.Background(), running.container())
	if err != nil {
		t.Fatal(err)
	}
	h := c.HostConfig
	if c.Config.User != "1234:5678" || h.Memory != 64<<20 || h.NanoCPUs != 500_000_000 || h.PidsLimit == nil || *h.PidsLimit != 40 ||
		h.NetworkMode != "none" || !h.ReadonlyRootfs || h.Privileged || len(h.Binds) != 0 || h.Tmpfs["/tmp"] == "" {
		t.Errorf("docker inspect disagrees with the task's JSON: User %q, HostConfig %+v", c.Config.User, *h)
	}
	e.call("POST", "/v1/tasks/"+task.ID+"/stop", tok, "")
	e.awaitStatus(tok, task.ID, "stopped")
}

// TestHostileTasksContained: a fork bomb and a memory hog run beside the
// API; each is held by its limit, the hog dies of it, and the API answers
// every request meanwhile.
func TestHostileTasksContained(t *testing.T) {
	t.Parallel()
	e := newTaskEnv(t, taskEnvOptions{docker: true})
	_, tok := e.newUser("mallory")
	bomb := e.mustCreate("/v1/profiles", tok, mustJSON(t, map[string]any{"name": "bomb", "image": e.shellImage,
		"command": []string{"/bin/sh", "-c", `(b(){ b | b & }; b) 2>/dev/null; (while :; do sleep 1000 & done) 2>/dev/null; ` +
			`set -- /proc/[0-9]*; echo "contained procs=$#"; exec sleep 1000`},
		"sandbox": map[string]any{"pids_limit": 24, "cpu_millis": 250}}))
	hog := e.mustCreate("/v1/profiles", tok, mustJSON(t, map[string]any{"name": "hog", "image": e.shellImage,
		"command": []string{"/bin/sh", "-c", `x=0123456789abcdef; while :; do x=$x$x; done`},
		"sandbox": map[string]any{"memory_mb": 32}}))
	bt, ht := e.startTask(tok, bomb, ""), e.startTask(tok, hog, "")

	// The API answers while both run.
	out, _ := e.followLogs(tok, bt.ID, func(s string) bool { return strings.Contains(s, "contained procs=") })
	for range 10 {
		start := time.Now()
		r := e.call("GET", "/v1/tasks", tok, "")
		if r.status != http.StatusOK || time.Since(start) > 2*time.Second {
			t.Fatalf("GET /v1/tasks answered %d in %v beside the bomb", r.status, time.Since(start))
		}
	}
	if !strings.Contains(out, "contained procs=") {
		t.Fatalf("the bomb never reached its limit: %q", out)
	}
	hogEnd := e.awaitTask(tok, ht.ID, "finished", func(a apiTask) bool { return a.Status != "queued" && a.Status != "starting" && a.Status != "running" })
	if hogEnd.Status != "failed" || hogEnd.Error == nil || *hogEnd.Error != "exited with code 137" {
		t.Errorf("memory hog ended %s, want failed: exited with code 137 (killed at its memory limit)", hogEnd)
	}
	if b := e.getTask(tok, bt.ID); b.Status != "running" {
		t.Fatalf("the contained bomb should still run: %s", b)
	}
	e.call("POST", "/v1/tasks/"+bt.ID+"/stop", tok, "")
	e.awaitStatus(tok, bt.ID, "stopped")
}

// TestTaskQueueFull: beyond the per-user queue limit, POST /v1/tasks
// answers 429 with Retry-After and creates nothing; another user is not
// held back.
func TestTaskQueueFull(t *testing.T) {
	t.Parallel()
	e := newTaskEnv(t, taskEnvOptions{maxQueued: 3}) // no worker: tasks stay queued
	_, tok := e.newUser("flood")
	_, other := e.newUser("other")
	prof := e.mustProfile(tok, "p", "img", nil, nil)
	for range 3 {
		e.startTask(tok, prof, "")
	}
	r := e.call("POST", "/v1/tasks", tok, mustJSON(t, map[string]string{"profile_id": prof, "prompt": "one too many"}))
	want(t, r, http.StatusTooManyRequests, "")
	if code, _, msg := r.errorOf(t); code != "too_many" || !strings.Contains(msg, "3 tasks queued") {
		t.Errorf("429 body %s", r.body)
	}
	if ra := r.header.Get("Retry-After"); ra != "10" {
		t.Errorf("Retry-After %q, want 10", ra)
	}
	list := e.call("GET", "/v1/tasks", tok, "")
	if n := strings.Count(string(list.body), `"status":"queued"`); n != 3 {
		t.Errorf("%d tasks after the refusal, want 3: %s", n, list.body)
	}
	e.startTask(other, e.mustProfile(other, "p", "img", nil, nil), "")
}

package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/envvault/envvault/internal/testenv"
	"github.com/envvault/envvault/internal/testimage"
	"github.com/envvault/envvault/internal/testvault"
	logmask "github.com/envvault/envvault/mask"
	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/orchestrator/dockerbackend"
	"github.com/envvault/envvault/runner"
	"github.com/envvault/envvault/vault"
)

// awaitTimeout bounds every wait for a task or a container: generous, as
// the engine is shared with other test processes.
const awaitTimeout = 2 * time.Minute

// taskEnvOptions configure newTaskEnv.
type taskEnvOptions struct {
	baseline orchestrator.Baseline
	// docker runs a worker on the real Docker Engine (the test skips, or
	// fails in CI, without one); otherwise the orchestrator has no runner
	// and tasks stay queued.
	docker bool
	// sandbox is the operator's policy for task containers.
	sandbox vault.SandboxPolicy
	// maxQueued is orchestrator.Config.MaxQueuedPerUser.
	maxQueued int
	// backend is the worker's with docker: onDocker ("" too) or onSwarm
	// (swarm_tasks_test.go).
	backend string
	// now is the service's clock; time.Now if nil (oauth2_task_test.go
	// moves it to age tokens).
	now func() time.Time
	// taskAPI serves the API on the Docker bridge's gateway, and gives
	// tasks its URL and a task credential (task_api_docker_test.go).
	taskAPI bool
}

// taskEnv is a testEnv whose server has an orchestrator, over the same
// SQLite store, with a worker on the real Docker Engine if asked for. The
// orchestrator logs to the server's log, so canary checks read both.
type taskEnv struct {
	*testEnv
	orch *orchestrator.Orchestrator
	// With docker only:
	cli                  client.APIClient
	runner               *runner.Runner
	envImage, shellImage string
	swarm                bool // the worker's backend is Swarm's

	mu    sync.Mutex
	users []string // whose containers the cleanup removes
}

func newTaskEnv(t *testing.T, o taskEnvOptions) *taskEnv {
	t.Helper()
	e := &taskEnv{}
	if o.docker {
		e.cli = testenv.RequireDocker(t)
		e.envImage, e.shellImage = testimage.Build(t, e.cli)
		e.runner = newTestRunner(t, e.cli)
	}
	dbPath := filepath.Join(t.TempDir(), "v.db")
	db := testvault.MustSQLite(t, dbPath)
	svc := testvault.MustService(t, db, vault.Options{Names: vault.NamePolicy{Locked: o.baseline.Locked}, Sandbox: o.sandbox, Now: o.now, OAuth2AllowNetworks: testenv.Loopback})
	logs := &testenv.SyncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var backend orchestrator.Backend // a nil *dockerbackend.Backend would be a non-nil Backend
	switch {
	case e.runner != nil && o.backend == onSwarm:
		backend = e.newSwarmBackend(t)
	case e.runner != nil:
		backend = dockerbackend.New(e.runner)
	}
	var ln net.Listener // the bridge's gateway with taskAPI, else 127.0.0.1
	var taskURL string
	if o.taskAPI {
		ln, taskURL = listenOnBridge(t, e.cli)
	}
	e.orch = orchestrator.New(orchestrator.Config{
		Vault: svc, Store: db, Runner: backend, Baseline: o.baseline, Logger: logger, MaxQueuedPerUser: o.maxQueued,
		// Unique per test, so that no worker recovers another test's tasks.
		Worker:     "api-test-" + vault.NewID(""),
		TaskAPIURL: taskURL,
	})
	s := NewServer(Config{Service: svc, Logger: logger, Orchestrator: e.orch})
	srv := httptest.NewUnstartedServer(s.Handler())
	if ln != nil {
		srv.Listener.Close()
		srv.Listener = ln
	}
	srv.Start()
	t.Cleanup(srv.Close)
	doc, router := mustSpec(t)
	e.testEnv = &testEnv{t: t, srv: srv, server: s, svc: svc, store: db, dbPath: dbPath, logs: logs, doc: doc, router: router}
	if o.docker {
		// Cleanups run last first: the worker stops (its containers keep
		// running), then every container of this test's users goes.
		t.Cleanup(e.removeContainers)
		runCtx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.orch.Run(runCtx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("worker: %v", err)
			}
		})
	}
	return e
}

// newUser creates a user whose containers the cleanup removes.
func (e *taskEnv) newUser(name string) (string, string) {
	e.t.Helper()
	id, tok := e.testEnv.newUser(name)
	e.mu.Lock()
	e.users = append(e.users, id)
	e.mu.Unlock()
	return id, tok
}

func (e *taskEnv) removeContainers() {
	e.mu.Lock()
	users := slices.Clone(e.users)
	e.mu.Unlock()
	removeUserContainers(e.t, e.cli, users)
}

// removeUserContainers removes every container labelled with one of the
// users.
func removeUserContainers(tb testing.TB, cli client.APIClient, users []string) {
	ctx, cancel := context.WithTimeout(context.Background(), awaitTimeout)
	defer cancel()
	for _, uid := range users {
		list, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", runner.LabelUser+"="+uid))})
		if err != nil {
			tb.Errorf("list containers of %s: %v", uid, err)
			continue
		}
		for _, c := range list {
			if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
				tb.Errorf("remove container %s: %v", c.ID, err)
			}
		}
	}
}

// apiTask is the Task schema of the OpenAPI document.
type apiTask struct {
	ID               string           `json:"id"`
	ProfileID        string           `json:"profile_id"`
	Prompt           string           `json:"prompt"`
	Status           string           `json:"status"`
	ExitCode         *int             `json:"exit_code"`
	ContainerID      *string          `json:"container_id"`
	Attempt          int              `json:"attempt"`
	Error            *string          `json:"error"`
	StopRequested    bool             `json:"stop_requested"`
	RestartRequested bool             `json:"restart_requested"`
	EnvSources       []map[string]any `json:"env_sources"`
	Stale            *struct {
		Names []string `json:"names"`
	} `json:"stale"`
	CreatedAt  string  `json:"created_at"`
	UpdatedAt  string  `json:"updated_at"`
	StartedAt  *string `json:"started_at"`
	FinishedAt *string `json:"finished_at"`
}

func (a apiTask) String() string {
	b, _ := json.Marshal(a)
	return string(b)
}

func (a apiTask) container() string {
	if a.ContainerID == nil {
		return ""
	}
	return *a.ContainerID
}

func (a apiTask) staleNames() []string {
	if a.Stale == nil {
		return nil
	}
	return a.Stale.Names
}

func decodeTask(t *testing.T, r *response) apiTask {
	t.Helper()
	var task apiTask
	if err := json.Unmarshal(r.body, &task); err != nil {
		t.Fatalf("not a task: %v: %s", err, r.body)
	}
	return task
}

// mustJSON marshals v for a request body.
func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mustProfile creates a profile of image running command.
func (e *taskEnv) mustProfile(tok, name, image string, command []string, env map[string]string) string {
	e.t.Helper()
	body := map[string]any{"name": name, "image": image}
	if command != nil {
		body["command"] = command
	}
	if env != nil {
		body["env"] = env
	}
	return e.mustCreate("/v1/profiles", tok, mustJSON(e.t, body))
}

// mustSecret creates a secret; with profile ids, of scope agents.
func (e *taskEnv) mustSecret(tok, name, value string, profileIDs ...string) string {
	e.t.Helper()
	body := map[string]any{"name": name, "value": value}
	if len(profileIDs) > 0 {
		body["scope"], body["profile_ids"] = "agents", profileIDs
	}
	return e.mustCreate("/v1/secrets", tok, mustJSON(e.t, body))
}

// startTask posts a task and returns it as the 202 showed it.
func (e *taskEnv) startTask(tok, profileID, prompt string) apiTask {
	e.t.Helper()
	r := e.call("POST", "/v1/tasks", tok, mustJSON(e.t, map[string]string{"profile_id": profileID, "prompt": prompt}))
	want(e.t, r, http.StatusAccepted, "")
	task := decodeTask(e.t, r)
	if loc := r.header.Get("Location"); loc != "/v1/tasks/"+task.ID {
		e.t.Errorf("Location %q for task %s", loc, task.ID)
	}
	return task
}

func (e *taskEnv) getTask(tok, id string) apiTask {
	e.t.Helper()
	r := e.call("GET", "/v1/tasks/"+id, tok, "")
	want(e.t, r, http.StatusOK, "")
	return decodeTask(e.t, r)
}

// taskLogs GETs a task's logs without follow.
func (e *taskEnv) taskLogs(tok, id string) string {
	e.t.Helper()
	r := e.call("GET", "/v1/tasks/"+id+"/logs", tok, "")
	want(e.t, r, http.StatusOK, "")
	if ct := r.header.Get("Content-Type"); ct != "text/plain; charset=UTF-8" {
		e.t.Errorf("logs Content-Type %q", ct)
	}
	return string(r.body)
}

// awaitTask waits until GET shows the task in a state ok accepts, and
// returns it. It reads the task again at every change the orchestrator
// signals (all tasks run in this process), never on a timer.
func (e *taskEnv) awaitTask(tok, id, what string, ok func(apiTask) bool) apiTask {
	e.t.Helper()
	deadline := time.NewTimer(awaitTimeout)
	defer deadline.Stop()
	for {
		changed := e.orch.Changes()
		task := e.getTask(tok, id)
		if ok(task) {
			return task
		}
		select {
		case <-changed:
		case <-deadline.C:
			e.t.Fatalf("task %s: not %s after %v: %s", id, what, awaitTimeout, task)
		}
	}
}

// awaitStatus waits for the task to be in status; it fails at once if the
// task ends in another (an ended task never changes again).
func (e *taskEnv) awaitStatus(tok, id string, status string) apiTask {
	e.t.Helper()
	return e.awaitTask(tok, id, status, func(a apiTask) bool {
		if a.Status != status && orchestrator.Status(a.Status).Done() {
			e.t.Fatalf("task %s ended %s while awaited %s: %s", id, a.Status, status, a)
		}
		return a.Status == status
	})
}

// followLogs streams the task's logs (follow=true) until the text so far
// satisfies enough, or the stream ends; ended says which.
func (e *taskEnv) followLogs(tok, id string, enough func(string) bool) (text string, ended bool) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), awaitTimeout)
	defer cancel()
	req := e.request("GET", "/v1/tasks/"+id+"/logs?follow=true", tok, "").WithContext(ctx)
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("follow logs of %s: %v", id, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/plain; charset=UTF-8" {
		body, _ := io.ReadAll(res.Body)
		e.t.Fatalf("follow logs of %s: %d %s %s", id, res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		if enough != nil && enough(b.String()) {
			return b.String(), false
		}
		n, err := res.Body.Read(buf)
		b.Write(buf[:n])
		if errors.Is(err, io.EOF) {
			return b.String(), true
		}
		if err != nil {
			e.t.Fatalf("follow logs of %s: %v after %q", id, err, b.String())
		}
	}
}

// rawLogs reads a container's output straight from the engine, unmasked:
// what the program inside printed.
func (e *taskEnv) rawLogs(id string) string {
	e.t.Helper()
	rc, err := e.cli.ContainerLogs(context.Background(), e.ctr(id), container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		e.t.Fatalf("raw logs of %s: %v", id, err)
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil {
		e.t.Fatalf("raw logs of %s: %v", id, err)
	}
	return out.String()
}

// containerEnv is the env of a running container's process, what
// `docker inspect` shows with env delivery "env" (pid1Env).
func (e *taskEnv) containerEnv(id string) map[string]string {
	e.t.Helper()
	return envMap(e.t, pid1Env(e.t, e.cli, e.ctr(id)))
}

func (e *taskEnv) running(id string) bool {
	e.t.Helper()
	c, err := e.runner.Inspect(context.Background(), e.ctr(id))
	if err != nil {
		e.t.Fatalf("inspect container %s: %v", id, err)
	}
	return c.Running
}

// awaitRemoved waits until the container is gone.
func (e *taskEnv) awaitRemoved(id string) {
	e.t.Helper()
	if e.swarm {
		e.awaitServiceGone(id)
		return
	}
	awaitContainerGone(e.t, e.cli, id)
}

func awaitContainerGone(tb testing.TB, cli client.APIClient, id string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), awaitTimeout)
	defer cancel()
	resC, errC := cli.ContainerWait(ctx, id, container.WaitConditionRemoved)
	select {
	case <-resC:
	case err := <-errC:
		if !cerrdefs.IsNotFound(err) {
			tb.Fatalf("container %s not removed: %v", id, err)
		}
	}
}

// envMap reads NAME=value lines.
func envMap(t *testing.T, lines []string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, l := range lines {
		name, value, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("env line %q has no '='", l)
		}
		m[name] = value
	}
	return m
}

// printedEnv reads the env envprobe printed, up to the line stop.
func printedEnv(t *testing.T, out, stop string) map[string]string {
	t.Helper()
	before, _, ok := strings.Cut(out, stop+"\n")
	if !ok {
		t.Fatalf("output lacks %q: %q", stop, out)
	}
	return envMap(t, strings.Split(strings.TrimSuffix(before, "\n"), "\n"))
}

// imageEnv is the env an image sets itself (Docker's default PATH).
func (e *taskEnv) imageEnv(image string) map[string]string {
	e.t.Helper()
	inspect, err := e.cli.ImageInspect(context.Background(), image)
	if err != nil {
		e.t.Fatal(err)
	}
	if inspect.Config == nil {
		return map[string]string{}
	}
	return envMap(e.t, inspect.Config.Env)
}

// mask replaces every value in s with logmask.Placeholder, longest value first.
func mask(s string, values ...string) string {
	values = slices.Clone(values)
	slices.SortFunc(values, func(a, b string) int { return len(b) - len(a) })
	for _, v := range values {
		if len(v) >= logmask.MinLen {
			s = strings.ReplaceAll(s, v, logmask.Placeholder)
		}
	}
	return s
}

// assertNoLeak fails if any value is in a response, a log line or a
// database file. Call it after e.finish().
func (e *taskEnv) assertNoLeak(values ...string) {
	t := e.t
	t.Helper()
	e.testEnv.mu.Lock()
	transcript := e.transcript.String()
	e.testEnv.mu.Unlock()
	logs := e.logs.String()
	if !strings.Contains(transcript, `"id":"tsk_`) || !strings.Contains(logs, `"msg":"request"`) {
		t.Fatal("the transcript holds no task, or the log no request: nothing to scan")
	}
	files := dbFiles(t, e.dbPath, "tsk_")
	for _, v := range values {
		for _, form := range []string{v, base64.StdEncoding.EncodeToString([]byte(v)), base64.RawURLEncoding.EncodeToString([]byte(v))} {
			if i := strings.Index(transcript, form); i >= 0 {
				t.Errorf("a response holds a value: …%s…", transcript[max(0, i-300):min(len(transcript), i+100)])
			}
			if strings.Contains(logs, form) {
				t.Errorf("the server log holds a value")
			}
			for f, b := range files {
				if strings.Contains(b, form) {
					t.Errorf("database file %s holds a value", f)
				}
			}
		}
	}
}

// TestTasksWithoutOrchestrator: a server started without tasks answers 503
// on every task route, after auth and the body checks.
func TestTasksWithoutOrchestrator(t *testing.T) {
	e := newTestEnv(t)
	_, tok := e.newUser("alice")
	pid := e.mustCreate("/v1/profiles", tok, `{"name":"p","image":"img"}`)
	r := e.call("POST", "/v1/tasks", tok, `{"profile_id":"`+pid+`"}`)
	want(t, r, http.StatusServiceUnavailable, "")
	if _, _, msg := r.errorOf(t); msg != "tasks are not enabled on this server" {
		t.Errorf("message %q", msg)
	}
	want(t, e.call("POST", "/v1/tasks", tok, `{"profile_id":`), 400, "")
	want(t, e.call("POST", "/v1/tasks", tok, `{"profile":"x"}`), 422, "profile")
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/tasks"}, {"GET", "/v1/tasks/tsk_x"}, {"GET", "/v1/tasks/tsk_x/logs"}, {"GET", "/v1/tasks/tsk_x/logs?follow=true"},
		{"POST", "/v1/tasks/tsk_x/stop"}, {"POST", "/v1/tasks/tsk_x/restart"},
	} {
		want(t, e.call(c.method, c.path, tok, ""), http.StatusServiceUnavailable, "")
		want(t, e.call(c.method, c.path, "", ""), http.StatusUnauthorized, "")
	}
	// The vault routes do not care.
	want(t, e.call("GET", "/v1/profiles/"+pid, tok, ""), 200, "")
}

// TestTaskLifecycleQueued drives every task route on a server whose
// orchestrator has no runner: tasks stay queued until stopped, and a
// restart queues them again.
func TestTaskLifecycleQueued(t *testing.T) {
	e := newTaskEnv(t, taskEnvOptions{})
	_, tok := e.newUser("alice")
	pid := e.mustCreate("/v1/profiles", tok, `{"name":"p","image":"img"}`)

	task := e.startTask(tok, pid, "fix the bug")
	if !strings.HasPrefix(task.ID, "tsk_") || task.Status != "queued" || task.ProfileID != pid || task.Prompt != "fix the bug" ||
		task.Attempt != 1 || task.ExitCode != nil || task.ContainerID != nil || task.Error != nil || task.Stale != nil ||
		task.StartedAt != nil || task.FinishedAt != nil || len(task.EnvSources) != 0 || task.StopRequested || task.RestartRequested {
		t.Errorf("created: %s", task)
	}
	r := e.call("POST", "/v1/tasks", tok, `{"profile_id":"`+pid+`"}`)
	want(t, r, http.StatusAccepted, "")
	if p := decodeTask(t, r).Prompt; p != "" {
		t.Errorf("prompt defaults to %q", p)
	}
	if got := e.getTask(tok, task.ID); got.String() != task.String() {
		t.Errorf("GET %s\nPOST %s", got, task)
	}
	if s := e.taskLogs(tok, task.ID); s != "" {
		t.Errorf("logs of a queued task: %q", s)
	}

	r = e.call("POST", "/v1/tasks/"+task.ID+"/stop", tok, "")
	want(t, r, http.StatusAccepted, "")
	stopped := decodeTask(t, r)
	if stopped.Status != "stopped" || stopped.FinishedAt == nil || stopped.ExitCode != nil || stopped.Error != nil {
		t.Errorf("stopped: %s", stopped)
	}
	// Stopping again changes nothing; a finished task's logs end at once.
	r = e.call("POST", "/v1/tasks/"+task.ID+"/stop", tok, `{"ignored":true}`)
	want(t, r, http.StatusAccepted, "")
	if again := decodeTask(t, r); again.Status != "stopped" || *again.FinishedAt != *stopped.FinishedAt {
		t.Errorf("stopped twice: %s", again)
	}
	if text, ended := e.followLogs(tok, task.ID, nil); !ended || text != "" {
		t.Errorf("follow of a stopped task: %q, ended %v", text, ended)
	}

	r = e.call("POST", "/v1/tasks/"+task.ID+"/restart", tok, "")
	want(t, r, http.StatusAccepted, "")
	restarted := decodeTask(t, r)
	if restarted.Status != "queued" || restarted.Attempt != 2 || restarted.FinishedAt != nil || restarted.StopRequested {
		t.Errorf("restarted: %s", restarted)
	}
	r = e.call("POST", "/v1/tasks/"+task.ID+"/restart", tok, "")
	want(t, r, http.StatusAccepted, "")
	if again := decodeTask(t, r); again.Attempt != 2 || again.Status != "queued" {
		t.Errorf("restart of a queued task: %s", again)
	}

	t.Run("logs follow streams each chunk", func(t *testing.T) {
		e.t = t
		// Chunks written to the store as a worker would; the stream
		// shows the first before the task ends, and ends with it.
		if err := e.store.AppendTaskLog(context.Background(), task.ID, []byte("first chunk\n")); err != nil {
			t.Fatal(err)
		}
		text, ended := e.followLogs(tok, task.ID, func(s string) bool { return s == "first chunk\n" })
		if ended || text != "first chunk\n" {
			t.Fatalf("follow: %q, ended %v", text, ended)
		}
		done := make(chan string, 1)
		go func() {
			text, _ := e.followLogs(tok, task.ID, nil)
			done <- text
		}()
		if err := e.store.AppendTaskLog(context.Background(), task.ID, []byte("second chunk\n")); err != nil {
			t.Error(err)
		}
		want(t, e.call("POST", "/v1/tasks/"+task.ID+"/stop", tok, ""), http.StatusAccepted, "")
		if got := <-done; got != "first chunk\nsecond chunk\n" {
			t.Errorf("follow until stopped: %q", got)
		}
		if got := e.taskLogs(tok, task.ID); got != "first chunk\nsecond chunk\n" {
			t.Errorf("logs: %q", got)
		}
		for _, q := range []string{"follow=maybe", "follow=", "follow=true&follow=false"} {
			want(t, e.call("GET", "/v1/tasks/"+task.ID+"/logs?"+q, tok, ""), 422, "follow")
		}
		for _, q := range []string{"follow=false", "follow=1", "follow=TRUE"} {
			want(t, e.call("GET", "/v1/tasks/"+task.ID+"/logs?"+q, tok, ""), 200, "")
		}
	})

	t.Run("rules", func(t *testing.T) {
		e.t = t
		_, bobTok := e.newUser("bob")
		bobProfile := e.mustCreate("/v1/profiles", bobTok, `{"name":"p","image":"img"}`)
		never := vault.NewID(vault.PrefixProfile)
		want(t, e.call("POST", "/v1/tasks", tok, `{}`), 422, "profile_id")
		want(t, e.call("POST", "/v1/tasks", tok, `{"profile_id":""}`), 422, "profile_id")
		a := e.call("POST", "/v1/tasks", tok, `{"profile_id":"`+bobProfile+`"}`)
		b := e.call("POST", "/v1/tasks", tok, `{"profile_id":"`+never+`"}`)
		want(t, a, 422, "profile_id")
		if !bytes.Equal(a.body, b.body) {
			t.Errorf("other user's profile: %s\nunknown profile: %s", a.body, b.body)
		}
		for _, body := range []string{
			`{"profile_id":"` + pid + `","prompt":"a\u0000b"}`,
			`{"profile_id":"` + pid + `","prompt":"` + strings.Repeat("x", orchestrator.MaxPromptLen+1) + `"}`,
			`{"profile_id":"` + pid + `","prompt":"` + strings.Repeat("é", orchestrator.MaxPromptLen/2+1) + `"}`,
		} {
			want(t, e.call("POST", "/v1/tasks", tok, body), 422, "prompt")
		}
		want(t, e.call("POST", "/v1/tasks", tok, `{"profile_id":"`+pid+`","prompt":"`+strings.Repeat("x", orchestrator.MaxPromptLen)+`"}`), 202, "")
		// Strict JSON, as every body.
		for _, c := range []struct {
			body   string
			status int
			field  string
		}{
			{`{"profile_id":null}`, 422, "profile_id"},
			{`{"profile_id":"` + pid + `","prompt":null}`, 422, "prompt"},
			{`{"profile_id":"` + pid + `","prompt":7}`, 422, "prompt"},
			{`{"profile_id":"` + pid + `","Prompt":"x"}`, 422, "Prompt"},
			{`{"profile_id":"` + pid + `","env":{"A":"1"}}`, 422, "env"},
			{`{"profile_id":"` + pid + `","profile_id":"` + pid + `"}`, 400, "profile_id"},
			{`{"profile_id":"` + pid + `"} {}`, 400, ""},
			{`["` + pid + `"]`, 400, ""},
		} {
			r := e.call("POST", "/v1/tasks", tok, c.body)
			want(t, r, c.status, c.field)
		}
		req := e.request("POST", "/v1/tasks", tok, `{"profile_id":"`+pid+`"}`)
		req.Header.Set("Content-Type", "text/plain")
		want(t, e.send(req), 415, "")
	})

	t.Run("another user's task answers as one that never existed", func(t *testing.T) {
		e.t = t
		_, bobTok := e.newUser("bob2")
		bobProfile := e.mustCreate("/v1/profiles", bobTok, `{"name":"p","image":"img"}`)
		bobTask := e.startTask(bobTok, bobProfile, "bob's")
		never := vault.NewID(vault.PrefixTask)
		for _, c := range []struct{ method, path string }{
			{"GET", "/v1/tasks/%s"}, {"GET", "/v1/tasks/%s/logs"}, {"GET", "/v1/tasks/%s/logs?follow=true"},
			{"POST", "/v1/tasks/%s/stop"}, {"POST", "/v1/tasks/%s/restart"},
		} {
			a := e.call(c.method, fmt.Sprintf(c.path, bobTask.ID), tok, "")
			b := e.call(c.method, fmt.Sprintf(c.path, never), tok, "")
			want(t, a, 404, "")
			if !bytes.Equal(a.body, b.body) || string(a.body) != `{"error":{"code":"not_found","message":"task not found"}}` {
				t.Errorf("%s %s: other user's task answers %s, a never-existing one %s", c.method, c.path, a, b)
			}
		}
		if got := e.getTask(bobTok, bobTask.ID); got.String() != bobTask.String() {
			t.Errorf("bob's task changed: %s", got)
		}
		r := e.call("GET", "/v1/tasks", tok, "")
		if strings.Contains(string(r.body), bobTask.ID) {
			t.Errorf("alice lists bob's task: %s", r.body)
		}
	})

	t.Run("pagination", func(t *testing.T) {
		e.t = t
		_, tok := e.newUser("carol")
		pid := e.mustCreate("/v1/profiles", tok, `{"name":"p","image":"img"}`)
		var ids []string
		for i := range 5 {
			ids = append(ids, e.startTask(tok, pid, fmt.Sprint(i)).ID)
		}
		slices.Reverse(ids) // newest first
		var got []string
		path, pages := "/v1/tasks?limit=2", 0
		for {
			r := e.call("GET", path, tok, "")
			want(t, r, 200, "")
			var page struct {
				Data       []apiTask `json:"data"`
				NextCursor *string   `json:"next_cursor"`
			}
			if err := json.Unmarshal(r.body, &page); err != nil {
				t.Fatal(err)
			}
			pages++
			for _, d := range page.Data {
				got = append(got, d.ID)
			}
			if page.NextCursor == nil || pages > 5 {
				break
			}
			path = "/v1/tasks?limit=2&cursor=" + *page.NextCursor
		}
		if !slices.Equal(got, ids) || pages != 3 {
			t.Errorf("pages %d, ids %v, want 3 pages of %v", pages, got, ids)
		}
		for _, q := range []struct{ query, field string }{
			{"limit=0", "limit"}, {"limit=201", "limit"}, {"limit=x", "limit"}, {"cursor=%00", "cursor"},
			{"cursor=" + base64.RawURLEncoding.EncodeToString([]byte("name\x00tsk_x")), "cursor"}, {"q=fix", "q"},
		} {
			want(t, e.call("GET", "/v1/tasks?"+q.query, tok, ""), 422, q.field)
		}
	})
}

// TestTaskLockedNames: a locked name, or one that changes how programs
// load code, cannot be a secret's; a profile may name it in its env, and
// the baseline wins (TestTaskEnvEndToEnd checks the container's env).
func TestTaskLockedNames(t *testing.T) {
	e := newTaskEnv(t, taskEnvOptions{baseline: orchestrator.Baseline{
		Env: map[string]string{"ANTHROPIC_API_KEY": "sk-ant-platform"}, Locked: []string{"ANTHROPIC_API_KEY"},
	}})
	_, tok := e.newUser("alice")
	pid := e.mustCreate("/v1/profiles", tok, `{"name":"p","image":"img","env":{"ANTHROPIC_API_KEY":"mine"}}`)
	r := e.call("POST", "/v1/secrets", tok, `{"name":"ANTHROPIC_API_KEY","value":"sk-ant-mine"}`)
	want(t, r, 422, "name")
	if _, _, msg := r.errorOf(t); !strings.Contains(msg, "locked") {
		t.Errorf("message does not say why: %q", msg)
	}
	want(t, e.call("POST", "/v1/secrets", tok, `{"name":"ANTHROPIC_API_KEY","value":"sk-ant-mine","scope":"agents","profile_ids":["`+pid+`"]}`), 422, "name")
	sid := e.mustSecret(tok, "MY_KEY", "sk-ant-mine")
	want(t, e.call("PATCH", "/v1/secrets/"+sid, tok, `{"name":"ANTHROPIC_API_KEY"}`), 422, "name")
	for _, name := range []string{"LD_PRELOAD", "NODE_OPTIONS", "BASH_ENV"} {
		want(t, e.call("POST", "/v1/secrets", tok, `{"name":"`+name+`","value":"/tmp/x.so"}`), 422, "name")
	}
}

// TestTaskEnvEndToEnd runs a task on a profile with all and agents
// secrets, profile env and baseline env, and checks its env inside the
// container (what the program printed), with docker inspect, in its
// env_sources, and masked in its logs.
func TestTaskEnvEndToEnd(t *testing.T) { forEachTaskBackend(t, testTaskEnvEndToEnd) }

func testTaskEnvEndToEnd(t *testing.T, backend string) {
	baseline := orchestrator.Baseline{
		Env: map[string]string{
			"ANTHROPIC_API_KEY": "sk-ant-baseline-0001", "MCP_URL": "http://mcp.internal:8080/sse",
			"BASE_ONLY": "baseline-only-value", "LOG_LEVEL": "baseline-level", "SHARED": "baseline-shared",
		},
		Locked: []string{"ANTHROPIC_API_KEY", "NOBODY_SETS"},
	}
	e := newTaskEnv(t, taskEnvOptions{docker: true, baseline: baseline, backend: backend})
	_, tok := e.newUser("alice")
	ready := "READY-" + vault.NewID("")
	command := []string{testimage.EnvProbe, "env", "--", "print", ready, "--", "sleep", "forever"}
	pid := e.mustProfile(tok, "agent", e.envImage, command, map[string]string{
		"LOG_LEVEL": "profile-level", "SHARED": "profile-shared", "PROFILE_ONLY": "profile-only-value",
		"ANTHROPIC_API_KEY": "profile-tries-the-key", "NOBODY_SETS": "profile-tries-this", "TASK_ID": "forged", "DB_URL": "profile-db",
	})
	other := e.mustProfile(tok, "other", e.envImage, nil, nil)
	dbURL := e.mustSecret(tok, "DB_URL", "postgres://all-secret@db/app")
	e.mustSecret(tok, "SHARED", "all-shared-secret")
	shared := e.mustSecret(tok, "SHARED", "agents-shared-secret", pid)
	apiToken := e.mustSecret(tok, "API_TOKEN", "agents-api-token-value", pid, other)
	e.mustSecret(tok, "OTHER_AGENT", "not-for-this-profile", other)
	const prompt = "summarize the repository"

	task := e.startTask(tok, pid, prompt)
	text, _ := e.followLogs(tok, task.ID, func(s string) bool { return strings.Contains(s, ready+"\n") })
	task = e.getTask(tok, task.ID)
	if task.Status != "running" || task.container() == "" || task.StartedAt == nil || task.Stale != nil {
		t.Fatalf("running task: %s", task)
	}
	wantEnv := map[string]string{
		"ANTHROPIC_API_KEY": "sk-ant-baseline-0001", // locked: the baseline's, not the profile's
		"MCP_URL":           "http://mcp.internal:8080/sse",
		"BASE_ONLY":         "baseline-only-value",
		"LOG_LEVEL":         "profile-level",                // profile over baseline
		"PROFILE_ONLY":      "profile-only-value",           //
		"DB_URL":            "postgres://all-secret@db/app", // all secret over profile
		"SHARED":            "agents-shared-secret",         // agents over all over profile over baseline
		"API_TOKEN":         "agents-api-token-value",       //
		"TASK_ID":           task.ID,                        // the task's over the profile's
		"TASK_PROMPT":       prompt,
	}

	// docker inspect: the merged env plus what the image sets itself.
	inspected := e.containerEnv(task.container())
	wantInspected := e.imageEnv(e.envImage)
	maps.Copy(wantInspected, wantEnv)
	if !maps.Equal(inspected, wantInspected) {
		t.Errorf("docker inspect env:\n%v\nwant\n%v", inspected, wantInspected)
	}
	// Inside: the same, plus what Docker adds to every process.
	raw := e.rawLogs(task.container())
	printed := printedEnv(t, raw, ready)
	for _, name := range []string{"HOSTNAME", "HOME"} {
		if _, ok := wantInspected[name]; !ok {
			delete(printed, name)
		}
	}
	if !maps.Equal(printed, wantInspected) {
		t.Errorf("env inside the container:\n%v\nwant\n%v", printed, wantInspected)
	}
	// The API's logs are the container's output with every secret and
	// baseline value masked.
	var values []string
	values = append(values, slices.Collect(maps.Values(baseline.Env))...)
	values = append(values, "postgres://all-secret@db/app", "all-shared-secret", "agents-shared-secret", "agents-api-token-value", "not-for-this-profile")
	if masked := mask(raw, values...); text != masked || e.taskLogs(tok, task.ID) != masked {
		t.Errorf("logs:\n%s\nwant\n%s", text, masked)
	}
	if !strings.Contains(text, "TASK_PROMPT="+prompt+"\n") || !strings.Contains(text, "API_TOKEN=***\n") {
		t.Errorf("logs are not masked as expected:\n%s", text)
	}

	wantSources := []map[string]any{
		{"name": "ANTHROPIC_API_KEY", "source": "baseline"},
		{"name": "API_TOKEN", "source": "secret", "secret_id": apiToken, "scope": "agents", "version": 1.0},
		{"name": "BASE_ONLY", "source": "baseline"},
		{"name": "DB_URL", "source": "secret", "secret_id": dbURL, "scope": "all", "version": 1.0},
		{"name": "LOG_LEVEL", "source": "profile"},
		{"name": "MCP_URL", "source": "baseline"},
		{"name": "PROFILE_ONLY", "source": "profile"},
		{"name": "SHARED", "source": "secret", "secret_id": shared, "scope": "agents", "version": 1.0},
		{"name": "TASK_ID", "source": "task"},
		{"name": "TASK_PROMPT", "source": "task"},
	}
	if got, _ := json.Marshal(task.EnvSources); string(got) != string(must(json.Marshal(wantSources))) {
		t.Errorf("env_sources:\n%s\nwant\n%s", got, must(json.Marshal(wantSources)))
	}

	r := e.call("POST", "/v1/tasks/"+task.ID+"/stop", tok, "")
	want(t, r, http.StatusAccepted, "")
	if s := decodeTask(t, r); !s.StopRequested || s.Status != "running" {
		t.Errorf("stop of a running task: %s", s)
	}
	stopped := e.awaitStatus(tok, task.ID, "stopped")
	if stopped.ExitCode == nil || *stopped.ExitCode != 143 || stopped.Error != nil || stopped.FinishedAt == nil {
		t.Errorf("stopped: %s", stopped)
	}
	e.awaitRemoved(task.container())
	if logs := e.taskLogs(tok, task.ID); !strings.HasSuffix(logs, "envprobe: terminated\n") {
		t.Errorf("logs after stop: %q", logs)
	}
	e.finish()
	e.assertNoLeak(values...)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestTaskRotation: a PATCH between two task starts changes the second
// task's env and not the first's, which keeps running and shows as stale;
// a restart gives it the new value.
func TestTaskRotation(t *testing.T) { forEachTaskBackend(t, testTaskRotation) }

func testTaskRotation(t *testing.T, backend string) {
	e := newTaskEnv(t, taskEnvOptions{docker: true, backend: backend})
	_, tok := e.newUser("alice")
	ready := "READY-" + vault.NewID("")
	pid := e.mustProfile(tok, "agent", e.envImage, []string{testimage.EnvProbe, "echo", "ROTATED", "--", "print", ready, "--", "sleep", "forever"}, nil)
	sid := e.mustSecret(tok, "ROTATED", "rotated-value-one")
	e.mustSecret(tok, "STEADY", "steady-value")
	untilReady := func(s string) bool { return strings.Count(s, ready+"\n") == 1 }

	first := e.startTask(tok, pid, "first")
	e.followLogs(tok, first.ID, untilReady)
	first = e.getTask(tok, first.ID)
	want(t, e.call("PATCH", "/v1/secrets/"+sid, tok, `{"value":"rotated-value-two"}`), 200, "")

	second := e.startTask(tok, pid, "second")
	e.followLogs(tok, second.ID, untilReady)
	second = e.getTask(tok, second.ID)

	if v := e.containerEnv(second.container())["ROTATED"]; v != "rotated-value-two" {
		t.Errorf("second task's ROTATED (inspect) = %q", v)
	}
	if out := e.rawLogs(second.container()); out != "rotated-value-two\n"+ready+"\n" {
		t.Errorf("second task printed %q", out)
	}
	if !e.running(first.container()) {
		t.Fatal("the first task's container is no longer running")
	}
	if v := e.containerEnv(first.container())["ROTATED"]; v != "rotated-value-one" {
		t.Errorf("first task's ROTATED (inspect) = %q, want the value it started with", v)
	}
	if out := e.rawLogs(first.container()); out != "rotated-value-one\n"+ready+"\n" {
		t.Errorf("first task printed %q", out)
	}

	got := e.getTask(tok, first.ID)
	if got.Status != "running" || !slices.Equal(got.staleNames(), []string{"ROTATED"}) {
		t.Errorf("first task after the PATCH: %s", got)
	}
	if s := e.getTask(tok, second.ID); s.Stale != nil {
		t.Errorf("second task is stale: %s", s)
	}
	version := func(a apiTask, name string) any {
		for _, s := range a.EnvSources {
			if s["name"] == name {
				return s["version"]
			}
		}
		return nil
	}
	if version(first, "ROTATED") != 1.0 || version(second, "ROTATED") != 2.0 {
		t.Errorf("env_sources versions: first %v, second %v", version(first, "ROTATED"), version(second, "ROTATED"))
	}
	// The list shows staleness too.
	r := e.call("GET", "/v1/tasks", tok, "")
	want(t, r, 200, "")
	if !strings.Contains(string(r.body), `"stale":{"names":["ROTATED"]}`) {
		t.Errorf("list does not show the stale task: %s", r.body)
	}

	// Restart: the container is replaced by one with the current value.
	r = e.call("POST", "/v1/tasks/"+first.ID+"/restart", tok, "")
	want(t, r, http.StatusAccepted, "")
	if a := decodeTask(t, r); !a.StopRequested || !a.RestartRequested || a.Attempt != 1 {
		t.Errorf("restart of a running task: %s", a)
	}
	restarted := e.awaitTask(tok, first.ID, "running again", func(a apiTask) bool {
		return a.Attempt == 2 && a.Status == "running"
	})
	e.followLogs(tok, first.ID, func(s string) bool { return strings.Count(s, ready+"\n") == 2 })
	if restarted.container() == first.container() || restarted.Stale != nil || version(restarted, "ROTATED") != 2.0 ||
		restarted.StopRequested || restarted.RestartRequested || restarted.ExitCode != nil {
		t.Errorf("restarted: %s", restarted)
	}
	e.awaitRemoved(first.container())
	if v := e.containerEnv(restarted.container())["ROTATED"]; v != "rotated-value-two" {
		t.Errorf("restarted task's ROTATED (inspect) = %q", v)
	}
	if out := e.rawLogs(restarted.container()); out != "rotated-value-two\n"+ready+"\n" {
		t.Errorf("restarted task printed %q", out)
	}
	// Its logs keep both attempts, masked.
	if logs, wantLogs := e.taskLogs(tok, first.ID), "***\n"+ready+"\nenvprobe: terminated\n***\n"+ready+"\n"; logs != wantLogs {
		t.Errorf("logs of the restarted task: %q, want %q", logs, wantLogs)
	}

	// Deleting a secret makes a running task stale too.
	want(t, e.call("DELETE", "/v1/secrets/"+sid, tok, ""), 204, "")
	if s := e.getTask(tok, second.ID); !slices.Equal(s.staleNames(), []string{"ROTATED"}) {
		t.Errorf("second task after the delete: %s", s)
	}
	for _, id := range []string{first.ID, second.ID} {
		want(t, e.call("POST", "/v1/tasks/"+id+"/stop", tok, ""), http.StatusAccepted, "")
	}
	for _, id := range []string{first.ID, second.ID} {
		if s := e.awaitStatus(tok, id, "stopped"); s.Stale != nil {
			t.Errorf("a stopped task is stale: %s", s)
		}
	}
	e.awaitRemoved(restarted.container())
	e.awaitRemoved(second.container())
	e.finish()
	e.assertNoLeak("rotated-value-one", "rotated-value-two", "steady-value")
}

// TestTaskLogsMasked: every way a program prints a secret value comes
// back masked — whole, split across two writes, across Docker's log
// buffer, line by line, in base64 —, from GET and from a follower, and
// the canary value is in no response, log line or database file.
func TestTaskLogsMasked(t *testing.T) { forEachTaskBackend(t, testTaskLogsMasked) }

func testTaskLogsMasked(t *testing.T, backend string) {
	const (
		canary = "CANARY-7f3a9c1e-task-value"
		cert   = "-----BEGIN KEY-----\nCANARY-line-two-of-the-key\n-----END KEY-----"
		pin    = "12" // too short to mask: the API warned when it was saved
	)
	e := newTaskEnv(t, taskEnvOptions{docker: true, backend: backend, baseline: orchestrator.Baseline{Env: map[string]string{"PLATFORM_TOKEN": "CANARY-platform-token"}}})
	_, tok := e.newUser("alice")
	pid := e.mustProfile(tok, "agent", e.envImage, []string{testimage.EnvProbe,
		"print", "start", "--", "echo", "CANARY_KEY", "--", "split", "CANARY_KEY", "100ms", "--", "straddle", "CANARY_KEY",
		"--", "base64", "CANARY_KEY", "--", "echo", "CERT", "--", "echo", "PIN", "--", "echo", "PLATFORM_TOKEN", "--", "echo", "TASK_PROMPT",
		"--", "print", "done", "--", "exit", "3"}, nil)
	e.mustSecret(tok, "CANARY_KEY", canary)
	e.mustSecret(tok, "CERT", cert, pid)
	r := e.call("POST", "/v1/secrets", tok, `{"name":"PIN","value":"`+pin+`"}`)
	want(t, r, 201, "")
	if !strings.Contains(string(r.body), "cannot be masked") {
		t.Errorf("no warning for a short value: %s", r.body)
	}

	task := e.startTask(tok, pid, "print your secrets")
	followed, ended := e.followLogs(tok, task.ID, nil)
	if !ended {
		t.Fatal("follow did not end")
	}
	done := e.getTask(tok, task.ID)
	if done.Status != "failed" || done.ExitCode == nil || *done.ExitCode != 3 || done.Error == nil || *done.Error != "exited with code 3" {
		t.Errorf("finished: %s", done)
	}
	logs := e.taskLogs(tok, task.ID)
	if logs != followed {
		t.Errorf("followed logs differ from GET:\n%q\n%q", followed, logs)
	}
	filler := strings.Repeat(".", 16*1024-len(canary)/2)
	wantLogs := "start\n***\n***\n" + filler + "***\n***\n***\n***\n***\n***\n" + pin + "\n***\nprint your secrets\ndone\n"
	if logs != wantLogs {
		t.Errorf("logs:\n%q\nwant\n%q", logs, wantLogs)
	}
	e.awaitRemoved(done.container())
	e.finish()
	e.assertNoLeak(canary, cert, "CANARY-line-two-of-the-key", "CANARY-platform-token", canary[:len(canary)/2], canary[len(canary)/2:])
}

// TestTaskStartFailures: a missing image, a command the image cannot run,
// and setup commands on an image without a shell each fail their task with
// a clear message (never a value), and the API and the worker go on
// serving.
func TestTaskStartFailures(t *testing.T) {
	const canary = "CANARYx7f3a9c1e" // a valid image tag and path, and a secret value
	e := newTaskEnv(t, taskEnvOptions{docker: true})
	_, tok := e.newUser("alice")
	e.mustSecret(tok, "CANARY_KEY", canary)
	profile := func(name string, body map[string]any) string {
		body["name"] = name
		return e.mustCreate("/v1/profiles", tok, mustJSON(t, body))
	}
	cases := []struct {
		profile string
		want    string
	}{
		{profile("missing", map[string]any{"image": "envvault-test-missing:nope"}),
			`start container: image "envvault-test-missing:nope" is not on this Docker Engine; envvault never pulls images: build or pull it on the engine first`},
		{profile("missing-canary", map[string]any{"image": "envvault-test-missing:" + canary}),
			"start container: image (withheld: it contains an env value) is not on this Docker Engine; envvault never pulls images: build or pull it on the engine first"},
		{profile("bad-command", map[string]any{"image": e.envImage, "command": []string{"/no/such/program"}}),
			`start container: image "` + e.envImage + `" cannot run command "/no/such/program": no such executable file, or it cannot be executed`},
		{profile("bad-command-canary", map[string]any{"image": e.envImage, "command": []string{"/" + canary}}),
			`start container: image "` + e.envImage + `" cannot run command (withheld: it contains an env value): no such executable file, or it cannot be executed`},
		{profile("no-shell", map[string]any{"image": e.envImage, "setup_commands": []string{"echo hi"}}),
			`start container: image "` + e.envImage + `" cannot run the setup commands: it has no executable shell at /bin/sh`},
	}
	gone := profile("deleted", map[string]any{"image": e.envImage})
	goneTask := e.startTask(tok, gone, "")
	want(t, e.call("DELETE", "/v1/profiles/"+gone, tok, ""), 204, "")

	for _, c := range cases {
		task := e.startTask(tok, c.profile, "")
		failed := e.awaitTask(tok, task.ID, "finished", func(a apiTask) bool { return a.FinishedAt != nil })
		if failed.Status != "failed" || failed.Error == nil || *failed.Error != c.want || failed.ExitCode != nil || failed.ContainerID != nil {
			t.Errorf("task on %s: %s\nwant error %q", c.profile, failed, c.want)
		}
		want(t, e.call("GET", "/healthz", "", ""), 200, "")
	}
	// The worker still runs tasks, on a profile of the shell image with
	// setup commands.
	ok := profile("ok", map[string]any{"image": e.shellImage, "setup_commands": []string{"echo setting up"}, "command": []string{testimage.ShellProbe, "print", "ran"}})
	task := e.startTask(tok, ok, "")
	if done := e.awaitTask(tok, task.ID, "finished", func(a apiTask) bool { return a.FinishedAt != nil }); done.Status != "succeeded" || *done.ExitCode != 0 {
		t.Errorf("task after failures: %s", done)
	}
	if logs := e.taskLogs(tok, task.ID); logs != "setting up\nran\n" {
		t.Errorf("logs: %q", logs)
	}
	// A task outlives its profile, but no new one starts on it.
	e.awaitTask(tok, goneTask.ID, "finished", func(a apiTask) bool { return a.FinishedAt != nil })
	want(t, e.call("POST", "/v1/tasks", tok, `{"profile_id":"`+gone+`"}`), 422, "profile_id")
	e.finish()
	// The profiles hold the canary (it is not a secret there); the task
	// errors above and the server's log do not.
	if strings.Contains(e.logs.String(), canary) {
		t.Error("the server log holds the canary")
	}
}

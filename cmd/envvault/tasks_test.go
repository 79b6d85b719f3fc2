package main

import (
	"context"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	dockerclient "github.com/docker/docker/client"

	"github.com/envvault/envvault/internal/testenv"
	"github.com/envvault/envvault/internal/testimage"
	"github.com/envvault/envvault/seal"
)

// taskWait bounds how long a test waits for a task to reach a state.
const taskWait = 2 * time.Minute

type taskResp struct {
	ID          string  `json:"id"`
	Status      string  `json:"status"`
	ExitCode    *int    `json:"exit_code"`
	ContainerID *string `json:"container_id"`
	Error       *string `json:"error"`
	EnvSources  []struct {
		Name     string `json:"name"`
		Source   string `json:"source"`
		SecretID string `json:"secret_id"`
		Version  int    `json:"version"`
	} `json:"env_sources"`
}

// source returns where the task's env got name from ("" if it has no
// such name) and, for a secret, its id.
func (r taskResp) source(name string) (source, secretID string) {
	for _, s := range r.EnvSources {
		if s.Name == name {
			return s.Source, s.SecretID
		}
	}
	return "", ""
}

// startTask creates a task on profileID and returns its id.
func (c *client) startTask(profileID, prompt string) string {
	c.t.Helper()
	var task taskResp
	c.expect(http.StatusAccepted, "POST", "/v1/tasks", map[string]any{"profile_id": profileID, "prompt": prompt}, &task)
	if !strings.HasPrefix(task.ID, "tsk_") || task.Status != "queued" {
		c.t.Fatalf("POST /v1/tasks answered %+v", task)
	}
	return task.ID
}

// task reads a task.
func (c *client) task(id string) taskResp {
	c.t.Helper()
	var task taskResp
	c.expect(http.StatusOK, "GET", "/v1/tasks/"+id, nil, &task)
	return task
}

// followLogs opens GET /v1/tasks/:id/logs?follow=true and watches its
// lines; the stream is closed when the test ends. It sets no timeout of its
// own, so that only the server ends the stream.
func (c *client) followLogs(id string) *lineWatcher {
	c.t.Helper()
	req, err := http.NewRequestWithContext(c.t.Context(), "GET", c.base+"/v1/tasks/"+id+"/logs?follow=true", nil)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("follow the logs of %s: %v", id, err)
	}
	c.t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		c.t.Fatalf("follow the logs of %s: status %d: %s", id, resp.StatusCode, b)
	}
	return watchLines(resp.Body)
}

// awaitEnd follows a task's logs until the stream ends, which it does
// once the task is finished, and returns the task and its logs.
func (c *client) awaitEnd(id string) (taskResp, string) {
	c.t.Helper()
	w := c.followLogs(id)
	select {
	case <-w.done:
	case <-time.After(taskWait):
		c.t.Fatalf("task %s has not finished after %s: %+v\nlogs so far:\n%s", id, taskWait, c.task(id), w)
	}
	logs := w.String()
	if strings.Contains(logs, canary) {
		c.t.Errorf("the logs of task %s show the canary value:\n%s", id, logs)
	}
	task := c.task(id)
	if task.Status != "succeeded" && task.Status != "failed" && task.Status != "stopped" {
		c.t.Fatalf("the log stream of task %s ended, but it is %s", id, task.Status)
	}
	return task, logs
}

// dockerImages returns the Docker client and the test images, or skips
// (fails in CI) without a Docker Engine.
func dockerImages(t *testing.T) (cli dockerclient.APIClient, envImage, shellImage string) {
	t.Helper()
	cli = testenv.RequireDocker(t)
	envImage, shellImage = testimage.Build(t, cli)
	return cli, envImage, shellImage
}

// removeContainerAtEnd removes a task's container when the test ends, in
// case the test failed before envvault did.
func removeContainerAtEnd(t *testing.T, cli dockerclient.APIClient, id string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true})
	})
}

// writeBaseline writes a baseline env file and returns its path.
func writeBaseline(t *testing.T, content string) string {
	t.Helper()
	return writeTemp(t, "baseline.env", content)
}

// TestTasksEndToEnd runs serve on SQLite with a baseline env file and a
// locked name, with its worker on the real Docker Engine: a task on the
// env-printing image gets the baseline, the profile's env and the secret,
// and its logs come back with every secret value masked.
func TestTasksEndToEnd(t *testing.T) {
	t.Parallel()
	_, envImage, _ := dockerImages(t)
	platformKey := canary + "-platform"
	baseline := writeBaseline(t, "# the platform's env\n"+
		"export PLATFORM_KEY='"+platformKey+"'\n"+
		"MCP_URL=http://mcp.internal:7000\n"+
		"LOG_LEVEL=debug\n")
	env := map[string]string{"ENCRYPTION_KEY": seal.GenerateKey()}
	dir := t.TempDir()
	token := createUser(t, env, "ops", "--data-dir", dir)
	srv := mustStart(t, env, "serve", "--addr", "127.0.0.1:0", "--data-dir", dir,
		"--baseline-env-file", baseline, "--locked-names", "PLATFORM_KEY")
	c := &client{t: t, base: srv.url(), token: token}

	var prof struct {
		ID string `json:"id"`
	}
	c.expect(http.StatusCreated, "POST", "/v1/profiles", map[string]any{
		"name": "probe", "image": envImage, "command": []string{testimage.EnvProbe, "env"},
		"env": map[string]string{"LOG_LEVEL": "info", "PLATFORM_KEY": "from-the-profile"},
	}, &prof)
	var sec secretResp
	c.expect(http.StatusCreated, "POST", "/v1/secrets", map[string]any{"name": "GITHUB_TOKEN", "value": canary}, &sec)
	// A locked name cannot be a secret's.
	var refused struct {
		Error struct{ Code, Message, Field string }
	}
	c.expect(http.StatusUnprocessableEntity, "POST", "/v1/secrets", map[string]any{"name": "PLATFORM_KEY", "value": "x" + canary}, &refused)
	if !strings.Contains(refused.Error.Message, "locked") {
		t.Errorf("a secret named after a locked name was refused with %+v, want a message saying it is locked", refused.Error)
	}

	id := c.startTask(prof.ID, "review the PR")
	task, logs := c.awaitEnd(id)
	if task.Status != "succeeded" || task.ExitCode == nil || *task.ExitCode != 0 {
		t.Fatalf("task ended %+v, want succeeded with exit code 0\nlogs:\n%s\nserver:\n%s", task, logs, srv.output())
	}
	lines := strings.Split(logs, "\n")
	for _, want := range []string{
		"GITHUB_TOKEN=***", // the secret, masked
		"PLATFORM_KEY=***", // locked: the baseline's, not the profile's; masked
		"MCP_URL=***",      // the baseline's; the orchestrator masks every baseline value
		"LOG_LEVEL=info",   // the profile's over the baseline's
		"TASK_ID=" + id,
		"TASK_PROMPT=review the PR",
	} {
		if !slices.Contains(lines, want) {
			t.Errorf("the task's logs lack the line %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "from-the-profile") {
		t.Errorf("the profile overrode the locked PLATFORM_KEY:\n%s", logs)
	}
	for name, want := range map[string]string{
		"GITHUB_TOKEN": "secret", "PLATFORM_KEY": "baseline", "MCP_URL": "baseline", "LOG_LEVEL": "profile", "TASK_ID": "task",
	} {
		if got, secretID := task.source(name); got != want || (want == "secret" && secretID != sec.ID) {
			t.Errorf("env_sources says %s comes from %q (secret %q), want %q", name, got, secretID, want)
		}
	}
	if err := srv.m.Close(); err != nil {
		t.Fatal(err)
	}
	checkNoLeak(t, srv, env["ENCRYPTION_KEY"])
	if strings.Contains(srv.output(), platformKey) {
		t.Errorf("the server's output shows a baseline value:\n%s", srv.output())
	}
}

// TestLogStreams checks the HTTP server's handling of a log stream: it
// outlives the server's WriteTimeout, and a shutdown ends it at once
// without waiting for the task, whose container keeps running for the
// next start to attach to.
func TestLogStreams(t *testing.T) {
	t.Parallel()
	cli, envImage, _ := dockerImages(t)
	env := map[string]string{"ENCRYPTION_KEY": seal.GenerateKey()}
	dir := t.TempDir()
	token := createUser(t, env, "ops", "--data-dir", dir)
	shortWrites := func(m *Main) { m.writeTimeout = time.Second }
	args := []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dir, "--shutdown-timeout", "1m", "--worker-id", "streams-test"}
	srv, err := startMain(t, env, shortWrites, args...)
	if err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, base: srv.url(), token: token}
	profile := func(name string, argv ...string) string {
		var prof struct {
			ID string `json:"id"`
		}
		c.expect(http.StatusCreated, "POST", "/v1/profiles", map[string]any{"name": name, "image": envImage, "command": argv}, &prof)
		return prof.ID
	}

	t.Run("a stream outlives WriteTimeout", func(t *testing.T) {
		c := &client{t: t, base: c.base, token: c.token}
		id := c.startTask(profile("slow", testimage.EnvProbe, "print", "first", "--", "sleep", "3s", "--", "print", "second"), "")
		task, logs := c.awaitEnd(id)
		if task.Status != "succeeded" || logs != "first\nsecond" {
			t.Fatalf("task %+v logged %q, want it succeeded with both lines", task, logs)
		}
	})

	// A task that runs until stopped, its logs followed while the server
	// shuts down.
	id := c.startTask(profile("forever", testimage.EnvProbe, "print", "up", "--", "sleep", "forever"), "")
	w := c.followLogs(id)
	w.await(t, `the line "up"`, func(l string) bool { return l == "up" })
	running := c.task(id)
	if running.Status != "running" || running.ContainerID == nil {
		t.Fatalf("task printed its first line but is %+v", running)
	}
	containerID := *running.ContainerID
	removeContainerAtEnd(t, cli, containerID)

	if err := srv.m.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the log stream is still open after the server closed")
	}
	if out := srv.stderr.String(); strings.Contains(out, "graceful shutdown cut short") {
		t.Errorf("the shutdown waited out --shutdown-timeout for the stream:\n%s", out)
	}
	info, err := cli.ContainerInspect(t.Context(), containerID)
	if err != nil || !info.State.Running {
		t.Fatalf("after the server stopped, its task's container is not running (%v)", err)
	}

	// The next start with the same worker id attaches to the container;
	// a stop ends it and the task.
	again, err := startMain(t, env, shortWrites, args...)
	if err != nil {
		t.Fatal(err)
	}
	c.base = again.url()
	if task := c.task(id); task.Status != "running" {
		t.Fatalf("after a restart the task is %+v, want still running", task)
	}
	c.expect(http.StatusAccepted, "POST", "/v1/tasks/"+id+"/stop", nil, nil)
	if task, _ := c.awaitEnd(id); task.Status != "stopped" {
		t.Fatalf("after a stop the task is %+v", task)
	}
}

// TestRunnerCommand runs tasks with `envvault runner` beside a
// `serve --no-worker` on one store: serve only queues them.
func TestRunnerCommand(t *testing.T) {
	t.Parallel()
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		testRunner(t, nil, "--data-dir", t.TempDir())
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		t.Parallel()
		testRunner(t, map[string]string{"DATABASE_URL": testenv.RequirePostgres(t)})
	})
}

func testRunner(t *testing.T, env map[string]string, storeArgs ...string) {
	_, envImage, _ := dockerImages(t)
	env = maps.Clone(env)
	if env == nil {
		env = map[string]string{}
	}
	env["ENCRYPTION_KEY"] = seal.GenerateKey()
	baseline := writeBaseline(t, "REGION=eu-west-1\n")
	token := createUser(t, env, "ops", storeArgs...)
	srv := mustStart(t, env, append([]string{"serve", "--addr", "127.0.0.1:0", "--no-worker", "--baseline-env-file", baseline}, storeArgs...)...)
	if !strings.Contains(srv.stderr.String(), "no task worker") {
		t.Errorf("serve --no-worker did not say it runs no worker:\n%s", srv.stderr.String())
	}
	c := &client{t: t, base: srv.url(), token: token}
	var prof struct {
		ID string `json:"id"`
	}
	c.expect(http.StatusCreated, "POST", "/v1/profiles", map[string]any{"name": "probe", "image": envImage, "command": []string{testimage.EnvProbe, "echo", "REGION", "SECRET"}}, &prof)
	c.expect(http.StatusCreated, "POST", "/v1/secrets", map[string]any{"name": "SECRET", "value": canary}, nil)
	id := c.startTask(prof.ID, "")
	if task := c.task(id); task.Status != "queued" {
		t.Fatalf("with no worker the task is %+v, want queued", task)
	}

	run := mustStart(t, env, append([]string{"runner", "--baseline-env-file", baseline, "--worker-id", "runner-1"}, storeArgs...)...)
	if sqlite := env["DATABASE_URL"] == ""; sqlite != strings.Contains(run.stderr.String(), "only processes on this host share it") {
		t.Errorf("runner on SQLite should warn, and only there, that the store is local to this host:\n%s", run.stderr.String())
	}
	if run.m.Addr() != "" {
		t.Errorf("runner listens on %s", run.m.Addr())
	}
	task, logs := c.awaitEnd(id)
	// Every baseline value is masked, as every secret's.
	if task.Status != "succeeded" || logs != "***\n***" {
		t.Fatalf("task %+v logged %q", task, logs)
	}
	if src, _ := task.source("REGION"); src != "baseline" {
		t.Errorf("the runner did not use --baseline-env-file: REGION comes from %q", src)
	}
	if err := run.m.Close(); err != nil {
		t.Fatal(err)
	}
	checkNoLeak(t, run, env["ENCRYPTION_KEY"])
}

// TestDockerDown: a Docker Engine that does not answer leaves the API
// serving; the worker says so, and a task fails with the reason.
func TestDockerDown(t *testing.T) {
	// DOCKER_HOST is read from the process environment: no Parallel.
	sock := filepath.Join(t.TempDir(), "no-docker.sock")
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	env := map[string]string{"ENCRYPTION_KEY": seal.GenerateKey()}
	dir := t.TempDir()
	token := createUser(t, env, "ops", "--data-dir", dir)
	srv := mustStart(t, env, "serve", "--addr", "127.0.0.1:0", "--data-dir", dir)
	c := &client{t: t, base: srv.url(), token: token}
	c.expect(http.StatusOK, "GET", "/readyz", nil, nil)
	var prof struct {
		ID string `json:"id"`
	}
	c.expect(http.StatusCreated, "POST", "/v1/profiles", map[string]any{"name": "p", "image": "envvault-test-env:latest"}, &prof)
	task, _ := c.awaitEnd(c.startTask(prof.ID, ""))
	want := "Docker Engine is not reachable at unix://" + sock
	if task.Status != "failed" || task.Error == nil || !strings.Contains(*task.Error, want) {
		t.Fatalf("task with the engine down: %+v, want failed with %q", task, want)
	}
	if !strings.Contains(srv.stderr.String(), "Docker Engine does not answer") {
		t.Errorf("serve did not log that the Docker Engine does not answer:\n%s", srv.stderr.String())
	}
}

// TestBaselineErrors: a bad baseline file or lock list stops start-up with
// the file, the line and the reason, never a value.
func TestBaselineErrors(t *testing.T) {
	t.Parallel()
	env := map[string]string{"ENCRYPTION_KEY": seal.GenerateKey()}
	for _, tc := range []struct {
		name, content string
		args          []string
		want          string
	}{
		{"no equals sign", "GOOD=1\n\n" + canary + "\n", nil, "line 3: expected NAME=value"},
		{"bad name", "# comment\nlower=" + canary + "\n", nil, "line 2: name must match"},
		{"set twice", "A=" + canary + "\nA=" + canary + "\n", nil, "line 2: A is set twice"},
		{"open quote", "A=\"" + canary + "\n", nil, "line 1: value of A: missing closing quote"},
		{"text after quote", "A='" + canary + "' " + canary + "\n", nil, "line 1: value of A: unexpected text after the closing quote"},
		{"bad locked name", "A=1\n", []string{"--locked-names", "A,bad-name"}, `locked names: "bad-name" must match`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := writeBaseline(t, tc.content)
			want := tc.want
			if tc.args == nil {
				want = "baseline env file " + path + ": " + tc.want
			}
			for _, cmd := range []string{"serve", "dev", "runner"} {
				args := append([]string{cmd, "--data-dir", t.TempDir(), "--baseline-env-file", path}, tc.args...)
				if cmd != "runner" {
					args = append(args, "--addr", "127.0.0.1:0")
				}
				in, err := start(t, env, args...)
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("envvault %s: error %v, want one containing %q", strings.Join(args, " "), err, want)
				}
				if strings.Contains(err.Error(), canary) {
					t.Errorf("the error shows a value of the file: %v", err)
				}
				checkNoLeak(t, in)
			}
		})
	}
	missing := filepath.Join(t.TempDir(), "nope.env")
	mustFail(t, env, "baseline env file: open "+missing, "serve", "--data-dir", t.TempDir(), "--baseline-env-file", missing)
}

// TestWorkerFlags: the worker's settings from flags and the environment.
func TestWorkerFlags(t *testing.T) {
	t.Parallel()
	env := map[string]string{"ENCRYPTION_KEY": seal.GenerateKey()}
	dir := t.TempDir()
	token := createUser(t, env, "ops", "--data-dir", dir)
	baseline := writeBaseline(t, "ANTHROPIC_API_KEY=sk-ant-example\n")

	srv := mustStart(t, env, "serve", "--addr", "127.0.0.1:0", "--data-dir", dir, "--no-worker", "--baseline-env-file", baseline,
		"--allow-names", "NODE_OPTIONS", "--locked-names", "ANTHROPIC_API_KEY, MCP_TOKEN")
	if got := srv.m.Config.LockedNames; !slices.Equal(got, []string{"ANTHROPIC_API_KEY", "MCP_TOKEN"}) {
		t.Errorf("--locked-names gave the locked names %q", got)
	}
	if !strings.Contains(srv.stderr.String(), `"msg":"locked names without a value in the baseline env file: no task gets them","names":["MCP_TOKEN"]`) {
		t.Errorf("serve did not warn of the locked name without a value:\n%s", srv.stderr.String())
	}
	c := &client{t: t, base: srv.url(), token: token}
	for name, want := range map[string]int{
		"ANTHROPIC_API_KEY": http.StatusUnprocessableEntity, // locked
		"MCP_TOKEN":         http.StatusUnprocessableEntity, // locked, even without a value
		"LD_PRELOAD":        http.StatusUnprocessableEntity, // denied
		"NODE_OPTIONS":      http.StatusCreated,             // denied, but allowed
		"OTHER":             http.StatusCreated,
	} {
		var body struct {
			Error struct{ Message string }
		}
		if got := c.do("POST", "/v1/secrets", map[string]any{"name": name, "value": canary}, &body); got != want {
			t.Errorf("a secret named %s: status %d (%s), want %d", name, got, body.Error.Message, want)
		}
	}

	mustFail(t, env, "--worker-id (WORKER_ID) is empty", "runner", "--data-dir", dir, "--worker-id", " ")
	host, _ := os.Hostname()
	in := mustStart(t, env, "serve", "--addr", "127.0.0.1:0", "--data-dir", dir, "--no-worker")
	if in.m.Config.WorkerID != host {
		t.Errorf("the default worker id is %q, want the host name %q", in.m.Config.WorkerID, host)
	}
}

// TestWorkerFlagsFromEnv: the variables of the worker's flags.
func TestWorkerFlagsFromEnv(t *testing.T) {
	// ff reads flags' variables from the process environment: no Parallel.
	t.Setenv("WORKER_ID", "from-env")
	t.Setenv("NO_WORKER", "true")
	t.Setenv("BASELINE_ENV_FILE", writeBaseline(t, "A=1\n"))
	t.Setenv("ALLOW_NAMES", "NODE_OPTIONS,PYTHONPATH")
	t.Setenv("BASELINE_LOCKED_NAMES", " A ,")
	env := map[string]string{"ENCRYPTION_KEY": seal.GenerateKey()}
	in := mustStart(t, env, "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir())
	cfg := in.m.Config
	if cfg.WorkerID != "from-env" || !cfg.NoWorker || cfg.BaselineEnvFile == "" ||
		!slices.Equal(cfg.AllowNames, []string{"NODE_OPTIONS", "PYTHONPATH"}) || !slices.Equal(cfg.LockedNames, []string{"A"}) {
		t.Errorf("config from the environment: %+v", cfg)
	}
	if in.m.baseline.Env["A"] != "1" {
		t.Errorf("BASELINE_ENV_FILE was not read: %v", in.m.baseline.Env)
	}
	// The flag wins over the variable.
	in = mustStart(t, env, "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--locked-names", "ONLY")
	if got := in.m.Config.LockedNames; !slices.Equal(got, []string{"ONLY"}) {
		t.Errorf("--locked-names ONLY with BASELINE_LOCKED_NAMES set gave %q", got)
	}
	t.Setenv("LOCKED_NAMES", "B")
	mustFail(t, env, "both BASELINE_LOCKED_NAMES and LOCKED_NAMES are set", "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir())
}

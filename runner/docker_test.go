package runner_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/envvault/envvault/internal/testenv"
	"github.com/envvault/envvault/internal/testimage"
	"github.com/envvault/envvault/mask"
	"github.com/envvault/envvault/runner"
)

// canary is planted in env values; no error may ever show it.
const canary = "canary-8e1f0c2b-secret"

type env struct {
	cli   client.APIClient
	r     *runner.Runner
	image string // envprobe at testimage.EnvProbe, no shell
	shell string // busybox shell, envprobe at testimage.ShellProbe
}

func setup(t *testing.T, opts runner.Options) *env {
	t.Helper()
	t.Parallel()
	cli := testenv.RequireDocker(t)
	img, sh := testimage.Build(t, cli)
	return &env{cli: cli, r: runner.New(cli, opts), image: img, shell: sh}
}

// spec returns a spec for a fresh task id, and checks when the test ends
// that no container of that task is left behind.
func (e *env) spec(t *testing.T, image string, cmd ...string) runner.Spec {
	t.Helper()
	var raw [6]byte
	_, _ = rand.Read(raw[:])
	s := runner.Spec{
		TaskID: "tsk_test" + hex.EncodeToString(raw[:]), UserID: "usr_test", ProfileID: "prof_test",
		Image: image, Command: cmd, Env: map[string]string{"CANARY": canary},
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, c := range e.list(t, ctx, s.TaskID) {
			t.Errorf("container %s (%s) of task %s left behind", c.ID, c.State, s.TaskID)
			_ = e.r.Remove(ctx, c.ID)
		}
	})
	return s
}

func (e *env) list(t *testing.T, ctx context.Context, taskID string) []runner.Container {
	t.Helper()
	all, err := e.r.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var out []runner.Container
	for _, c := range all {
		if c.TaskID == taskID {
			out = append(out, c)
		}
	}
	return out
}

// start starts spec and removes its container when the test ends.
func (e *env) start(t *testing.T, spec runner.Spec) string {
	t.Helper()
	id, err := e.r.Start(t.Context(), spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.r.Remove(ctx, id); err != nil {
			t.Errorf("Remove %s: %v", id, err)
		}
	})
	return id
}

// run starts spec, waits for it, and returns its exit code and logs.
func (e *env) run(t *testing.T, spec runner.Spec) (int, string) {
	t.Helper()
	id := e.start(t, spec)
	code, err := e.r.Wait(t.Context(), id)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	return code, e.logs(t, id)
}

func (e *env) logs(t *testing.T, id string) string {
	t.Helper()
	rc, err := e.r.Logs(t.Context(), id, false)
	if err != nil {
		t.Fatalf("Logs: %v", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read logs: %v", err)
	}
	return string(b)
}

// dockerAdded are the names the engine adds to a container's env when the
// spec does not set them.
var dockerAdded = map[string]bool{"PATH": true, "HOSTNAME": true, "HOME": true}

// checkEnv compares an env list with want, allowing only names the engine
// adds.
func checkEnv(t *testing.T, where string, got []string, want map[string]string) {
	t.Helper()
	seen := map[string]string{}
	for _, kv := range got {
		name, value, _ := strings.Cut(kv, "=")
		if _, ok := want[name]; !ok {
			if !dockerAdded[name] {
				t.Errorf("%s: unexpected %s", where, name)
			}
			continue
		}
		seen[name] = value
	}
	if !maps.Equal(seen, want) {
		for name, v := range want {
			if seen[name] != v {
				t.Errorf("%s: %s = %q, want %q", where, name, seen[name], v)
			}
		}
	}
}

// trickyEnv is an env of values a shell or a parser would get wrong.
func trickyEnv() map[string]string {
	return map[string]string{
		"CANARY":      canary,
		"SPACES":      "  two  spaces  ",
		"EQUALS":      "a=b=c",
		"MULTI_LINE":  "-----BEGIN KEY-----\nline two\n-----END KEY-----\n",
		"QUOTES":      `it's "quoted" $HOME ${X} \n`,
		"UNICODE":     "clé → ✓",
		"EMPTY":       "",
		"LOWER_case1": "x",
	}
}

func TestEnvArrivesExactly(t *testing.T) {
	e := setup(t, runner.Options{})
	spec := e.spec(t, e.image, testimage.EnvProbe, "envjson")
	spec.Env = trickyEnv()
	code, logs := e.run(t, spec)
	if code != 0 {
		t.Fatalf("exit code %d; logs:\n%s", code, logs)
	}
	var inside []string
	if err := json.Unmarshal([]byte(logs), &inside); err != nil {
		t.Fatalf("probe output %q: %v", logs, err)
	}
	checkEnv(t, "inside the container", inside, spec.Env)

	id := e.start(t, spec)
	inspected, err := e.r.Env(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	checkEnv(t, "docker inspect", inspected, spec.Env)
}

func TestSetupCommandsRunFirst(t *testing.T) {
	e := setup(t, runner.Options{})

	t.Run("in order, with exports and cd, then the command with its args untouched", func(t *testing.T) {
		spec := e.spec(t, e.shell, testimage.ShellProbe, "print", "it's", "$HOME", "a  b", `"q"`, "`id`",
			"--", "echo", "FROM_SETUP", "PWD_SEEN")
		spec.SetupCommands = []string{"echo setup-one", "export FROM_SETUP=yes # a comment", "cd /tmp; export PWD_SEEN=$(pwd)"}
		code, logs := e.run(t, spec)
		want := "setup-one\nit's $HOME a  b \"q\" `id`\nyes\n/tmp\n"
		if code != 0 || logs != want {
			t.Errorf("exit %d, logs %q; want 0, %q", code, logs, want)
		}
	})
	t.Run("image's own command after setup", func(t *testing.T) {
		spec := e.spec(t, e.shell)
		spec.SetupCommands = []string{"export FROM_SETUP=yes"}
		code, logs := e.run(t, spec)
		if code != 0 || !strings.Contains(logs, "\nFROM_SETUP=yes\n") || !strings.Contains(logs, "CANARY="+canary) {
			t.Errorf("exit %d, logs %q; want the image's CMD (env) with FROM_SETUP", code, logs)
		}
	})
	t.Run("a failing setup command stops the task with its status", func(t *testing.T) {
		spec := e.spec(t, e.shell, testimage.ShellProbe, "print", "command ran")
		spec.SetupCommands = []string{"echo before", "exit 3", "echo after"}
		code, logs := e.run(t, spec)
		if code != 3 || logs != "before\n" {
			t.Errorf("exit %d, logs %q; want 3, %q", code, logs, "before\n")
		}
	})
	t.Run("a missing command after setup fails like a shell says", func(t *testing.T) {
		spec := e.spec(t, e.shell, "/no/such/command")
		spec.SetupCommands = []string{"true"}
		code, logs := e.run(t, spec)
		if code != 127 {
			t.Errorf("exit %d, logs %q; want 127", code, logs)
		}
	})
}

func TestExitCodeAndLogs(t *testing.T) {
	e := setup(t, runner.Options{})
	for _, want := range []int{0, 1, 42} {
		t.Run(fmt.Sprint(want), func(t *testing.T) {
			spec := e.spec(t, e.image, testimage.EnvProbe, "print", "to stdout", "--", "echoerr", "CANARY",
				"--", "lines", "2000", "--", "exit", fmt.Sprint(want))
			code, logs := e.run(t, spec)
			if code != want {
				t.Errorf("exit code %d, want %d", code, want)
			}
			// stdout and stderr come merged; order across the two is the
			// engine's, so check each is whole.
			for _, part := range []string{"to stdout\n", canary + "\n", "line 1\n", "line 2000\n"} {
				if !strings.Contains(logs, part) {
					t.Errorf("logs lack %q", part)
				}
			}
			if n := strings.Count(logs, "\n"); n != 2002 {
				t.Errorf("logs have %d lines, want 2002", n)
			}
		})
	}
}

func TestLogsFollow(t *testing.T) {
	e := setup(t, runner.Options{})
	spec := e.spec(t, e.image, testimage.EnvProbe, "print", "begin", "--", "wait-for-file", "/tmp/go", "--", "print", "end")
	id := e.start(t, spec)

	rc, err := e.r.Logs(t.Context(), id, true)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	br := bufio.NewReader(rc)
	if line, err := br.ReadString('\n'); line != "begin\n" || err != nil {
		t.Fatalf("first line %q, %v", line, err)
	}
	// The container is still running, waiting for the file: the line came
	// while it ran, not at its end.
	if c, err := e.r.Inspect(t.Context(), id); err != nil || !c.Running {
		t.Fatalf("Inspect = %+v, %v; want running", c, err)
	}
	execIn(t, e.cli, id, testimage.EnvProbe, "touch", "/tmp/go")
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "end\n" {
		t.Errorf("rest of the stream %q, %v; want %q and EOF at exit", rest, err, "end\n")
	}
	if code, err := e.r.Wait(t.Context(), id); code != 0 || err != nil {
		t.Errorf("Wait = %d, %v", code, err)
	}
}

// awaitLine follows the container's logs until it prints line.
func (e *env) awaitLine(t *testing.T, id, line string) {
	t.Helper()
	rc, err := e.r.Logs(t.Context(), id, true)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	for sc.Scan() {
		if sc.Text() == line {
			return
		}
	}
	t.Fatalf("logs ended (%v) without the line %q", sc.Err(), line)
}

// execIn runs argv in a running container and waits for it.
func execIn(t *testing.T, cli client.APIClient, id string, argv ...string) {
	t.Helper()
	ctx := t.Context()
	ex, err := cli.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: argv})
	if err != nil {
		t.Fatalf("exec create: %v", err)
	}
	if err := cli.ContainerExecStart(ctx, ex.ID, container.ExecStartOptions{Detach: true}); err != nil {
		t.Fatalf("exec start: %v", err)
	}
	for {
		st, err := cli.ContainerExecInspect(ctx, ex.ID)
		if err != nil {
			t.Fatalf("exec inspect: %v", err)
		}
		if !st.Running {
			// When the exec makes the container's process exit, the
			// exec may be killed with it (137, SIGKILL) before it exits
			// itself: that is success too. A failing probe exits 2.
			if st.ExitCode != 0 && st.ExitCode != 137 {
				t.Fatalf("exec %q: exit code %d", argv, st.ExitCode)
			}
			return
		}
		time.Sleep(10 * time.Millisecond) // the API has no wait for an exec
	}
}

// TestLogsSplitAcrossReads shows that a value can reach the log reader in
// two reads, and that masking the stream still hides it.
func TestLogsSplitAcrossReads(t *testing.T) {
	e := setup(t, runner.Options{})
	spec := e.spec(t, e.image, testimage.EnvProbe, "straddle", "CANARY", "--", "split", "CANARY", "--", "base64", "CANARY")
	id := e.start(t, spec)
	if code, err := e.r.Wait(t.Context(), id); code != 0 || err != nil {
		t.Fatalf("Wait = %d, %v", code, err)
	}

	rc, err := e.r.Logs(t.Context(), id, false)
	if err != nil {
		t.Fatal(err)
	}
	var reads []string
	buf := make([]byte, 1<<20)
	for {
		n, err := rc.Read(buf)
		if n > 0 {
			reads = append(reads, string(buf[:n]))
		}
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	rc.Close()
	whole := strings.Join(reads, "")
	if strings.Count(whole, canary) != 2 {
		t.Fatalf("raw logs hold the value %d times, want 2 (straddle, split)", strings.Count(whole, canary))
	}
	split := false
	for i := range reads {
		if i > 0 && !strings.Contains(reads[i-1], canary) && strings.Contains(reads[i-1]+reads[i], canary) {
			split = true
		}
	}
	if !split {
		t.Errorf("no read boundary fell inside the value (%d reads); the test no longer proves what it means to", len(reads))
	}

	rc, err = e.r.Logs(t.Context(), id, false)
	if err != nil {
		t.Fatal(err)
	}
	masked, err := io.ReadAll(mask.NewReader(rc, []string{canary}))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(masked), canary) || strings.Contains(string(masked), "Y2FuYXJ5") {
		t.Errorf("masked logs still hold the value or its base64")
	}
	if got := strings.Count(string(masked), mask.Placeholder); got != 6 {
		t.Errorf("masked logs hold %d masks, want 6 (straddle, split, 4 base64 forms)", got)
	}
}

func TestLabelsListInspect(t *testing.T) {
	e := setup(t, runner.Options{})
	spec := e.spec(t, e.image, testimage.EnvProbe, "wait-for-file", "/tmp/go", "--", "exit", "5")
	spec.Name = "envvault-test-" + spec.TaskID
	id := e.start(t, spec)

	got := e.list(t, t.Context(), spec.TaskID)
	want := runner.Container{ID: id, Name: spec.Name, TaskID: spec.TaskID, UserID: "usr_test", ProfileID: "prof_test",
		Image: e.image, State: "running", Running: true}
	if len(got) != 1 || got[0] != want {
		t.Errorf("List = %+v, want [%+v]", got, want)
	}
	raw, err := e.cli.ContainerInspect(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	wantLabels := map[string]string{runner.LabelManaged: "true", runner.LabelTask: spec.TaskID, runner.LabelUser: "usr_test", runner.LabelProfile: "prof_test"}
	for k, v := range wantLabels {
		if raw.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, raw.Config.Labels[k], v)
		}
	}

	t.Run("a second container of one name is a conflict", func(t *testing.T) {
		_, err := e.r.Start(t.Context(), spec)
		if !errors.Is(err, runner.ErrConflict) {
			t.Errorf("Start = %v, want ErrConflict", err)
		}
		checkNoCanary(t, err)
	})

	execIn(t, e.cli, id, testimage.EnvProbe, "touch", "/tmp/go")
	if code, err := e.r.Wait(t.Context(), id); code != 5 || err != nil {
		t.Fatalf("Wait = %d, %v", code, err)
	}
	c, err := e.r.Inspect(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if c.State != "exited" || c.Running || c.ExitCode != 5 || c.StartedAt.IsZero() || c.FinishedAt.Before(c.StartedAt) || c.TaskID != spec.TaskID {
		t.Errorf("Inspect after exit = %+v", c)
	}
	if code, err := e.r.Wait(t.Context(), id); code != 5 || err != nil {
		t.Errorf("Wait on an exited container = %d, %v; want 5 at once", code, err)
	}
}

func TestStopAndRemove(t *testing.T) {
	e := setup(t, runner.Options{StopTimeout: time.Second})

	t.Run("stop ends a sleeping container with SIGTERM", func(t *testing.T) {
		id := e.start(t, e.spec(t, e.image, testimage.EnvProbe, "print", "up", "--", "sleep", "forever"))
		// Until the probe runs it has no SIGTERM handler, and PID 1
		// without one ignores SIGTERM.
		e.awaitLine(t, id, "up")
		if err := e.r.Stop(t.Context(), id, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		if code, err := e.r.Wait(t.Context(), id); code != 143 || err != nil {
			t.Errorf("Wait = %d, %v; want 143 (SIGTERM handled)", code, err)
		}
		if err := e.r.Stop(t.Context(), id, 0); err != nil {
			t.Errorf("Stop of a stopped container = %v", err)
		}
	})
	t.Run("remove kills what ignores SIGTERM, twice is fine", func(t *testing.T) {
		id := e.start(t, e.spec(t, e.image, testimage.EnvProbe, "hang"))
		begin := time.Now()
		if err := e.r.Remove(t.Context(), id); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(begin); d > 15*time.Second {
			t.Errorf("Remove took %v with a 1s stop timeout", d)
		}
		if _, err := e.r.Inspect(t.Context(), id); !errors.Is(err, runner.ErrContainerNotFound) {
			t.Errorf("Inspect after Remove = %v, want ErrContainerNotFound", err)
		}
		if err := e.r.Remove(t.Context(), id); err != nil {
			t.Errorf("second Remove = %v", err)
		}
		if err := e.r.Stop(t.Context(), id, 0); err != nil {
			t.Errorf("Stop of a removed container = %v", err)
		}
		if _, err := e.r.Wait(t.Context(), id); !errors.Is(err, runner.ErrContainerNotFound) {
			t.Errorf("Wait on a removed container = %v, want ErrContainerNotFound", err)
		}
		if _, err := e.r.Logs(t.Context(), id, false); !errors.Is(err, runner.ErrContainerNotFound) {
			t.Errorf("Logs of a removed container = %v, want ErrContainerNotFound", err)
		}
	})
	t.Run("concurrent removes", func(t *testing.T) {
		id := e.start(t, e.spec(t, e.image, testimage.EnvProbe, "sleep", "forever"))
		errs := make(chan error, 3)
		for range 3 {
			go func() { errs <- e.r.Remove(t.Context(), id) }()
		}
		for range 3 {
			if err := <-errs; err != nil {
				t.Errorf("Remove = %v", err)
			}
		}
	})
}

func TestStartFailsCleanly(t *testing.T) {
	e := setup(t, runner.Options{})
	for _, tc := range []struct {
		name  string
		image func() string
		cmd   []string
		setup []string
		kind  error
		says  []string
	}{
		{"missing image", func() string { return "envvault-test-missing:nope" }, nil, nil, runner.ErrImageNotFound,
			[]string{`"envvault-test-missing:nope"`, "never pulls"}},
		{"missing image with setup commands", func() string { return "envvault-test-missing:nope" }, nil, []string{"true"}, runner.ErrImageNotFound,
			[]string{`"envvault-test-missing:nope"`, "never pulls"}},
		{"bad command", func() string { return e.image }, []string{"/no/such/binary", canary}, nil, runner.ErrBadCommand,
			[]string{`"/no/such/binary"`, "cannot run"}},
		{"command naming a value is withheld", func() string { return e.image }, []string{"/bin/" + canary}, nil, runner.ErrBadCommand,
			[]string{"withheld"}},
		{"not executable", func() string { return e.image }, []string{"/tmp"}, nil, runner.ErrBadCommand,
			[]string{`"/tmp"`}},
		{"setup commands without a shell", func() string { return e.image }, []string{testimage.EnvProbe}, []string{"echo " + canary}, runner.ErrBadCommand,
			[]string{"/bin/sh"}},
		{"invalid image reference", func() string { return "Not A/Reference" }, nil, nil, runner.ErrInvalidSpec,
			[]string{"not a valid image reference"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := e.spec(t, tc.image(), tc.cmd...)
			spec.SetupCommands = tc.setup
			spec.Env["TOKEN"] = canary
			begin := time.Now()
			id, err := e.r.Start(t.Context(), spec)
			if err == nil {
				_ = e.r.Remove(context.Background(), id)
				t.Fatal("Start succeeded")
			}
			if d := time.Since(begin); d > 10*time.Second {
				t.Errorf("failing took %v", d)
			}
			if !errors.Is(err, tc.kind) {
				t.Errorf("error %q is not %v", err, tc.kind)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			checkNoCanary(t, err)
			t.Logf("error: %v", err)
		})
	}
}

func TestUnreachableEngine(t *testing.T) {
	t.Parallel()
	cli, err := client.NewClientWithOpts(client.WithHost("unix:///nonexistent/docker.sock"), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	r := runner.New(cli, runner.Options{})
	if err := r.Ping(t.Context()); !errors.Is(err, runner.ErrUnavailable) {
		t.Errorf("Ping = %v, want ErrUnavailable", err)
	}
	_, err = r.Start(t.Context(), runner.Spec{Image: "x:1", Env: map[string]string{"TOKEN": canary}, SetupCommands: []string{"true"}})
	if !errors.Is(err, runner.ErrUnavailable) || !strings.Contains(err.Error(), "not reachable") {
		t.Errorf("Start = %v, want ErrUnavailable saying so", err)
	}
	checkNoCanary(t, err)
	_, err = r.Start(t.Context(), runner.Spec{Image: "x:1", Env: map[string]string{"TOKEN": canary}})
	if !errors.Is(err, runner.ErrUnavailable) {
		t.Errorf("Start = %v, want ErrUnavailable", err)
	}
	if _, err := r.List(t.Context()); !errors.Is(err, runner.ErrUnavailable) {
		t.Errorf("List = %v, want ErrUnavailable", err)
	}
}

// checkNoCanary fails if err, anything it wraps, or its printed forms
// hold the canary.
func checkNoCanary(t *testing.T, err error) {
	t.Helper()
	queue := []error{err}
	for len(queue) > 0 {
		e := queue[0]
		queue = queue[1:]
		if e == nil {
			continue
		}
		for _, s := range []string{e.Error(), fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e)} {
			if strings.Contains(s, canary) {
				t.Errorf("error holds an env value: %T %s", e, s)
			}
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			queue = append(queue, u.Unwrap())
		case interface{ Unwrap() []error }:
			queue = append(queue, u.Unwrap()...)
		}
	}
}

// BenchmarkStart compares the runner's Start with a bare Docker API
// create+start of the same image and env: the runner's own share of a task
// start. Removal is outside the timing.
func BenchmarkStart(b *testing.B) {
	cli := testenv.RequireDocker(b)
	img, _ := testimage.Build(b, cli)
	r := runner.New(cli, runner.Options{})
	env := map[string]string{"A": "1", "TOKEN": canary, "MULTI": "a\nb"}
	ctx := context.Background()
	remove := func(id string) {
		b.StopTimer()
		if err := r.Remove(ctx, id); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.Run("bare", func(b *testing.B) {
		for b.Loop() {
			c, err := cli.ContainerCreate(ctx, &container.Config{Image: img, Cmd: []string{testimage.EnvProbe, "exit", "0"}, Env: []string{"A=1", "MULTI=a\nb", "TOKEN=" + canary}}, nil, nil, nil, "")
			if err != nil {
				b.Fatal(err)
			}
			if err := cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
				b.Fatal(err)
			}
			remove(c.ID)
		}
	})
	b.Run("runner", func(b *testing.B) {
		for b.Loop() {
			id, err := r.Start(ctx, runner.Spec{TaskID: "tsk_bench", UserID: "usr_bench", ProfileID: "prof_bench",
				Image: img, Command: []string{testimage.EnvProbe, "exit", "0"}, Env: env})
			if err != nil {
				b.Fatal(err)
			}
			remove(id)
		}
	})
}

// BenchmarkStartDelivery times, in one interleaved loop on one engine, a
// bare ContainerCreate + ContainerStart with the env, the runner's Start
// with env delivery, and with stdin delivery (the init prepared before the
// timing): what each delivery adds to a start, beside its floor in the
// same run. Metrics: each arm's mean and median, and the ratios of the
// runner's arms to the bare one. Removals are not timed.
//
//	go test ./runner -run '^$' -bench BenchmarkStartDelivery -benchtime 30x
func BenchmarkStartDelivery(b *testing.B) {
	cli := testenv.RequireDocker(b)
	img, _ := testimage.Build(b, cli)
	ctx := context.Background()
	r := testimage.NewRunner(b, cli, runner.Options{})
	env := map[string]string{"A": "1", "TOKEN": canary, "MULTI": "a\nb"}
	cmd := []string{testimage.EnvProbe, "exit", "0"}
	spec := func(d string) runner.Spec {
		return runner.Spec{TaskID: "tsk_bench", UserID: "usr_bench", ProfileID: "prof_bench", EnvDelivery: d, Image: img, Command: cmd, Env: env}
	}
	arms := []struct {
		name  string
		start func() (string, error)
	}{
		{"bare", func() (string, error) {
			c, err := cli.ContainerCreate(ctx, &container.Config{Image: img, Cmd: cmd, Env: []string{"A=1", "MULTI=a\nb", "TOKEN=" + canary}}, nil, nil, nil, "")
			if err != nil {
				return "", err
			}
			return c.ID, cli.ContainerStart(ctx, c.ID, container.StartOptions{})
		}},
		{"env", func() (string, error) { return r.Start(ctx, spec(runner.DeliveryEnv)) }},
		{"stdin", func() (string, error) { return r.Start(ctx, spec(runner.DeliveryStdin)) }},
	}
	times := make([][]time.Duration, len(arms))
	run := func(i int) {
		start := time.Now()
		id, err := arms[i].start()
		d := time.Since(start)
		if err != nil {
			b.Fatalf("%s: %v", arms[i].name, err)
		}
		times[i] = append(times[i], d)
		if err := r.Remove(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
	for i := range arms { // warm up, untimed
		run(i)
		times[i] = nil
	}
	b.ResetTimer()
	for n := 0; b.Loop(); n++ {
		for k := range arms {
			run((n + k) % len(arms)) // each arm first in turn
		}
	}
	b.StopTimer()
	b.ReportMetric(0, "ns/op")
	mean := func(ds []time.Duration) float64 {
		var sum time.Duration
		for _, d := range ds {
			sum += d
		}
		return float64(sum) / float64(len(ds)) / 1e6
	}
	median := func(ds []time.Duration) float64 {
		s := slices.Clone(ds)
		slices.Sort(s)
		return float64(s[len(s)/2]) / 1e6
	}
	for i, a := range arms {
		b.ReportMetric(mean(times[i]), a.name+"-ms")
		b.ReportMetric(median(times[i]), a.name+"-p50-ms")
	}
	b.ReportMetric(mean(times[1])/mean(times[0]), "env/bare")
	b.ReportMetric(mean(times[2])/mean(times[0]), "stdin/bare")
	b.ReportMetric(median(times[2])/median(times[0]), "stdin/bare-p50")
	b.ReportMetric(mean(times[2])-mean(times[1]), "stdin-env-ms")
}

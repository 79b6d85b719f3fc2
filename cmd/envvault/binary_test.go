package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	dockerclient "github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"

	"github.com/envvault/envvault/internal/testenv"
	"github.com/envvault/envvault/internal/testimage"
	"github.com/envvault/envvault/seal"
	"github.com/envvault/envvault/vault"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
	initDir string // envvault-init, first on PATH (env_init_test.go)
)

func TestMain(m *testing.M) {
	var err error
	if initDir, err = os.MkdirTemp("", "envvault-init-"); err == nil {
		err = buildEnvInit(initDir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	removeEnvInit(initDir)
	os.RemoveAll(initDir)
	os.Exit(code)
}

// staticBinary builds envvault as the Dockerfile expects it, static
// (CGO_ENABLED=0), once per test run, and returns its path.
func staticBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "envvault-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "envvault")
		cmd := exec.Command("go", "build", "-trimpath", "-o", binPath, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		// Beside it, as the Dockerfile and the README want it.
		init, err := os.ReadFile(filepath.Join(initDir, initName))
		if err == nil {
			err = os.WriteFile(filepath.Join(binDir, initName), init, 0o755)
		}
		binErr = err
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// lineWatcher collects a process's stderr and lets a test await a line.
type lineWatcher struct {
	mu    sync.Mutex
	lines []string
	added chan struct{} // closed and replaced at every line
	done  chan struct{} // closed at EOF
}

func watchLines(r io.Reader) *lineWatcher {
	w := &lineWatcher{added: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			w.mu.Lock()
			w.lines = append(w.lines, sc.Text())
			close(w.added)
			w.added = make(chan struct{})
			w.mu.Unlock()
		}
	}()
	return w
}

// await returns the first line for which match holds, waiting for it.
func (w *lineWatcher) await(t *testing.T, what string, match func(string) bool) string {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for i := 0; ; {
		w.mu.Lock()
		for ; i < len(w.lines); i++ {
			if match(w.lines[i]) {
				line := w.lines[i]
				w.mu.Unlock()
				return line
			}
		}
		added := w.added
		w.mu.Unlock()
		select {
		case <-added:
		case <-w.done:
			// Lines written just before EOF are in w.lines already.
			w.mu.Lock()
			n := len(w.lines)
			w.mu.Unlock()
			if i == n {
				t.Fatalf("output ended before %s:\n%s", what, w.String())
			}
		case <-timeout:
			t.Fatalf("timed out waiting for %s:\n%s", what, w.String())
		}
	}
}

func (w *lineWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, "\n")
}

// jsonField returns a string field of a JSON log line, "" if absent.
func jsonField(line, key string) string {
	var rec map[string]any
	if json.Unmarshal([]byte(line), &rec) != nil {
		return ""
	}
	s, _ := rec[key].(string)
	return s
}

// TestSIGTERMFinishesRequestsInFlight runs the real binary: a request
// whose body is still arriving when SIGTERM comes is answered, then the
// process exits 0.
func TestSIGTERMFinishesRequestsInFlight(t *testing.T) {
	t.Parallel()
	bin := staticBinary(t)
	dir := t.TempDir()
	env := append(os.Environ(), "ENCRYPTION_KEY="+seal.GenerateKey())

	create := exec.CommandContext(t.Context(), bin, "user", "create", "ops", "--json", "--data-dir", dir)
	create.Env = env
	out, err := create.Output()
	if err != nil {
		t.Fatalf("user create: %v", err)
	}
	var user struct{ Token string }
	if err := json.Unmarshal(out, &user); err != nil {
		t.Fatalf("user create printed %q: %v", out, err)
	}

	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--data-dir", dir)
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	logs := watchLines(stderr)
	addr := jsonField(logs.await(t, `the "listening" line`, func(l string) bool { return jsonField(l, "msg") == "listening" }), "addr")

	// The body arrives in two parts; the server asks for it with
	// "100 Continue" once the handler reads it, and SIGTERM comes between.
	body, bodyW := io.Pipe()
	reading := make(chan struct{})
	req, err := http.NewRequestWithContext(t.Context(), "POST", "http://"+addr+"/v1/secrets", body)
	if err != nil {
		t.Fatal(err)
	}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		Got100Continue: func() { close(reading) },
	}))
	req.Header.Set("Authorization", "Bearer "+user.Token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Expect", "100-continue")
	tr := &http.Transport{ExpectContinueTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	type result struct {
		status int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		resp.Body.Close()
		done <- result{status: resp.StatusCode}
	}()
	go func() {
		// The transport writes the body only after 100 Continue.
		io.WriteString(bodyW, `{"name":"IN_FLIGHT",`)
	}()
	select {
	case <-reading:
	case r := <-done:
		t.Fatalf("request ended before the body was read: %+v", r)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	logs.await(t, `the "shutting down" line`, func(l string) bool { return jsonField(l, "msg") == "shutting down" })
	io.WriteString(bodyW, `"value":"`+canary+`"}`)
	bodyW.Close()

	r := <-done
	if r.err != nil || r.status != http.StatusCreated {
		t.Fatalf("request in flight at SIGTERM: status %d, error %v", r.status, r.err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("envvault serve after SIGTERM: %v\n%s", err, logs)
	}
	<-logs.done
	if strings.Contains(logs.String(), canary) {
		t.Errorf("the canary value is in the logs:\n%s", logs)
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("the server still answers after it exited")
	}
}

// TestDockerImage builds the repository's Dockerfile around the static
// binary, with no registry, and runs `envvault serve` in it as the
// non-root user, on a published port: without a Docker socket, where the
// API serves on and tasks fail with the reason, and with the host's
// socket, where tasks run as the README says.
func TestDockerImage(t *testing.T) {
	t.Parallel()
	cli := testenv.RequireDocker(t)
	tag := buildImage(t, cli)
	t.Run("no Docker socket", func(t *testing.T) {
		t.Parallel()
		testImageWithoutDocker(t, cli, tag)
	})
	t.Run("the host's Docker socket", func(t *testing.T) {
		t.Parallel()
		testImageWithDocker(t, cli, tag)
	})
}

// buildImage builds the Dockerfile around the static binary; the image is
// removed when the test ends.
func buildImage(t *testing.T, cli dockerclient.APIClient) string {
	t.Helper()
	bin := staticBinary(t)
	ctx := t.Context()
	buildCtx := dockerContext(t, bin)
	tag := "envvault-test:" + strings.ToLower(vault.NewID("")[:12])
	tag = strings.NewReplacer("_", "x", "-", "x").Replace(tag)
	resp, err := cli.ImageBuild(ctx, buildCtx, build.ImageBuildOptions{
		Tags: []string{tag}, Remove: true, ForceRemove: true, Labels: map[string]string{"envvault.test": "true"},
	})
	if err != nil {
		t.Fatalf("docker build: %v", err)
	}
	t.Cleanup(func() {
		// Generous: on a loaded host the engine has taken over a minute to
		// delete an image while other packages' tests build and run theirs.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if _, err := cli.ImageRemove(ctx, tag, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil {
			t.Errorf("remove image %s: %v", tag, err)
		}
	})
	if err := readBuild(resp.Body); err != nil {
		t.Fatalf("docker build: %v", err)
	}
	return tag
}

// runImage runs the image with cfg and host (its port 8080 published on
// 127.0.0.1) and returns the container's id, the API's URL and its logs,
// once it listens. The container is removed when the test ends.
func runImage(t *testing.T, cli dockerclient.APIClient, cfg *container.Config, host *container.HostConfig) (id, base string, logs *lineWatcher) {
	t.Helper()
	ctx := t.Context()
	port := nat.Port("8080/tcp")
	cfg.ExposedPorts = nat.PortSet{port: {}}
	host.PortBindings = nat.PortMap{port: {{HostIP: "127.0.0.1"}}}
	created, err := cli.ContainerCreate(ctx, cfg, host, nil, nil, "")
	if err != nil {
		t.Fatalf("create container: %v", err)
	}
	id = created.ID
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			t.Errorf("remove container: %v", err)
		}
	})
	if err := cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		t.Fatalf("start container: %v", err)
	}
	info, err := cli.ContainerInspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.User != "10001:10001" {
		t.Errorf("the image runs as user %q, want 10001:10001", info.Config.User)
	}
	bindings := info.NetworkSettings.Ports[port]
	if len(bindings) == 0 {
		t.Fatalf("port 8080 is not published: %+v", info.NetworkSettings.Ports)
	}
	base = "http://127.0.0.1:" + bindings[0].HostPort
	logs = containerLogs(t, cli, id)
	logs.await(t, `the "listening" line`, func(l string) bool { return jsonField(l, "msg") == "listening" })
	return id, base, logs
}

func testImageWithoutDocker(t *testing.T, cli dockerclient.APIClient, tag string) {
	ctx := t.Context()
	key := seal.GenerateKey()
	id, base, logs := runImage(t, cli, &container.Config{Image: tag, Env: []string{"ENCRYPTION_KEY=" + key}}, &container.HostConfig{})

	// A user made inside the container, a secret written to /data.
	out := dockerExec(t, cli, id, "/envvault", "user", "create", "ops", "--json")
	var user struct{ Token string }
	if err := json.Unmarshal([]byte(out), &user); err != nil {
		t.Fatalf("user create in the container printed %q: %v", out, err)
	}
	c := &client{t: t, base: base, token: user.Token}
	c.expect(http.StatusOK, "GET", "/healthz", nil, nil)
	c.expect(http.StatusOK, "GET", "/readyz", nil, nil)
	c.expect(http.StatusCreated, "POST", "/v1/secrets", map[string]any{"name": "IN_DOCKER", "value": canary}, nil)

	// The container has no Docker socket: the worker says so, the API
	// serves on, and a task fails with the reason.
	logs.await(t, "the worker's warning that the Docker Engine does not answer", func(l string) bool {
		return strings.HasPrefix(jsonField(l, "msg"), "Docker Engine does not answer")
	})
	var prof struct {
		ID string `json:"id"`
	}
	c.expect(http.StatusCreated, "POST", "/v1/profiles", map[string]any{"name": "p", "image": "envvault-test-env:latest"}, &prof)
	task, _ := c.awaitEnd(c.startTask(prof.ID, ""))
	if task.Status != "failed" || task.Error == nil || !strings.Contains(*task.Error, "Docker Engine is not reachable at unix:///var/run/docker.sock") {
		t.Errorf("a task in the container without a Docker socket: %+v, want it failed saying the engine is not reachable", task)
	}
	c.expect(http.StatusOK, "GET", "/readyz", nil, nil)

	timeout := 10
	if err := cli.ContainerStop(ctx, id, container.StopOptions{Timeout: &timeout}); err != nil {
		t.Fatalf("stop container: %v", err)
	}
	info, err := cli.ContainerInspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.ExitCode != 0 {
		t.Errorf("envvault exited %d on docker stop, want 0:\n%s", info.State.ExitCode, logs)
	}
	logs.await(t, `the "http server stopped" line`, func(l string) bool { return jsonField(l, "msg") == "http server stopped" })
	if s := logs.String(); strings.Contains(s, canary) || strings.Contains(s, key) {
		t.Errorf("the container's logs show a secret:\n%s", s)
	}
}

// dockerContext returns a tar of what `docker build .` at the repository
// root sends: the Dockerfile, .dockerignore, the rootfs files and the
// binary.
func dockerContext(t *testing.T, bin string) io.Reader {
	t.Helper()
	root := filepath.Join("..", "..")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, mode int64, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	read := func(path string) []byte {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	add("Dockerfile", 0o644, read(filepath.Join(root, "Dockerfile")))
	add(".dockerignore", 0o644, read(filepath.Join(root, ".dockerignore")))
	add("envvault", 0o755, read(bin))
	add(initName, 0o755, read(filepath.Join(filepath.Dir(bin), initName)))
	rootfs := filepath.Join(root, "scripts", "docker", "rootfs")
	err := filepath.WalkDir(rootfs, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		add(filepath.ToSlash(rel), 0o644, read(path))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

// readBuild drains a build's JSON message stream and returns its error.
func readBuild(r io.ReadCloser) error {
	defer r.Close()
	dec := json.NewDecoder(r)
	var log strings.Builder
	for {
		var msg struct {
			Stream string `json:"stream"`
			Error  string `json:"error"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		log.WriteString(msg.Stream)
		if msg.Error != "" {
			return fmt.Errorf("%s\n%s", msg.Error, log.String())
		}
	}
}

// containerLogs follows a container's stdout and stderr.
func containerLogs(t *testing.T, cli dockerclient.APIClient, id string) *lineWatcher {
	t.Helper()
	rc, err := cli.ContainerLogs(t.Context(), id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: true})
	if err != nil {
		t.Fatalf("container logs: %v", err)
	}
	t.Cleanup(func() { rc.Close() })
	pr, pw := io.Pipe()
	go func() {
		_, err := stdcopy.StdCopy(pw, pw, rc)
		pw.CloseWithError(err)
	}()
	return watchLines(pr)
}

// dockerExec runs a command in the container and returns its stdout.
func dockerExec(t *testing.T, cli dockerclient.APIClient, id string, cmd ...string) string {
	t.Helper()
	ctx := t.Context()
	ex, err := cli.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatalf("exec %v: %v", cmd, err)
	}
	att, err := cli.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		t.Fatalf("exec %v: %v", cmd, err)
	}
	defer att.Close()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, att.Reader); err != nil {
		t.Fatalf("exec %v: %v", cmd, err)
	}
	res, err := cli.ContainerExecInspect(ctx, ex.ID)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 {
		t.Fatalf("exec %v: exit %d\n%s%s", cmd, res.ExitCode, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// testImageWithDocker runs the image as the README says to run tasks: the
// host's Docker socket mounted, its group added, a stable WORKER_ID and a
// baseline env file mounted read-only.
func testImageWithDocker(t *testing.T, cli dockerclient.APIClient, tag string) {
	sock, ok := strings.CutPrefix(cli.DaemonHost(), "unix://")
	if !ok {
		t.Skipf("the Docker Engine is at %s, not on a local socket that a container could mount", cli.DaemonHost())
	}
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	gid := fi.Sys().(*syscall.Stat_t).Gid
	envImage, _ := testimage.Build(t, cli)
	baseline := filepath.Join(t.TempDir(), "baseline.env")
	if err := os.WriteFile(baseline, []byte("PLATFORM_TOKEN="+canary+"-baseline\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	key := seal.GenerateKey()
	id, base, logs := runImage(t, cli,
		&container.Config{Image: tag, Env: []string{
			"ENCRYPTION_KEY=" + key, "WORKER_ID=image-test",
			"BASELINE_ENV_FILE=/run/baseline.env", "BASELINE_LOCKED_NAMES=PLATFORM_TOKEN",
		}},
		&container.HostConfig{
			Binds:    []string{sock + ":/var/run/docker.sock", baseline + ":/run/baseline.env:ro"},
			GroupAdd: []string{fmt.Sprint(gid)},
		})
	logs.await(t, `the "task worker started" line`, func(l string) bool { return jsonField(l, "msg") == "task worker started" })

	out := dockerExec(t, cli, id, "/envvault", "user", "create", "ops", "--json")
	var user struct{ Token string }
	if err := json.Unmarshal([]byte(out), &user); err != nil {
		t.Fatalf("user create in the container printed %q: %v", out, err)
	}
	c := &client{t: t, base: base, token: user.Token}
	var prof struct {
		ID string `json:"id"`
	}
	c.expect(http.StatusCreated, "POST", "/v1/profiles", map[string]any{
		"name": "probe", "image": envImage, "command": []string{testimage.EnvProbe, "echo", "API_KEY", "PLATFORM_TOKEN", "TASK_PROMPT"},
	}, &prof)
	c.expect(http.StatusCreated, "POST", "/v1/secrets", map[string]any{"name": "API_KEY", "value": canary}, nil)
	task, taskLogs := c.awaitEnd(c.startTask(prof.ID, "hello from the image"))
	if task.Status != "succeeded" || taskLogs != "***\n***\nhello from the image" {
		t.Fatalf("task run by envvault in its image: %+v, logs %q\nenvvault:\n%s", task, taskLogs, logs)
	}
	if s := logs.String(); strings.Contains(s, canary) || strings.Contains(s, key) {
		t.Errorf("the container's logs show a secret:\n%s", s)
	}
}

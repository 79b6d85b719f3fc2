package orchestrator_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/envvault/envvault/internal/testenv"
	"github.com/envvault/envvault/internal/testimage"
	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/orchestrator/swarmbackend"
	"github.com/envvault/envvault/runner"
	"github.com/envvault/envvault/runner/envblock"
	"github.com/envvault/envvault/vault"
)

// memBackend is an in-memory orchestrator.Backend for tests of the
// orchestrator's state machine: its containers run nothing; the test
// prints their output and ends them. TestBackendContract holds it to
// what the Docker backend does.
type memBackend struct {
	mu      sync.Mutex
	byID    map[string]*memContainer
	next    int
	starts  []string      // names given to Start, in order
	changed chan struct{} // closed and replaced at every change
	// followCut, if above 0, ends every followed log stream after that
	// many bytes, as an engine that ends a follow early.
	followCut int
}

type memContainer struct {
	orchestrator.Container
	env     []string
	logs    []byte
	code    int
	waiting int           // Wait calls under way
	done    chan struct{} // closed when it exits
}

func newMemBackend() *memBackend {
	return &memBackend{byID: map[string]*memContainer{}, changed: make(chan struct{})}
}

var _ orchestrator.Backend = (*memBackend)(nil)

func (m *memBackend) changeLocked() {
	close(m.changed)
	m.changed = make(chan struct{})
}

func gone(id string) error {
	return fmt.Errorf("container %s: %w", id, orchestrator.ErrContainerNotFound)
}

// add puts a container in state as a Start of name would have, without
// counting a start (what a crashed envvault left behind), and returns its
// id.
func (m *memBackend) add(name, taskID string, state orchestrator.State, env map[string]string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.next++
	c := &memContainer{
		Container: orchestrator.Container{ID: fmt.Sprintf("mem%04d", m.next), Name: name, TaskID: taskID, State: state},
		done:      make(chan struct{}),
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		c.env = append(c.env, k+"="+env[k])
	}
	if state == orchestrator.StateExited {
		close(c.done)
	}
	m.byID[c.ID] = c
	m.changeLocked()
	return c.ID
}

func (m *memBackend) Start(_ context.Context, spec orchestrator.Spec) (string, error) {
	m.mu.Lock()
	for _, c := range m.byID {
		if c.Name == spec.Name {
			m.mu.Unlock()
			return "", fmt.Errorf("a container named %s already exists", spec.Name)
		}
	}
	m.starts = append(m.starts, spec.Name)
	m.mu.Unlock()
	return m.add(spec.Name, spec.TaskID, orchestrator.StateRunning, spec.Env), nil
}

// print appends to a container's output.
func (m *memBackend) print(id, s string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.byID[id].logs = append(m.byID[id].logs, s...)
}

// exit ends a running container with code; nothing if it is not running.
func (m *memBackend) exit(id string, code int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.byID[id]
	if c == nil || c.State != orchestrator.StateRunning {
		return
	}
	c.State, c.code = orchestrator.StateExited, code
	close(c.done)
	m.changeLocked()
}

func (m *memBackend) Wait(ctx context.Context, id string) (int, error) {
	m.mu.Lock()
	c := m.byID[id]
	if c == nil {
		m.mu.Unlock()
		return 0, gone(id)
	}
	c.waiting++
	m.changeLocked()
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		c.waiting--
		m.mu.Unlock()
	}()
	select {
	case <-c.done:
		m.mu.Lock()
		defer m.mu.Unlock()
		return c.code, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// Logs gives the output at once, or with follow when the container
// exits: the state machine stores it as it comes either way.
func (m *memBackend) Logs(ctx context.Context, id string, follow bool) (io.ReadCloser, error) {
	m.mu.Lock()
	c := m.byID[id]
	m.mu.Unlock()
	if c == nil {
		return nil, gone(id)
	}
	pr, pw := io.Pipe()
	go func() {
		if follow {
			select {
			case <-c.done:
			case <-ctx.Done():
				pw.CloseWithError(ctx.Err())
				return
			}
		}
		m.mu.Lock()
		out := slices.Clone(c.logs)
		if follow && m.followCut > 0 && len(out) > m.followCut {
			out = out[:m.followCut]
		}
		m.mu.Unlock()
		_, err := pw.Write(out)
		pw.CloseWithError(err)
	}()
	return pr, nil
}

func (m *memBackend) Stop(_ context.Context, id string, _ time.Duration) error {
	m.exit(id, 143) // as SIGTERM ends a process that handles it
	return nil
}

func (m *memBackend) Remove(ctx context.Context, id string) error {
	_ = m.Stop(ctx, id, 0)
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.byID, id)
	m.changeLocked()
	return nil
}

func (m *memBackend) List(context.Context) ([]orchestrator.Container, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []orchestrator.Container{}
	for _, c := range m.byID {
		out = append(out, c.Container)
	}
	return out, nil
}

func (m *memBackend) Env(_ context.Context, id string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.byID[id]; c != nil {
		return slices.Clone(c.env), nil
	}
	return nil, gone(id)
}

// await waits until ok holds for the backend, checked at every change.
func (m *memBackend) await(t *testing.T, what string, ok func(*memBackend) bool) {
	t.Helper()
	deadline := time.After(awaitTimeout)
	for {
		m.mu.Lock()
		changed := m.changed
		m.mu.Unlock()
		if ok(m) {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("backend: not %s after %v", what, awaitTimeout)
		}
	}
}

// waited reports whether someone waits for the container id.
func waited(id string) func(*memBackend) bool {
	return func(m *memBackend) bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		c := m.byID[id]
		return c != nil && c.waiting > 0
	}
}

func (m *memBackend) startsOf(name string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, s := range m.starts {
		if s == name {
			n++
		}
	}
	return n
}

// recoveryWorld is a backend for the recovery table, with the means to
// leave containers behind on it as a worker that went down would have.
type recoveryWorld struct {
	f       *fixture
	backend orchestrator.Backend
	// image and command make a task whose container prints nothing and
	// runs until end.
	image   string
	command []string
	// leave makes the container of spec in state, as Start would have
	// made it, printing the value of TOKEN and a newline; an exited one
	// exited with code 3. It returns its id.
	leave func(t *testing.T, spec orchestrator.Spec, state orchestrator.State) string
	// end makes a running container exit 0.
	end func(t *testing.T, id string)
	// starts counts the Starts of name, if the backend can tell.
	starts func(name string) int
}

func memWorld(t *testing.T) *recoveryWorld {
	mem := newMemBackend()
	return &recoveryWorld{
		f: newFixture(t, sqliteBackend(t).open(t), false), backend: mem, image: "img",
		leave: func(_ *testing.T, spec orchestrator.Spec, state orchestrator.State) string {
			if state == orchestrator.StateCreated {
				return mem.add(spec.Name, spec.TaskID, state, spec.Env)
			}
			id := mem.add(spec.Name, spec.TaskID, orchestrator.StateRunning, spec.Env)
			mem.print(id, spec.Env["TOKEN"]+"\n")
			if state == orchestrator.StateExited {
				mem.exit(id, 3)
			}
			return id
		},
		end: func(t *testing.T, id string) {
			mem.await(t, "waited for", waited(id))
			mem.exit(id, 0)
		},
		starts: mem.startsOf,
	}
}

func dockerWorld(t *testing.T) *recoveryWorld {
	f := newFixture(t, sqliteBackend(t).open(t), true)
	w := &recoveryWorld{f: f, backend: f.runner, image: f.envImage,
		command: []string{testimage.EnvProbe, "wait-for-file", "/tmp/go", "--", "exit", "0"}}
	w.leave = func(t *testing.T, spec orchestrator.Spec, state orchestrator.State) string {
		ctx := context.Background()
		spec.UserID, spec.Image = f.user, f.envImage
		spec.Command = slices.Concat([]string{testimage.EnvProbe, "echo", "TOKEN", "--"}, w.command[1:])
		if state == orchestrator.StateExited {
			spec.Command = []string{testimage.EnvProbe, "echo", "TOKEN", "--", "exit", "3"}
		}
		if state == orchestrator.StateCreated {
			created, err := f.cli.ContainerCreate(ctx, &container.Config{
				Image: f.envImage, Cmd: []string{testimage.EnvProbe, "print", "must not run"},
				Labels: map[string]string{runner.LabelManaged: "true", runner.LabelTask: spec.TaskID, runner.LabelUser: f.user},
			}, nil, nil, nil, spec.Name)
			if err != nil {
				t.Fatal(err)
			}
			return created.ID
		}
		id, err := f.runner.Start(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		if state == orchestrator.StateExited {
			if code, err := f.runner.Wait(ctx, id); err != nil || code != 3 {
				t.Fatalf("left container's exit: %d, %v", code, err)
			}
		}
		return id
	}
	w.end = func(t *testing.T, id string) {
		f.t = t
		f.exec(id, testimage.EnvProbe, "touch", "/tmp/go")
	}
	return w
}

// newSwarmBackend returns a Swarm backend (the test skips without a
// swarm, or fails in CI) on the fixture's engine with an init of its own,
// and fails the test if anything of the fixture's user is left on the
// engine once the test's cleanups have removed what they made.
func newSwarmBackend(t *testing.T, f *fixture) *swarmbackend.Backend {
	t.Helper()
	testenv.RequireSwarm(t)
	b := testimage.NewSwarmBackend(t, f.cli, swarmbackend.Options{})
	t.Cleanup(func() {
		if left := testenv.SwarmLeft(t, f.cli, swarmbackend.LabelUser+"="+f.user); len(left) > 0 {
			t.Errorf("left behind on the swarm: %v", left)
			testenv.RemoveSwarmObjects(t, f.cli, swarmbackend.LabelUser+"="+f.user)
		}
	})
	return b
}

// swarmTaskContainer is the container of the task of a Swarm service.
func swarmTaskContainer(t *testing.T, cli client.APIClient, serviceID string) string {
	t.Helper()
	tasks, err := cli.TaskList(context.Background(), swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", serviceID))})
	if err != nil || len(tasks) == 0 || tasks[0].Status.ContainerStatus == nil {
		t.Fatalf("tasks of service %s: %d, %v", serviceID, len(tasks), err)
	}
	return tasks[0].Status.ContainerStatus.ContainerID
}

func swarmWorld(t *testing.T) *recoveryWorld {
	f := newFixture(t, sqliteBackend(t).open(t), true)
	b := newSwarmBackend(t, f)
	w := &recoveryWorld{f: f, backend: b, image: f.envImage,
		command: []string{testimage.EnvProbe, "wait-for-file", "/tmp/go", "--", "exit", "0"}}
	w.leave = func(t *testing.T, spec orchestrator.Spec, state orchestrator.State) string {
		ctx := context.Background()
		spec.UserID, spec.Image = f.user, f.envImage
		spec.Command = slices.Concat([]string{testimage.EnvProbe, "echo", "TOKEN", "--"}, w.command[1:])
		if state == orchestrator.StateExited {
			spec.Command = []string{testimage.EnvProbe, "echo", "TOKEN", "--", "exit", "3"}
		}
		if state == orchestrator.StateCreated {
			// A service whose task no node may run: never started.
			one := uint64(1)
			labels := map[string]string{swarmbackend.LabelManaged: "true", swarmbackend.LabelTask: spec.TaskID, swarmbackend.LabelUser: f.user}
			created, err := f.cli.ServiceCreate(ctx, swarm.ServiceSpec{
				Annotations: swarm.Annotations{Name: spec.Name, Labels: labels},
				Mode:        swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}},
				TaskTemplate: swarm.TaskSpec{
					ContainerSpec: &swarm.ContainerSpec{Image: f.envImage, Command: []string{testimage.EnvProbe, "print", "must not run"}, Labels: labels},
					Placement:     &swarm.Placement{Constraints: []string{"node.labels.envvault-test-none==x"}},
					RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionNone},
				},
			}, swarm.ServiceCreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return created.ID
		}
		id, err := b.Start(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		if state == orchestrator.StateExited {
			if code, err := b.Wait(ctx, id); err != nil || code != 3 {
				t.Fatalf("left service's exit: %d, %v", code, err)
			}
		}
		return id
	}
	w.end = func(t *testing.T, id string) {
		f.t = t
		f.exec(swarmTaskContainer(t, f.cli, id), testimage.EnvProbe, "touch", "/tmp/go")
	}
	return w
}

// TestRecoveryStates runs the recovery cases of the state machine on the
// in-memory backend and on Docker: what a worker that went down left (a
// task starting or running, its container in some state or none), then a
// new worker of the same id. TestRecovery has more of them on Docker
// (values rotated while down, logs read again from the start).
func TestRecoveryStates(t *testing.T) {
	t.Run("memory", func(t *testing.T) { testRecoveryStates(t, memWorld(t)) })
	t.Run("docker", func(t *testing.T) { testRecoveryStates(t, dockerWorld(t)) })
	t.Run("swarm", func(t *testing.T) { testRecoveryStates(t, swarmWorld(t)) })
}

func testRecoveryStates(t *testing.T, w *recoveryWorld) {
	const canary = "canary-token-3f9a" // a secret value the container prints
	none := orchestrator.State(-1)
	tests := []struct {
		name      string
		status    orchestrator.Status // when the worker went down
		container orchestrator.State  // none: no container
		want      orchestrator.Status
		code      *int
		error     string
		restarted bool   // a container of the attempt was started by recovery
		logs      string // stored, masked
	}{
		{name: "running container attached again", status: orchestrator.StatusRunning, container: orchestrator.StateRunning,
			want: orchestrator.StatusSucceeded, code: intp(0), logs: "***\n"},
		{name: "exited while envvault was down", status: orchestrator.StatusRunning, container: orchestrator.StateExited,
			want: orchestrator.StatusFailed, code: intp(3), error: "exited with code 3", logs: "***\n"},
		{name: "removed while envvault was down", status: orchestrator.StatusRunning, container: none,
			want: orchestrator.StatusFailed, error: "its container was gone when envvault restarted"},
		{name: "claimed, never started", status: orchestrator.StatusStarting, container: none,
			want: orchestrator.StatusSucceeded, code: intp(0), restarted: true},
		{name: "claimed, created but never started", status: orchestrator.StatusStarting, container: orchestrator.StateCreated,
			want: orchestrator.StatusSucceeded, code: intp(0), restarted: true},
		{name: "started, the start not recorded", status: orchestrator.StatusStarting, container: orchestrator.StateRunning,
			want: orchestrator.StatusSucceeded, code: intp(0), logs: "***\n"},
	}
	f := w.f
	ctx := context.Background()
	f.secret("TOKEN", canary)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.t = t
			worker := "w-" + vault.NewID("")
			o := orchestrator.New(orchestrator.Config{Vault: f.svc, Store: f.store, Runner: w.backend, Worker: worker, Poll: 50 * time.Millisecond})
			task := f.create(o, f.profile(w.image, w.command...))
			if c, err := f.store.ClaimTask(ctx, worker); err != nil || c.ID != task.ID {
				t.Fatalf("claim: %v, %v", c, err)
			}
			name := orchestrator.ContainerName(task.ID, 1)
			var found string
			if tt.container != none {
				found = w.leave(t, orchestrator.Spec{
					TaskID: task.ID, Name: name, Env: map[string]string{"TOKEN": canary, "TASK_ID": task.ID},
					Sandbox: vault.SandboxSettings{EnvDelivery: testDelivery()},
				}, tt.container)
			}
			if tt.status == orchestrator.StatusRunning {
				if _, err := f.store.UpdateTask(ctx, task.ID, func(cur *orchestrator.Task) error {
					cur.Status, cur.ContainerID = orchestrator.StatusRunning, found
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			}

			stop := f.run(o)
			// A running container is ended by the test once attached, or
			// once recovery has started it again (or failed to): the
			// orchestrator tells when it has recorded either.
			if tt.restarted || tt.container == orchestrator.StateRunning {
				cur := f.await(task.ID, "running", func(cur *orchestrator.Task, _ string) bool {
					return cur.Status == orchestrator.StatusRunning || cur.Status.Done()
				}, o)
				if cur.Status == orchestrator.StatusRunning {
					w.end(t, cur.ContainerID)
				}
			}
			done := f.await(task.ID, "finished", isDone, o)
			if done.Status != tt.want || done.Error != tt.error || done.Attempt != 1 ||
				fmt.Sprint(deref(done.ExitCode)) != fmt.Sprint(deref(tt.code)) {
				t.Errorf("finished: status %s, error %q, attempt %d, exit %v; want %s, %q, 1, %v",
					done.Status, done.Error, done.Attempt, deref(done.ExitCode), tt.want, tt.error, deref(tt.code))
			}
			if found != "" && !tt.restarted && done.ContainerID != found {
				t.Errorf("container %q, want the one found, %q", done.ContainerID, found)
			}
			if tt.restarted && (done.ContainerID == "" || done.ContainerID == found) {
				t.Errorf("container %q, want a new one (found %q)", done.ContainerID, found)
			}
			if w.starts != nil {
				if n, want := w.starts(name), map[bool]int{true: 1}[tt.restarted]; n != want {
					t.Errorf("%d starts of %s, want %d", n, name, want)
				}
			}
			if logs := f.logs(task.ID); logs != tt.logs {
				t.Errorf("logs %q, want %q", logs, tt.logs)
			}
			if strings.Contains(fmt.Sprintf("%+v", done), canary) {
				t.Errorf("the task holds the secret value: %+v", done)
			}
			// Every container of the task is removed once it is done (the
			// worker's goroutines have ended when stop returns), and
			// removing again is no error.
			stop()
			list, err := w.backend.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range list {
				if c.TaskID == task.ID {
					t.Errorf("container %s (%s) of the task left behind", c.ID, c.State)
				}
			}
			if found != "" {
				if err := w.backend.Remove(ctx, found); err != nil {
					t.Errorf("remove again: %v", err)
				}
			}
		})
	}
}

// testDelivery is the env delivery of the tests' profiles (testPolicy).
func testDelivery() string {
	if d := os.Getenv("ENVVAULT_TEST_ENV_DELIVERY"); d != "" {
		return d
	}
	return vault.EnvDeliveryStdin
}

func intp(n int) *int { return &n }

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestBackendContract holds the in-memory backend and the Docker backend
// to the promises of orchestrator.Backend the state machine relies on:
// one container per name, states in List, Stop then Wait, cleanup that
// may run twice, and ErrContainerNotFound for a removed container.
func TestBackendContract(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		testContract(t, newMemBackend(), orchestrator.Spec{Image: "img"})
	})
	t.Run("docker", func(t *testing.T) {
		f := newFixture(t, sqliteBackend(t).open(t), true)
		testContract(t, f.runner, orchestrator.Spec{UserID: f.user, Image: f.envImage, Command: []string{testimage.EnvProbe, "sleep", "forever"}})
	})
	t.Run("swarm", func(t *testing.T) {
		f := newFixture(t, sqliteBackend(t).open(t), true)
		testContract(t, newSwarmBackend(t, f), orchestrator.Spec{UserID: f.user, Image: f.envImage, Command: []string{testimage.EnvProbe, "sleep", "forever"}})
	})
}

// testContract holds b to the contract. Env holds A=b where the engine
// records the env (delivery env), nothing where it records none (Swarm
// keeps it in a secret whose data no API returns).
func testContract(t *testing.T, b orchestrator.Backend, spec orchestrator.Spec) {
	ctx := context.Background()
	spec.TaskID = vault.NewID(vault.PrefixTask)
	spec.Name = orchestrator.ContainerName(spec.TaskID, 1)
	spec.Env = map[string]string{"A": "b"}
	spec.Sandbox = vault.SandboxSettings{EnvDelivery: vault.EnvDeliveryEnv}
	id, err := b.Start(ctx, spec)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = b.Remove(context.Background(), id) })
	if _, err := b.Start(ctx, spec); err == nil {
		t.Errorf("a second start of one name succeeded")
	}
	listed := func() []orchestrator.Container {
		t.Helper()
		list, err := b.List(ctx)
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		return slices.DeleteFunc(list, func(c orchestrator.Container) bool { return c.TaskID != spec.TaskID })
	}
	want := orchestrator.Container{ID: id, Name: spec.Name, TaskID: spec.TaskID, State: orchestrator.StateRunning}
	if got := listed(); len(got) != 1 || got[0] != want {
		t.Errorf("listed %+v, want [%+v]", got, want)
	}
	if env, err := b.Env(ctx, id); err != nil || (len(env) > 0 && !slices.Contains(env, "A=b")) {
		t.Errorf("env: %d lines, A=b among them: %t, %v", len(env), slices.Contains(env, "A=b"), err)
	}
	if err := b.Stop(ctx, id, time.Second); err != nil {
		t.Errorf("stop: %v", err)
	}
	// 143: SIGTERM ended it. 137: it was killed after the grace period, as
	// happens when the stop comes before the program, PID 1, has installed
	// its SIGTERM handler (a PID 1 without one ignores the signal), which
	// a loaded machine makes likely. Either is the exit of a stopped task.
	if code, err := b.Wait(ctx, id); err != nil || (code != 143 && code != 137) {
		t.Errorf("wait after stop: %d, %v; want 143 or 137", code, err)
	}
	want.State = orchestrator.StateExited
	if got := listed(); len(got) != 1 || got[0] != want {
		t.Errorf("listed after stop %+v, want [%+v]", got, want)
	}
	for i := range 2 {
		if err := b.Remove(ctx, id); err != nil {
			t.Errorf("remove %d: %v", i+1, err)
		}
	}
	if got := listed(); len(got) != 0 {
		t.Errorf("listed after remove: %+v", got)
	}
	if err := b.Stop(ctx, id, time.Second); err != nil {
		t.Errorf("stop of a removed container: %v", err)
	}
	_, waitErr := b.Wait(ctx, id)
	_, envErr := b.Env(ctx, id)
	_, logsErr := b.Logs(ctx, id, false)
	for what, err := range map[string]error{"wait": waitErr, "env": envErr, "logs": logsErr} {
		if !errors.Is(err, orchestrator.ErrContainerNotFound) {
			t.Errorf("%s of a removed container: %v, want ErrContainerNotFound", what, err)
		}
	}
}

// TestRecoveryInitWithoutEnv: a worker died while it wrote the env of a
// container it had started (stdin delivery), before it recorded the start.
// Recovery finds the container running and attaches; then the init reads
// the end of stdin and exits with envblock.ExitNoBlock, its own line the
// only output (seen under load by cmd/envvault's TestSeveralWorkersUnderLoad).
// The command never ran: the task is queued again at the same attempt,
// started once more and succeeds, and the init's line is not in its logs.
func TestRecoveryInitWithoutEnv(t *testing.T) {
	w := memWorld(t)
	mem := w.backend.(*memBackend)
	f := w.f
	ctx := context.Background()
	worker := "w-" + vault.NewID("")
	o := orchestrator.New(orchestrator.Config{Vault: f.svc, Store: f.store, Runner: mem, Worker: worker, Poll: 50 * time.Millisecond})
	task := f.create(o, f.profile(w.image, w.command...))
	if c, err := f.store.ClaimTask(ctx, worker); err != nil || c.ID != task.ID {
		t.Fatalf("claim: %v, %v", c, err)
	}
	name := orchestrator.ContainerName(task.ID, 1)
	found := mem.add(name, task.ID, orchestrator.StateRunning, nil)
	stop := f.run(o)
	defer stop()
	mem.await(t, "waited for", waited(found))
	mem.print(found, envblock.InitPrefix+"read the env block's length: EOF\n")
	mem.exit(found, envblock.ExitNoBlock)
	cur := f.await(task.ID, "started again", func(cur *orchestrator.Task, _ string) bool {
		return cur.Status == orchestrator.StatusRunning && cur.ContainerID != found || cur.Status.Done()
	}, o)
	if cur.Status == orchestrator.StatusRunning {
		w.end(t, cur.ContainerID)
	}
	done := f.await(task.ID, "finished", isDone, o)
	if done.Status != orchestrator.StatusSucceeded || done.Attempt != 1 || done.ContainerID == found {
		t.Errorf("finished: status %s, attempt %d, container %s (found %s), error %q; want succeeded at attempt 1 in a new container",
			done.Status, done.Attempt, done.ContainerID, found, done.Error)
	}
	if n := mem.startsOf(name); n != 1 {
		t.Errorf("%d starts of %s, want 1", n, name)
	}
	if logs := f.logs(task.ID); strings.Contains(logs, envblock.InitPrefix) {
		t.Errorf("logs %q hold the failed attempt's init line", logs)
	}
}

package orchestrator_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/envvault/envvault/internal/testenv"
	"github.com/envvault/envvault/internal/testimage"
	"github.com/envvault/envvault/internal/testvault"
	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/orchestrator/dockerbackend"
	"github.com/envvault/envvault/postgres"
	"github.com/envvault/envvault/runner"
	"github.com/envvault/envvault/sqlite"
	"github.com/envvault/envvault/vault"
)

// awaitTimeout bounds every wait for a task or a container: generous, as
// the engine is shared with other test processes.
const awaitTimeout = 2 * time.Minute

// taskStore is what both stores are: the vault's and the orchestrator's.
type taskStore interface {
	vault.Store
	orchestrator.Store
}

// backend opens handles on one fresh database, as several envvault
// processes would.
type backend struct {
	open func(t *testing.T) taskStore
}

func sqliteBackend(t *testing.T) backend {
	path := filepath.Join(t.TempDir(), "envvault.db")
	return backend{open: func(t *testing.T) taskStore {
		t.Helper()
		db, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatalf("open %s: %v", path, err)
		}
		t.Cleanup(func() { _ = db.Close() })
		if _, err := db.Migrate(context.Background()); err != nil {
			t.Fatalf("migrate: %v", err)
		}
		return db
	}}
}

func postgresBackend(t *testing.T) backend {
	url := testenv.RequirePostgres(t)
	return backend{open: func(t *testing.T) taskStore {
		t.Helper()
		db, err := postgres.Open(context.Background(), url)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		t.Cleanup(func() { _ = db.Close() })
		if _, err := db.Migrate(context.Background()); err != nil {
			t.Fatalf("migrate: %v", err)
		}
		return db
	}}
}

// forEachStore runs fn on SQLite and on PostgreSQL (which skips without
// ENVVAULT_TEST_DATABASE_URL, or fails in CI).
func forEachStore(t *testing.T, fn func(t *testing.T, b backend)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, sqliteBackend(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, postgresBackend(t)) })
}

// fixture is a vault with one user, over a store, and, with docker, a
// runner on the real engine and the test images.
type fixture struct {
	t        *testing.T
	store    taskStore
	svc      *vault.Service
	user     string
	baseline orchestrator.Baseline
	// With docker only:
	cli                  client.APIClient
	runner               *dockerbackend.Backend
	envImage, shellImage string
}

func newFixture(t *testing.T, store taskStore, docker bool) *fixture {
	t.Helper()
	f := &fixture{t: t, store: store}
	if docker {
		f.cli = testenv.RequireDocker(t)
		f.envImage, f.shellImage = testimage.Build(t, f.cli)
		f.runner = dockerbackend.New(newRunner(t, f.cli))
	}
	f.svc = vault.NewService(store, testvault.MustKeyring(t), vault.Options{Sandbox: testPolicy()})
	u, _, err := f.svc.CreateUser(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	f.user = u.ID
	if docker {
		t.Cleanup(func() { removeContainersOf(t, f.cli, f.user) })
	}
	return f
}

// orch returns an orchestrator over the fixture's store (or another
// handle on its database), with the fixture's runner.
func (f *fixture) orch(worker string, store taskStore) *orchestrator.Orchestrator {
	if store == nil {
		store = f.store
	}
	var backend orchestrator.Backend
	if f.runner != nil { // a nil *dockerbackend.Backend would be a non-nil Backend
		backend = f.runner
	}
	return orchestrator.New(orchestrator.Config{
		Vault: f.svc, Store: store, Runner: backend, Baseline: f.baseline, Worker: worker, Poll: 50 * time.Millisecond,
	})
}

// run runs o's worker until the returned stop is called (or the test
// ends); stop returns once Run has returned.
func (f *fixture) run(o *orchestrator.Orchestrator) (stop func()) {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	var stopped bool
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			f.t.Errorf("worker: %v", err)
		}
	}
	f.t.Cleanup(stop)
	return stop
}

func (f *fixture) profile(image string, command ...string) string {
	f.t.Helper()
	p, err := f.svc.CreateProfile(context.Background(), f.user, vault.ProfileInput{Name: vault.NewID(""), Image: image, Command: command})
	if err != nil {
		f.t.Fatal(err)
	}
	return p.ID
}

func (f *fixture) secret(name, value string) string {
	f.t.Helper()
	s, err := f.svc.CreateSecret(context.Background(), f.user, vault.SecretInput{Name: name, Value: value})
	if err != nil {
		f.t.Fatal(err)
	}
	return s.ID
}

func (f *fixture) create(o *orchestrator.Orchestrator, profileID string) *orchestrator.Task {
	f.t.Helper()
	task, err := o.CreateTask(context.Background(), f.user, profileID, "")
	if err != nil {
		f.t.Fatal(err)
	}
	return task
}

func (f *fixture) task(id string) *orchestrator.Task {
	f.t.Helper()
	task, err := f.store.Task(context.Background(), f.user, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return task
}

// logs is the task's stored output.
func (f *fixture) logs(id string) string {
	f.t.Helper()
	chunks, err := f.store.TaskLogs(context.Background(), id, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	var b strings.Builder
	for _, c := range chunks {
		b.Write(c.Data)
	}
	return b.String()
}

// await waits until ok accepts the stored task (and its logs), reading
// them again whenever one of the orchestrators signals a change.
func (f *fixture) await(id, what string, ok func(task *orchestrator.Task, logs string) bool, os ...*orchestrator.Orchestrator) *orchestrator.Task {
	f.t.Helper()
	deadline := time.After(awaitTimeout)
	for {
		cases := []reflect.SelectCase{{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(deadline)}}
		for _, o := range os {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(o.Changes())})
		}
		task, logs := f.task(id), f.logs(id)
		if ok(task, logs) {
			return task
		}
		if i, _, _ := reflect.Select(cases); i == 0 {
			f.t.Fatalf("task %s: not %s after %v: status %s, error %q, logs %q", id, what, awaitTimeout, task.Status, task.Error, logs)
		}
	}
}

func TestCreateTask(t *testing.T) {
	f := newFixture(t, sqliteBackend(t).open(t), false)
	o := f.orch("w", nil)
	ctx := context.Background()
	pid := f.profile("img")
	bob, _, err := f.svc.CreateUser(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		user, profile, prompt, field string
	}{
		{f.user, "", "", "profile_id"},
		{f.user, vault.NewID(vault.PrefixProfile), "", "profile_id"},
		{bob.ID, pid, "", "profile_id"},
		{f.user, pid, "a\x00b", "prompt"},
		{f.user, pid, "\xff", "prompt"},
		{f.user, pid, strings.Repeat("x", orchestrator.MaxPromptLen+1), "prompt"},
	} {
		_, err := o.CreateTask(ctx, c.user, c.profile, c.prompt)
		if vault.ErrorCode(err) != vault.EINVALID || vault.ErrorField(err) != c.field {
			t.Errorf("CreateTask(%q, %.20q) = %v, want EINVALID on %s", c.profile, c.prompt, err, c.field)
		}
	}
	changed := o.Changes()
	task, err := o.CreateTask(ctx, f.user, pid, strings.Repeat("x", orchestrator.MaxPromptLen))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Error("creating a task signals no change")
	}
	if !strings.HasPrefix(task.ID, vault.PrefixTask) || task.Status != orchestrator.StatusQueued || task.Attempt != 1 ||
		task.CreatedAt.Location() != time.UTC || task.CreatedAt != task.CreatedAt.Truncate(time.Microsecond) {
		t.Errorf("created %+v", task)
	}
	if got := f.task(task.ID); got.Prompt != task.Prompt || got.Status != orchestrator.StatusQueued {
		t.Errorf("stored %+v", got)
	}
}

func TestRunNeedsRunner(t *testing.T) {
	f := newFixture(t, sqliteBackend(t).open(t), false)
	if err := f.orch("w", nil).Run(context.Background()); err == nil || !strings.Contains(err.Error(), "no runner") {
		t.Errorf("Run without a runner: %v", err)
	}
}

// TestStopAndRestartRequests checks the state changes StopTask and
// RestartTask make on their own; the worker's side is in e2e_test.go.
func TestStopAndRestartRequests(t *testing.T) {
	f := newFixture(t, sqliteBackend(t).open(t), false)
	o := f.orch("w", nil)
	ctx := context.Background()
	pid := f.profile("img")
	bob, _, err := f.svc.CreateUser(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}

	queued := f.create(o, pid)
	for _, op := range []func(context.Context, string, string) (*orchestrator.TaskView, error){o.Task, o.StopTask, o.RestartTask} {
		if _, err := op(ctx, bob.ID, queued.ID); vault.ErrorCode(err) != vault.ENOTFOUND {
			t.Errorf("another user's task: %v", err)
		}
		if _, err := op(ctx, f.user, vault.NewID(vault.PrefixTask)); vault.ErrorCode(err) != vault.ENOTFOUND {
			t.Errorf("a task that does not exist: %v", err)
		}
	}
	if got := f.task(queued.ID); got.Status != orchestrator.StatusQueued || got.StopRequested {
		t.Errorf("another user's stop changed the task: %+v", got)
	}

	changed := o.Changes()
	v, err := o.StopTask(ctx, f.user, queued.ID)
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != orchestrator.StatusStopped || v.FinishedAt == nil || v.StopRequested {
		t.Errorf("stopped queued task: %+v", v.Task)
	}
	select {
	case <-changed:
	default:
		t.Error("a stop signals no change")
	}
	v, err = o.RestartTask(ctx, f.user, queued.ID)
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != orchestrator.StatusQueued || v.Attempt != 2 || v.FinishedAt != nil {
		t.Errorf("restarted stopped task: %+v", v.Task)
	}
	if v, _ := o.RestartTask(ctx, f.user, queued.ID); v.Attempt != 2 || v.RestartRequested || v.StopRequested {
		t.Errorf("restart of a queued task: %+v", v.Task)
	}

	// A running task (of some worker): stop and restart are requests.
	running := f.create(o, pid)
	sources, err := f.svc.ProfileSecrets(ctx, f.user, pid)
	if err != nil {
		t.Fatal(err)
	}
	markRunning(t, f.store, running.ID, sources)
	v, err = o.RestartTask(ctx, f.user, running.ID)
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != orchestrator.StatusRunning || !v.StopRequested || !v.RestartRequested || v.Attempt != 1 {
		t.Errorf("restart of a running task: %+v", v.Task)
	}
	// A stop after it cancels the restart.
	v, err = o.StopTask(ctx, f.user, running.ID)
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != orchestrator.StatusRunning || !v.StopRequested || v.RestartRequested {
		t.Errorf("stop after restart: %+v", v.Task)
	}
}

// markRunning records a task as running a container started with the
// given secrets, as a worker does.
func markRunning(t *testing.T, store orchestrator.Store, id string, secrets []vault.EnvSecret) {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	_, err := store.UpdateTask(context.Background(), id, func(task *orchestrator.Task) error {
		task.Status, task.ContainerID, task.StartedAt, task.Worker = orchestrator.StatusRunning, "c0ffee", &now, "w"
		task.EnvSources = nil
		for _, s := range secrets {
			task.EnvSources = append(task.EnvSources, orchestrator.EnvSource{Name: s.Name, Source: orchestrator.SourceSecret, SecretID: s.SecretID, Scope: string(s.Scope), Version: s.Version})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestStale(t *testing.T) {
	f := newFixture(t, sqliteBackend(t).open(t), false)
	o := f.orch("w", nil)
	ctx := context.Background()
	pid := f.profile("img")
	sid := f.secret("ROTATED", "value-one")
	f.secret("STEADY", "steady-value")
	sources, err := f.svc.ProfileSecrets(ctx, f.user, pid)
	if err != nil {
		t.Fatal(err)
	}
	running, queued := f.create(o, pid), f.create(o, pid)
	markRunning(t, f.store, running.ID, sources)
	stale := func(id string) []string {
		t.Helper()
		v, err := o.Task(ctx, f.user, id)
		if err != nil {
			t.Fatal(err)
		}
		return v.Stale
	}
	if s := stale(running.ID); s != nil {
		t.Errorf("fresh task is stale: %v", s)
	}
	value := "value-two"
	if _, err := f.svc.UpdateSecret(ctx, f.user, sid, vault.SecretPatch{Value: &value}); err != nil {
		t.Fatal(err)
	}
	if s := stale(running.ID); !slices.Equal(s, []string{"ROTATED"}) {
		t.Errorf("stale = %v after a rotation", s)
	}
	if s := stale(queued.ID); s != nil {
		t.Errorf("a queued task is stale: %v", s)
	}
	page, err := o.Tasks(ctx, f.user, vault.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range page.Items {
		if v.ID == running.ID && !slices.Equal(v.Stale, []string{"ROTATED"}) {
			t.Errorf("list: stale = %v", v.Stale)
		}
	}
	// The profile's deletion makes every secret of it stale.
	if err := f.svc.DeleteProfile(ctx, f.user, pid); err != nil {
		t.Fatal(err)
	}
	if s := stale(running.ID); !slices.Equal(s, []string{"ROTATED", "STEADY"}) {
		t.Errorf("stale = %v after the profile's deletion", s)
	}
}

func TestLogs(t *testing.T) {
	f := newFixture(t, sqliteBackend(t).open(t), false)
	o := f.orch("w", nil)
	ctx := context.Background()
	task := f.create(o, f.profile("img"))
	for _, s := range []string{"one\n", "two\n"} {
		if err := f.store.AppendTaskLog(ctx, task.ID, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	collect := func(ctx context.Context, follow bool) (string, error) {
		var b strings.Builder
		err := o.Logs(ctx, f.user, task.ID, follow, func(p []byte) error { b.Write(p); return nil })
		return b.String(), err
	}
	if s, err := collect(ctx, false); err != nil || s != "one\ntwo\n" {
		t.Errorf("logs: %q, %v", s, err)
	}
	if err := o.Logs(ctx, "usr_other", task.ID, false, func([]byte) error { return nil }); vault.ErrorCode(err) != vault.ENOTFOUND {
		t.Errorf("another user's logs: %v", err)
	}
	boom := errors.New("client gone")
	if err := o.Logs(ctx, f.user, task.ID, true, func([]byte) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("emit error: %v", err)
	}
	// Follow goes on while the task is not finished, until ctx ends...
	cctx, cancel := context.WithCancel(ctx)
	got := make(chan error, 1)
	go func() {
		_, err := collect(cctx, true)
		got <- err
	}()
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Errorf("follow after cancel: %v", err)
	}
	// ...or the task finishes, with every chunk out.
	done := make(chan string, 1)
	go func() {
		s, err := collect(ctx, true)
		if err != nil {
			t.Error(err)
		}
		done <- s
	}()
	if err := f.store.AppendTaskLog(ctx, task.ID, []byte("three\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := o.StopTask(ctx, f.user, task.ID); err != nil {
		t.Fatal(err)
	}
	if s := <-done; s != "one\ntwo\nthree\n" {
		t.Errorf("followed: %q", s)
	}
}

// testDelivery is the env delivery the tests' profiles get by default:
// the policy's own (stdin), or ENVVAULT_TEST_ENV_DELIVERY, so that the
// same end-to-end tests run in both modes:
//
//	ENVVAULT_TEST_ENV_DELIVERY=env go test ./orchestrator/
func testPolicy() vault.SandboxPolicy {
	if d := os.Getenv("ENVVAULT_TEST_ENV_DELIVERY"); d != "" {
		return vault.SandboxPolicy{EnvDeliveries: []string{d}}
	}
	return vault.SandboxPolicy{}
}

// newRunner returns a runner on cli with an init of its own.
func newRunner(t *testing.T, cli client.APIClient) *runner.Runner {
	return testimage.NewRunner(t, cli, runner.Options{StopTimeout: 5 * time.Second})
}

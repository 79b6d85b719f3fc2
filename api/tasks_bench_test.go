package api

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/envvault/envvault/internal/testenv"
	"github.com/envvault/envvault/internal/testimage"
	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/orchestrator/dockerbackend"
	"github.com/envvault/envvault/runner"
	"github.com/envvault/envvault/seal"
	"github.com/envvault/envvault/sqlite"
	"github.com/envvault/envvault/vault"
)

// BenchmarkTaskStart compares, in one run on one engine, the time from
// POST /v1/tasks to the task's container running, against a bare Docker
// API ContainerCreate + ContainerStart of the same image, command and env.
//
// envvault's time runs from just before the client sends the POST to the
// moment the store shows the task running: the benchmark waits on the
// orchestrator's change notification (Changes, closed when the worker has
// recorded the start) and reads the task from the store at each, so the
// end is seen one store read after it happens, never a poll interval
// after. The path measured is the whole of it: HTTP, auth, the insert, the
// worker's wake-up and claim, reading the profile and decrypting its
// secrets, the merge, the engine's create and start, and the update that
// records the start. The bare time runs from before ContainerCreate to
// ContainerStart's return. The two alternate, first one then the other,
// and every container is removed (untimed) before the next start.
//
// Metrics: envvault-ms and docker-ms (means), envvault-p50-ms and
// docker-p50-ms (medians), overhead-ms (mean difference) and ratio
// (envvault mean / docker mean), and envvault-own-ms: the mean of
// envvault's time less the time its runner spent in the engine's
// ContainerCreate and ContainerStart for that task — what envvault itself
// adds, without the engine's variance. The target is an overhead under 15% or
// under 20 ms, whichever is larger.
//
// It runs once per env delivery (vault.EnvDeliveryEnv, EnvDeliveryStdin):
// the bare start always gives the engine the env, as `docker run --env`
// does, so the stdin run shows what keeping values out of docker inspect
// costs.
//
//	go test ./api -run '^$' -bench BenchmarkTaskStart -benchtime 30x
func BenchmarkTaskStart(b *testing.B) {
	for _, d := range []string{vault.EnvDeliveryEnv, vault.EnvDeliveryStdin} {
		b.Run("delivery="+d, func(b *testing.B) { benchTaskStart(b, d) })
	}
}

func benchTaskStart(b *testing.B, delivery string) {
	cli := testenv.RequireDocker(b)
	envImage, _ := testimage.Build(b, cli)
	ctx := context.Background()

	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "v.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	keys, err := seal.NewKeyring(key)
	if err != nil {
		b.Fatal(err)
	}
	svc := vault.NewService(db, keys, vault.Options{})
	baseline := orchestrator.Baseline{Env: map[string]string{"ANTHROPIC_API_KEY": "sk-ant-bench-key", "MCP_URL": "http://mcp:8080"}}
	engine := &timedEngine{APIClient: cli}
	r := newTestRunner(b, engine)
	orch := orchestrator.New(orchestrator.Config{
		Vault: svc, Store: db, Runner: dockerbackend.New(r), Baseline: baseline, Worker: "bench-" + vault.NewID(""),
		Logger: slog.New(slog.DiscardHandler),
	})
	// No write limit: the benchmark measures starts, not the limit.
	srv := httptest.NewServer(NewServer(Config{Service: svc, Orchestrator: orch, Logger: slog.New(slog.DiscardHandler), WritesPerSecond: -1}).Handler())
	b.Cleanup(srv.Close)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- orch.Run(runCtx) }()
	b.Cleanup(func() { cancel(); <-done })

	u, tok, err := svc.CreateUser(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { removeUserContainers(b, cli, []string{u.ID}) })
	command := []string{testimage.EnvProbe, "sleep", "forever"}
	p, err := svc.CreateProfile(ctx, u.ID, vault.ProfileInput{Name: "bench", Image: envImage, Command: command,
		Env: map[string]string{"LOG_LEVEL": "debug", "REPO": "github.com/acme/app"}, Sandbox: vault.Sandbox{EnvDelivery: delivery}})
	if err != nil {
		b.Fatal(err)
	}
	for i, name := range []string{"GITHUB_TOKEN", "DATABASE_URL", "OPENAI_API_KEY", "SENTRY_DSN", "NPM_TOKEN"} {
		in := vault.SecretInput{Name: name, Value: fmt.Sprintf("bench-secret-value-%d-%s", i, strings.Repeat("x", 32))}
		if i%2 == 1 {
			in.Scope, in.ProfileIDs = vault.ScopeAgents, []string{p.ID}
		}
		if _, err := svc.CreateSecret(ctx, u.ID, in); err != nil {
			b.Fatal(err)
		}
	}
	body := `{"profile_id":"` + p.ID + `","prompt":"benchmark"}`

	// viaEnvvault starts a task and returns how long it took to run, and
	// its container.
	viaEnvvault := func() (time.Duration, string) {
		engine.reset()
		start := time.Now()
		req, _ := http.NewRequest("POST", srv.URL+"/v1/tasks", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := srv.Client().Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var created struct {
			ID string `json:"id"`
		}
		err = json.NewDecoder(res.Body).Decode(&created)
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		if err != nil || res.StatusCode != http.StatusAccepted {
			b.Fatalf("POST /v1/tasks: %d, %v", res.StatusCode, err)
		}
		for {
			changed := orch.Changes()
			t, err := db.Task(ctx, u.ID, created.ID)
			if err != nil {
				b.Fatal(err)
			}
			switch {
			case t.Status == orchestrator.StatusRunning:
				elapsed := time.Since(start)
				// Untimed: stop it and wait until its container is gone.
				if _, err := orch.StopTask(ctx, u.ID, t.ID); err != nil {
					b.Fatal(err)
				}
				awaitContainerGone(b, cli, t.ContainerID)
				return elapsed, t.ContainerID
			case t.Status.Done():
				b.Fatalf("task ended before it was seen running: %s %s", t.Status, t.Error)
			}
			select {
			case <-changed:
			case <-time.After(awaitTimeout):
				b.Fatalf("task %s not running after %v", t.ID, awaitTimeout)
			}
		}
	}

	// The bare start uses the env of envvault's container's process, so
	// that both carry the same bytes.
	var env []string
	{
		// A first task, untimed, warms both paths up and gives the env.
		created, err := orch.CreateTask(ctx, u.ID, p.ID, "benchmark")
		if err != nil {
			b.Fatal(err)
		}
		for {
			changed := orch.Changes()
			t, err := db.Task(ctx, u.ID, created.ID)
			if err != nil {
				b.Fatal(err)
			}
			if t.Status == orchestrator.StatusRunning {
				env = pid1Env(b, cli, t.ContainerID)
				if _, err := orch.StopTask(ctx, u.ID, t.ID); err != nil {
					b.Fatal(err)
				}
				awaitContainerGone(b, cli, t.ContainerID)
				break
			}
			if t.Status.Done() {
				b.Fatalf("warm-up task: %s %s", t.Status, t.Error)
			}
			<-changed
		}
	}
	bareN := 0
	viaDocker := func() time.Duration {
		bareN++
		start := time.Now()
		// As the runner makes it, but for the labels' values.
		created, err := cli.ContainerCreate(ctx, &container.Config{Image: envImage, Cmd: command, Env: env,
			Labels: map[string]string{runner.LabelManaged: "true", runner.LabelUser: u.ID, runner.LabelTask: "bare", runner.LabelProfile: p.ID}},
			&container.HostConfig{
				LogConfig:     container.LogConfig{Type: "json-file"},
				RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
			}, nil, nil, fmt.Sprintf("bench-bare-%s-%d", u.ID, bareN))
		if err != nil {
			b.Fatal(err)
		}
		if err := cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
			b.Fatal(err)
		}
		elapsed := time.Since(start)
		if err := cli.ContainerRemove(ctx, created.ID, container.RemoveOptions{Force: true}); err != nil {
			b.Fatal(err)
		}
		return elapsed
	}
	viaDocker()

	var ev, dk, own []time.Duration
	envvault := func() {
		d, _ := viaEnvvault()
		ev = append(ev, d)
		own = append(own, d-engine.spent())
	}
	b.ResetTimer()
	for i := range b.N {
		if i%2 == 0 {
			envvault()
			dk = append(dk, viaDocker())
		} else {
			dk = append(dk, viaDocker())
			envvault()
		}
	}
	b.StopTimer()
	evMean, dkMean := mean(ev), mean(dk)
	b.ReportMetric(0, "ns/op") // the loop's time includes the untimed cleanups
	b.ReportMetric(ms(evMean), "envvault-ms")
	b.ReportMetric(ms(dkMean), "docker-ms")
	b.ReportMetric(ms(median(ev)), "envvault-p50-ms")
	b.ReportMetric(ms(median(dk)), "docker-p50-ms")
	b.ReportMetric(ms(evMean-dkMean), "overhead-ms")
	b.ReportMetric(float64(evMean)/float64(dkMean), "ratio")
	b.ReportMetric(ms(mean(own)), "envvault-own-ms")
}

// timedEngine is the engine client of envvault's runner in the benchmark:
// it adds up the time spent in ContainerCreate and ContainerStart, so that
// envvault's own share of a start (its time less the engine's) can be told
// apart from the engine's, which varies from start to start far more.
type timedEngine struct {
	client.APIClient
	mu    sync.Mutex
	total time.Duration
}

func (e *timedEngine) reset() {
	e.mu.Lock()
	e.total = 0
	e.mu.Unlock()
}

func (e *timedEngine) spent() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.total
}

func (e *timedEngine) add(since time.Time) {
	d := time.Since(since)
	e.mu.Lock()
	e.total += d
	e.mu.Unlock()
}

func (e *timedEngine) ContainerCreate(ctx context.Context, config *container.Config, hostConfig *container.HostConfig,
	networkingConfig *network.NetworkingConfig, platform *ocispec.Platform, containerName string,
) (container.CreateResponse, error) {
	defer e.add(time.Now())
	return e.APIClient.ContainerCreate(ctx, config, hostConfig, networkingConfig, platform, containerName)
}

func (e *timedEngine) ContainerStart(ctx context.Context, id string, options container.StartOptions) error {
	defer e.add(time.Now())
	return e.APIClient.ContainerStart(ctx, id, options)
}

func mean(ds []time.Duration) time.Duration {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

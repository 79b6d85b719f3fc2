package orchestrator_test

import (
	"context"
	"testing"
	"time"

	"github.com/envvault/envvault/internal/testenv"
	"github.com/envvault/envvault/internal/testimage"
	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/orchestrator/dockerbackend"
	"github.com/envvault/envvault/orchestrator/swarmbackend"
	"github.com/envvault/envvault/runner"
	"github.com/envvault/envvault/vault"
)

// BenchmarkBackendStart starts a task's container on Docker (stdin
// delivery) and on Swarm, in turns within each iteration so that both see
// the same load, and reports the milliseconds of each Start (until the
// process runs with its env: Swarm's Start returns once its task runs) and
// their ratio (ns/op holds both starts and removals).
//
//	go test ./orchestrator -run '^$' -bench BenchmarkBackendStart -benchtime 10x
func BenchmarkBackendStart(b *testing.B) {
	cli := testenv.RequireSwarm(b)
	image, _ := testimage.Build(b, cli)
	swarm := testimage.NewSwarmBackend(b, cli, swarmbackend.Options{})
	user := vault.NewID(vault.PrefixUser)
	b.Cleanup(func() {
		if left := testenv.SwarmLeft(b, cli, swarmbackend.LabelUser+"="+user); len(left) > 0 {
			b.Errorf("left behind: %v", left)
			testenv.RemoveSwarmObjects(b, cli, swarmbackend.LabelUser+"="+user)
		}
	})
	docker := dockerbackend.New(testimage.NewRunner(b, cli, runner.Options{StopTimeout: 5 * time.Second}))
	ctx := context.Background()
	spec := func() orchestrator.Spec {
		task := vault.NewID(vault.PrefixTask)
		return orchestrator.Spec{TaskID: task, UserID: user, Name: orchestrator.ContainerName(task, 1), Image: image,
			Command: []string{testimage.EnvProbe, "sleep", "forever"},
			Env:     map[string]string{"TOKEN": "bench-token-value", "LOG_LEVEL": "debug"},
			Sandbox: vault.SandboxSettings{EnvDelivery: vault.EnvDeliveryStdin}}
	}
	backends := []orchestrator.Backend{docker, swarm}
	took := make([]time.Duration, len(backends))
	for i := 0; i < b.N; i++ {
		for j, be := range backends {
			start := time.Now()
			id, err := be.Start(ctx, spec())
			took[j] += time.Since(start)
			if err != nil {
				b.Fatal(err)
			}
			if err := be.Remove(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(took[0].Milliseconds())/float64(b.N), "docker-ms/start")
	b.ReportMetric(float64(took[1].Milliseconds())/float64(b.N), "swarm-ms/start")
	b.ReportMetric(float64(took[1])/float64(took[0]), "swarm/docker")
}

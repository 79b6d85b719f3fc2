package orchestrator_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

// TestMergeTaskCredential: the task credential and the API's URL join the
// task layer (nothing overrides them), only when given; a preview holds
// neither.
func TestMergeTaskCredential(t *testing.T) {
	in := orchestrator.MergeInput{
		Profile: map[string]string{orchestrator.EnvTaskToken: "forged", orchestrator.EnvTaskAPIURL: "http://evil"},
		TaskID:  "tsk_1", TaskToken: "ttk_x", TaskAPIURL: "http://172.17.0.1:8080",
	}
	env, sources := orchestrator.Merge(in)
	if env[orchestrator.EnvTaskToken] != "ttk_x" || env[orchestrator.EnvTaskAPIURL] != "http://172.17.0.1:8080" {
		t.Errorf("env %v", env)
	}
	for _, s := range sources {
		if strings.HasPrefix(s.Name, "ENVVAULT_") && s.Source != orchestrator.SourceTask {
			t.Errorf("source %+v", s)
		}
	}
	in.TaskToken = ""
	env, _ = orchestrator.Merge(in)
	if env[orchestrator.EnvTaskToken] != "forged" {
		t.Errorf("without a credential the profile's value stays: %v", env)
	}
	if got := maps.Collect(func(yield func(string, bool) bool) {
		for _, s := range orchestrator.Preview(orchestrator.Baseline{}, nil, nil) {
			yield(s.Name, true)
		}
	}); got[orchestrator.EnvTaskToken] {
		t.Errorf("a preview holds the credential's name: %v", got)
	}
}

// TestAskSatisfiedByAnyRoute runs a task on the real Docker Engine with a
// task API URL: its container gets the credential and the URL (masked in
// its logs); a cancelled ask leaves it running; when the names of its
// next ask get a value by another route than the answer (a secret
// created), the worker's pass closes the request and restarts the task,
// whose next attempt sees the value and has a new credential.
func TestAskSatisfiedByAnyRoute(t *testing.T) {
	f := newFixture(t, sqliteBackend(t).open(t), true)
	ctx := context.Background()
	o := orchestrator.New(orchestrator.Config{Vault: f.svc, Store: f.store, Runner: f.runner, Worker: "w-" + vault.NewID(""),
		TaskAPIURL: "http://172.17.0.1:1"})
	f.run(o)
	p := f.profile(f.shellImage, "/bin/sh", "-c",
		`echo "attempt url=$ENVVAULT_URL len=${#ENVVAULT_TASK_TOKEN} token=$ENVVAULT_TASK_TOKEN wanted=${#WANTED}"; trap "exit 0" TERM; sleep 600 & wait`)
	task := f.create(o, p)
	started := func(attempt, length int) func(*orchestrator.Task, string) bool {
		return func(task *orchestrator.Task, logs string) bool {
			return task.Status == orchestrator.StatusRunning && task.Attempt == attempt && strings.Count(logs, "attempt url") == attempt &&
				strings.Contains(logs, fmt.Sprintf("wanted=%d\n", length))
		}
	}
	t0 := time.Now()
	running := f.await(task.ID, "running", started(1, 0), o)
	t.Logf("attempt 1 running: %v", time.Since(t0))
	logs := f.logs(running.ID)
	if !strings.Contains(logs, "url=http://172.17.0.1:1 len=") || strings.Contains(logs, "token=ttk_") {
		t.Errorf("attempt 1 logs %q: want the URL, a credential, masked", logs)
	}
	ask := func() *vault.SecretRequest {
		t.Helper()
		cur := f.await(task.ID, "running", func(t *orchestrator.Task, _ string) bool { return t.Status == orchestrator.StatusRunning }, o)
		r, err := o.AskSecrets(ctx, cur, []vault.RequiredSecret{{Name: "WANTED", Description: "please"}}, "need it")
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := ask()
	if _, err := f.svc.CancelSecretRequest(ctx, f.user, r.ID); err != nil {
		t.Fatal(err)
	}
	o.CancelWaiting(ctx, r)
	if cur := f.task(task.ID); cur.Status != orchestrator.StatusRunning || cur.StopRequested {
		t.Fatalf("a cancelled ask ended its task: %+v", cur)
	}
	r = ask()
	created := time.Now()
	f.secret("WANTED", "wanted-value")
	f.await(task.ID, "running attempt 2", started(2, len("wanted-value")), o)
	t.Logf("secret created to attempt 2 running: %v", time.Since(created))
	if got, err := f.svc.SecretRequest(ctx, f.user, r.ID); err != nil || got.Status != vault.RequestAnswered {
		t.Errorf("the request after the secret was created: %+v, %v", got, err)
	}
	if logs := f.logs(task.ID); !strings.Contains(logs, "restarting (attempt 2) because secret request "+r.ID+" was answered") {
		t.Errorf("logs %q", logs)
	}
	// A name with a value is refused.
	cur := f.task(task.ID)
	if _, err := o.AskSecrets(ctx, cur, []vault.RequiredSecret{{Name: "WANTED"}}, ""); vault.ErrorCode(err) != vault.ECONFLICT || vault.ErrorField(err) != "names" {
		t.Errorf("asking for a name with a value: %v", err)
	}
}

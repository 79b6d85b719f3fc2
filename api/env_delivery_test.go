package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/envvault/envvault/internal/testimage"
	"github.com/envvault/envvault/runner"
)

// newTestRunner returns a runner on cli with an init of its own.
func newTestRunner(tb testing.TB, cli client.APIClient) *runner.Runner {
	return testimage.NewRunner(tb, cli, runner.Options{StopTimeout: 5 * time.Second})
}

// pid1Env is the env of a running container's process (PID 1), as the
// engine recorded it for env delivery and as the init set it for stdin
// delivery, without the names the runtime adds to every process (HOSTNAME,
// HOME): read by `docker exec`ing the probe, which reads /proc/1/environ.
func pid1Env(tb testing.TB, cli client.APIClient, id string) []string {
	tb.Helper()
	ctx := context.Background()
	argv := []string{testimage.EnvProbe, "pid1envjson"}
	created, err := cli.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: argv, AttachStdout: true, AttachStderr: true})
	if err != nil {
		tb.Fatalf("exec %v: %v", argv, err)
	}
	att, err := cli.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{})
	if err != nil {
		tb.Fatalf("exec %v: %v", argv, err)
	}
	defer att.Close()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, att.Reader); err != nil {
		tb.Fatalf("exec %v: %v", argv, err)
	}
	var env []string
	if err := json.Unmarshal(stdout.Bytes(), &env); err != nil {
		tb.Fatalf("exec %v: %v (stderr %q)", argv, err, stderr.String())
	}
	out := env[:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "HOSTNAME=") && !strings.HasPrefix(kv, "HOME=") {
			out = append(out, kv)
		}
	}
	return out
}

// TestTaskEnvDelivery: a profile that names no env delivery gets stdin, one
// that asks for env gets env; the task's JSON says which, and docker
// inspect holds the secret's value with env only, while the process holds
// it with both.
func TestTaskEnvDelivery(t *testing.T) {
	t.Parallel()
	e := newTaskEnv(t, taskEnvOptions{docker: true})
	_, tok := e.newUser("alice")
	const value = "canary-env-delivery-3c9e1f"
	cmd := []string{testimage.EnvProbe, "print", "up", "--", "sleep", "forever"}
	stdin := e.mustProfile(tok, "stdin", e.envImage, cmd, nil)
	env := e.mustCreate("/v1/profiles", tok, mustJSON(t, map[string]any{"name": "env", "image": e.envImage, "command": cmd,
		"sandbox": map[string]any{"env_delivery": "env"}}))
	e.mustSecret(tok, "TOKEN", value)
	r := e.call("POST", "/v1/profiles", tok, mustJSON(t, map[string]any{"name": "bad", "image": e.envImage, "sandbox": map[string]any{"env_delivery": "file"}}))
	want(t, r, http.StatusUnprocessableEntity, "sandbox.env_delivery")

	for _, tc := range []struct {
		profile, delivery string
		inInspect         bool
	}{{stdin, "stdin", false}, {env, "env", true}} {
		task := e.startTask(tok, tc.profile, "")
		running := e.awaitStatus(tok, task.ID, "running")
		e.followLogs(tok, task.ID, func(s string) bool { return strings.Contains(s, "up\n") })
		if got := e.taskSandbox(tok, task.ID)["env_delivery"]; got != tc.delivery {
			t.Errorf("%s: the task's sandbox says env_delivery %v", tc.delivery, got)
		}
		_, raw, err := e.cli.ContainerInspectWithRaw(context.Background(), running.container(), false)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(raw, []byte(task.ID)) {
			t.Fatalf("%s: docker inspect does not name the task", tc.delivery)
		}
		if got := bytes.Contains(raw, []byte(value)); got != tc.inInspect {
			t.Errorf("%s: the value in docker inspect: %t, want %t", tc.delivery, got, tc.inInspect)
		}
		if got := envMap(t, pid1Env(t, e.cli, running.container()))["TOKEN"]; got != value {
			t.Errorf("%s: the process's TOKEN is %q", tc.delivery, got)
		}
		e.call("POST", "/v1/tasks/"+task.ID+"/stop", tok, "")
		e.awaitStatus(tok, task.ID, "stopped")
	}
}

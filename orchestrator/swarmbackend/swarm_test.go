package swarmbackend_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/envvault/envvault/internal/testenv"
	"github.com/envvault/envvault/internal/testimage"
	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/orchestrator/swarmbackend"
	"github.com/envvault/envvault/vault"
)

// newBackend returns a Swarm backend with an init of its own (removed at
// the end), the env test image, and a user id of the test's own; the test
// fails if anything labelled with that user is left on the engine.
func newBackend(t *testing.T, opts swarmbackend.Options) (*swarmbackend.Backend, client.APIClient, string, string) {
	t.Helper()
	cli := testenv.RequireSwarm(t)
	envImage, _ := testimage.Build(t, cli)
	b := testimage.NewSwarmBackend(t, cli, opts)
	user := vault.NewID(vault.PrefixUser)
	t.Cleanup(func() {
		if left := testenv.SwarmLeft(t, cli, swarmbackend.LabelUser+"="+user); len(left) > 0 {
			t.Errorf("left behind: %v", left)
			testenv.RemoveSwarmObjects(t, cli, swarmbackend.LabelUser+"="+user)
		}
	})
	return b, cli, envImage, user
}

// taskContainer is the id of the container of the service's task.
func taskContainer(t *testing.T, cli client.APIClient, serviceID string) string {
	t.Helper()
	tasks, err := cli.TaskList(context.Background(), swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", serviceID))})
	if err != nil || len(tasks) == 0 || tasks[0].Status.ContainerStatus == nil {
		t.Fatalf("tasks of %s: %+v, %v", serviceID, tasks, err)
	}
	return tasks[0].Status.ContainerStatus.ContainerID
}

// execOut runs argv in the container and returns its stdout.
func execOut(t *testing.T, cli client.APIClient, id string, argv ...string) string {
	t.Helper()
	ctx := context.Background()
	created, err := cli.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: argv, AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	att, err := cli.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	var out, errOut bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &errOut, att.Reader); err != nil {
		t.Fatal(err)
	}
	if errOut.Len() > 0 {
		t.Fatalf("exec %v: %s", argv, errOut.String())
	}
	return out.String()
}

// TestCanary starts a task whose env holds a canary and checks where it
// is: in the process's env, and in none of what the engine shows of the
// service, its task's container, its secret, nor the service's logs.
func TestCanary(t *testing.T) {
	const canary = "swarm-canary-7d41c9"
	b, cli, img, user := newBackend(t, swarmbackend.Options{})
	ctx := context.Background()
	task := vault.NewID(vault.PrefixTask)
	spec := orchestrator.Spec{TaskID: task, UserID: user, ProfileID: "prf_1", Name: orchestrator.ContainerName(task, 1), Image: img,
		Command: []string{"/envprobe", "print", "ready", "--", "wait-for-file", "/tmp/go", "--", "exit", "0"},
		Env:     map[string]string{"TOKEN": canary, "PLAIN": "plain-value"}}
	id, err := b.Start(ctx, spec)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = b.Remove(context.Background(), id) })
	ctr := taskContainer(t, cli, id)

	var lines []string
	if err := json.Unmarshal([]byte(execOut(t, cli, ctr, "/envprobe", "pid1envjson")), &lines); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range lines {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	if env["TOKEN"] != canary || env["PLAIN"] != "plain-value" {
		t.Errorf("the process's env lacks the task's: TOKEN %t, PLAIN %q", env["TOKEN"] == canary, env["PLAIN"])
	}

	_, svcRaw, err := cli.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctrJSON, ctrRaw, err := cli.ContainerInspectWithRaw(ctx, ctr, false)
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := cli.SecretList(ctx, swarm.SecretListOptions{Filters: filters.NewArgs(filters.Arg("label", swarmbackend.LabelTask+"="+task))})
	if err != nil || len(secrets) != 1 {
		t.Fatalf("secrets of the task: %d, %v", len(secrets), err)
	}
	_, secretRaw, err := cli.SecretInspectWithRaw(ctx, secrets[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	// What is scanned is what it claims to be.
	if !strings.Contains(string(svcRaw), spec.Name) || !strings.Contains(string(svcRaw), swarmbackend.SecretPath) ||
		!strings.Contains(ctrJSON.Name, spec.Name) || !strings.Contains(string(secretRaw), spec.Name) {
		t.Fatalf("inspect answers are not of the task's service, container and secret")
	}
	rc, err := b.Logs(ctx, id, false)
	if err != nil {
		t.Fatal(err)
	}
	logs, _ := io.ReadAll(rc)
	rc.Close()
	if string(logs) != "ready\n" {
		t.Errorf("logs %q, want ready", logs)
	}
	for what, raw := range map[string][]byte{"docker service inspect": svcRaw, "docker inspect (task container)": ctrRaw,
		"docker secret inspect": secretRaw, "docker service logs": logs} {
		if bytes.Contains(raw, []byte(canary)) || bytes.Contains(raw, []byte("plain-value")) {
			t.Errorf("%s holds an env value", what)
		}
	}

	execOut(t, cli, ctr, "/envprobe", "touch", "/tmp/go")
	if code, err := b.Wait(ctx, id); err != nil || code != 0 {
		t.Errorf("wait: %d, %v", code, err)
	}
	if err := b.Remove(ctx, id); err != nil {
		t.Errorf("remove: %v", err)
	}
	if _, err := cli.ContainerInspect(ctx, ctr); err == nil {
		t.Errorf("the task's container is left after Remove")
	}
}

// TestFollowEndsWithTheTask: a followed log ends when the task does, with
// every line, stdout and stderr.
func TestFollowEndsWithTheTask(t *testing.T) {
	b, _, img, user := newBackend(t, swarmbackend.Options{})
	ctx := context.Background()
	task := vault.NewID(vault.PrefixTask)
	id, err := b.Start(ctx, orchestrator.Spec{TaskID: task, UserID: user, Name: orchestrator.ContainerName(task, 1), Image: img,
		Command: []string{"/envprobe", "lines", "300", "--", "echoerr", "E", "--", "sleep", "1s", "--", "print", "last", "--", "exit", "4"},
		Env:     map[string]string{"E": "to-stderr"}})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = b.Remove(context.Background(), id) })
	rc, err := b.Logs(ctx, id, true)
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatalf("follow: %v", err)
	}
	if n := strings.Count(string(out), "\n"); n != 302 || !strings.HasSuffix(string(out), "last\n") || !strings.Contains(string(out), "to-stderr\n") {
		t.Errorf("followed %d lines, ending %q", n, out[max(0, len(out)-40):])
	}
	if code, err := b.Wait(ctx, id); err != nil || code != 4 {
		t.Errorf("wait: %d, %v", code, err)
	}
	if err := b.Remove(ctx, id); err != nil {
		t.Errorf("remove: %v", err)
	}
}

// TestStartTimeout: a task no node may run fails its start within the
// start timeout, naming what Swarm said, and leaves nothing.
func TestStartTimeout(t *testing.T) {
	b, _, img, user := newBackend(t, swarmbackend.Options{StartTimeout: 2 * time.Second, Constraints: []string{"node.labels.envvault-test-none==x"}})
	task := vault.NewID(vault.PrefixTask)
	_, err := b.Start(context.Background(), orchestrator.Spec{TaskID: task, UserID: user, Name: orchestrator.ContainerName(task, 1), Image: img})
	if err == nil || !strings.Contains(err.Error(), "within 2s") || !strings.Contains(err.Error(), "no suitable node") {
		t.Errorf("start: %v", err)
	}
}

// TestEnvOverSecretLimit: an env block over Swarm's 500 KiB is refused
// before anything is made.
func TestEnvOverSecretLimit(t *testing.T) {
	b, _, img, user := newBackend(t, swarmbackend.Options{})
	task := vault.NewID(vault.PrefixTask)
	spec := orchestrator.Spec{TaskID: task, UserID: user, Name: orchestrator.ContainerName(task, 1), Image: img,
		Env: map[string]string{"BIG": strings.Repeat("x", swarmbackend.MaxSecretSize)}}
	if _, err := b.Start(context.Background(), spec); err == nil || !strings.Contains(err.Error(), "secret limit of 512000 bytes") {
		t.Errorf("start: %v", err)
	}
	spec.Env["BIG"] = strings.Repeat("x", swarmbackend.MaxSecretSize-100)
	id, err := b.Start(context.Background(), spec)
	if err != nil {
		t.Fatalf("start just under the limit: %v", err)
	}
	if err := b.Remove(context.Background(), id); err != nil {
		t.Error(err)
	}
	if _, err := b.Env(context.Background(), id); !errors.Is(err, orchestrator.ErrContainerNotFound) {
		t.Errorf("env after remove: %v", err)
	}
}

// TestStartFailure: a container the node cannot start (its user does not
// exist in the image) fails the start with what the runtime said, as the
// Docker backend's start does, and leaves nothing.
func TestStartFailure(t *testing.T) {
	b, _, img, user := newBackend(t, swarmbackend.Options{})
	task := vault.NewID(vault.PrefixTask)
	_, err := b.Start(context.Background(), orchestrator.Spec{TaskID: task, UserID: user, Name: orchestrator.ContainerName(task, 1), Image: img,
		Sandbox: vault.SandboxSettings{User: "no-such-user"}})
	if err == nil || !strings.Contains(err.Error(), "could not start its container") || !strings.Contains(err.Error(), "no-such-user") {
		t.Errorf("start: %v", err)
	}
}

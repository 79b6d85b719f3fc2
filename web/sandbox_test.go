package web_test

import (
	"context"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

func TestProfileSandboxForm(t *testing.T) {
	s := newStack(t)
	c := s.client(t)
	c.signIn()
	csrf := c.csrf("/profiles/new")
	form := url.Values{"csrf": {csrf}, "name": {"boxed"}, "image": {"busybox"}, "sandbox_memory_mb": {"99999"}}
	res := c.post("/profiles", form)
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, res.Body, `id="profile-sandbox-memory_mb-error" aria-live="polite">must be between 1 and 4096`, `value="99999"`)
	form.Set("sandbox_memory_mb", "lots")
	res = c.post("/profiles", form)
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, res.Body, `id="profile-sandbox-memory_mb-error" aria-live="polite">must be a whole number`)
	form.Set("sandbox_memory_mb", "")
	form.Set("sandbox_network", "host")
	res = c.post("/profiles", form)
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, res.Body, `id="profile-sandbox-network-error" aria-live="polite">&#34;host&#34; is not allowed`)

	form.Set("sandbox_network", "none")
	form.Set("sandbox_user", "1000:1000")
	form.Set("sandbox_memory_mb", "256")
	res = c.post("/profiles", form)
	wantStatus(t, res, http.StatusSeeOther)
	id := strings.TrimSuffix(strings.TrimPrefix(res.Header.Get("Location"), "/profiles/"), "?ok=profile-added")
	p, err := s.svc.Profile(context.Background(), s.userID, id)
	if err != nil {
		t.Fatal(err)
	}
	if want := (vault.Sandbox{User: "1000:1000", MemoryMB: 256, Network: "none"}); !reflect.DeepEqual(p.Sandbox, want) {
		t.Fatalf("stored sandbox %+v, want %+v", p.Sandbox, want)
	}
	wantContains(t, c.get("/profiles/"+id).Body, `name="sandbox_user" type="text" value="1000:1000"`, `name="sandbox_memory_mb" type="number" value="256"`)

	// A task's page shows what its container got.
	task, err := s.orch.CreateTask(context.Background(), s.userID, id, "")
	if err != nil {
		t.Fatal(err)
	}
	wantContains(t, c.get("/tasks/"+task.ID).Body, "Recorded when its container starts.")
	settings, err := s.svc.SandboxSettings(p)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.store.UpdateTask(context.Background(), task.ID, func(t *orchestrator.Task) error {
		t.Status, t.Sandbox = orchestrator.StatusRunning, settings
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantContains(t, c.get("/tasks/"+task.ID).Body, `id="sandbox"`, "<code>1000:1000</code>", "256 MiB, no swap", "1000 thousandths of a CPU",
		"at most 512", "all dropped", "<code>none</code>", "read-only, <code>/tmp</code> a tmpfs", "no-new-privileges",
		`id="sandbox-env-delivery"><code>stdin</code>: no value in <code>docker inspect</code>`)

	// The env delivery a profile asks for is kept, shown and checked.
	form.Set("name", "env-delivered")
	form.Set("sandbox_env_delivery", "file")
	res = c.post("/profiles", form)
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, res.Body, `id="profile-sandbox-env_delivery-error" aria-live="polite">must be stdin or env`)
	form.Set("sandbox_env_delivery", "env")
	res = c.post("/profiles", form)
	wantStatus(t, res, http.StatusSeeOther)
	id = strings.TrimSuffix(strings.TrimPrefix(res.Header.Get("Location"), "/profiles/"), "?ok=profile-added")
	if p, err := s.svc.Profile(context.Background(), s.userID, id); err != nil || p.Sandbox.EnvDelivery != vault.EnvDeliveryEnv {
		t.Fatalf("stored env delivery: %+v, %v", p, err)
	}
	wantContains(t, c.get("/profiles/"+id).Body, `<option value="env" selected>`)
}

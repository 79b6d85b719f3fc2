package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envvault/envvault/internal/testenv"
	logmask "github.com/envvault/envvault/mask"
)

// oauth2Script prints a digest of the API_TOKEN it received, the token
// itself (which the logs must mask), and waits to be stopped, so that its
// container can be inspected while it runs.
const oauth2Script = `printf 'digest=%s\n' "$(printf %s "$API_TOKEN" | sha256sum | cut -d' ' -f1)"; ` +
	`echo "token=$API_TOKEN"; echo done; exec sleep 300`

// TestOAuth2ClientCredentialsTask: an oauth2 secret of a client of a real
// Ory Hydra, end to end into a task's container on the real Docker Engine:
// the container receives the access token Hydra issued (Hydra says it is
// active; the container prints its digest), its logs mask it, docker
// inspect holds no token; a token that ages past the margin is refreshed
// before the next task; a deleted client fails the next task cleanly,
// naming the secret, and the secret shows needs_reconnect; no response,
// log line or database file holds the client secret or a token.
func TestOAuth2ClientCredentialsTask(t *testing.T) {
	h := testenv.RequireHydra(t)
	var skew atomic.Int64
	e := newTaskEnv(t, taskEnvOptions{docker: true, now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
	_, tok := e.newUser("alice")
	client := h.CreateClient(t, testenv.HydraClientOptions{Scopes: []string{"read"}})
	secID := e.mustCreate("/v1/secrets", tok, mustJSON(t, map[string]any{"name": "API_TOKEN", "kind": "oauth2",
		"client_secret": client.Secret, "oauth2": map[string]any{"flow": "client_credentials", "token_url": h.TokenURL,
			"client_id": client.ID, "scopes": []string{"read"}}}))
	pid := e.mustProfile(tok, "agent", e.shellImage, []string{"/bin/sh", "-c", oauth2Script}, nil)

	first := e.runOAuth2Task(tok, pid, h)
	if n := h.TokenRequests("client_credentials"); n != 1 {
		t.Errorf("first task: %d token requests, want 1", n)
	}
	// A second task while the token is valid for the margin: no request.
	if again := e.runOAuth2Task(tok, pid, h); again != first || h.TokenRequests("client_credentials") != 1 {
		t.Errorf("a token valid for the margin was not reused (%d requests)", h.TokenRequests("client_credentials"))
	}
	// 55 minutes on, the hour-long token is valid for less than the
	// 10-minute margin: the next task gets a new one.
	skew.Store(int64(55 * time.Minute))
	second := e.runOAuth2Task(tok, pid, h)
	if second == first || h.TokenRequests("client_credentials") != 2 {
		t.Errorf("an aged token was given again (%d requests)", h.TokenRequests("client_credentials"))
	}
	st := e.oauth2Status(tok, secID)
	if st["state"] != "connected" || st["expires_at"] == nil {
		t.Errorf("status after a refresh: %v", st)
	}

	// The client is deleted at the provider: the next refresh is refused.
	h.DeleteClient(t, client.ID)
	skew.Store(int64(2 * time.Hour))
	task := e.startTask(tok, pid, "revoked")
	task = e.awaitTask(tok, task.ID, "failed", func(a apiTask) bool { return a.Status == "failed" })
	if task.Error == nil || !strings.Contains(*task.Error, "not started") || !strings.Contains(*task.Error, "API_TOKEN") ||
		!strings.Contains(*task.Error, "invalid_client") || task.ContainerID != nil {
		t.Errorf("task with a revoked client: %s", task)
	}
	st = e.oauth2Status(tok, secID)
	if st["state"] != "needs_reconnect" || !strings.Contains(st["reason"].(string), "invalid_client") {
		t.Errorf("status after a refused refresh: %v", st)
	}
	e.finish()
	e.assertNoLeak(client.Secret, first, second)
}

// runOAuth2Task runs a task of the profile until its script is done and
// returns the token it received: its container printed the token's digest,
// Hydra says the token is active, the logs mask it, and docker inspect of
// the running container does not hold it. The task is stopped after.
func (e *taskEnv) runOAuth2Task(tok, pid string, h *testenv.Hydra) string {
	t := e.t
	t.Helper()
	task := e.startTask(tok, pid, "oauth2")
	task = e.awaitStatus(tok, task.ID, "running")
	out, _ := e.followLogs(tok, task.ID, func(s string) bool { return strings.Contains(s, "done\n") })
	raw := e.rawLogs(task.container())
	_, after, ok := strings.Cut(raw, "token=")
	token, _, _ := strings.Cut(after, "\n")
	if !ok || len(token) < logmask.MinLen {
		t.Fatalf("the container printed no token: %q", raw)
	}
	sum := sha256.Sum256([]byte(token))
	if !strings.Contains(out, "digest="+hex.EncodeToString(sum[:])) {
		t.Errorf("logs lack the digest of the token printed: %q", mask(out, token))
	}
	if strings.Contains(out, token) || !strings.Contains(out, "token="+logmask.Placeholder) {
		t.Errorf("the task's logs do not mask its access token: %q", mask(out, token))
	}
	if in := h.Introspect(t, token); !in.Active || in.ClientID == "" {
		t.Errorf("Hydra says the token the task got is not active: %+v", in)
	}
	inspect, err := e.cli.ContainerInspect(context.Background(), *task.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	if raw := mustJSON(t, inspect); strings.Contains(raw, token) || !strings.Contains(raw, task.ID) {
		t.Errorf("docker inspect holds the access token (or is not the task's container)")
	}
	e.call("POST", "/v1/tasks/"+task.ID+"/stop", tok, "")
	e.awaitStatus(tok, task.ID, "stopped")
	return token
}

func (e *taskEnv) oauth2Status(tok, secID string) map[string]any {
	e.t.Helper()
	r := e.call("GET", "/v1/secrets/"+secID, tok, "")
	want(e.t, r, http.StatusOK, "")
	o, _ := r.json(e.t)["oauth2"].(map[string]any)
	st, _ := o["status"].(map[string]any)
	if st == nil {
		e.t.Fatalf("secret without oauth2 status: %s", r.body)
	}
	return st
}

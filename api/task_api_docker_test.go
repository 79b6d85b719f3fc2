package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/envvault/envvault/vault"
)

// listenOnBridge listens on Docker's default bridge's gateway, port 0, so
// that a container on that bridge reaches the API, and returns the
// listener and the URL tasks are given. The gateway is read from the
// engine: the network's IPAM gateway, else the first address of the
// bridge's interface (the engine leaves the gateway out of IPAM for the
// default bridge when it was not configured).
func listenOnBridge(t *testing.T, cli client.APIClient) (net.Listener, string) {
	t.Helper()
	nw, err := cli.NetworkInspect(t.Context(), "bridge", network.InspectOptions{})
	if err != nil {
		t.Fatalf("inspect the bridge network: %v", err)
	}
	var gw string
	for _, c := range nw.IPAM.Config {
		if ip := net.ParseIP(c.Gateway); ip != nil && ip.To4() != nil {
			gw = c.Gateway
		}
	}
	if gw == "" {
		name := nw.Options["com.docker.network.bridge.name"]
		iface, err := net.InterfaceByName(name)
		if err != nil {
			t.Fatalf("the bridge network names interface %q: %v", name, err)
		}
		addrs, _ := iface.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
				gw = n.IP.String()
				break
			}
		}
	}
	if gw == "" {
		t.Fatalf("no IPv4 gateway for the bridge network: %+v", nw.IPAM)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(gw, "0"))
	if err != nil {
		t.Fatalf("listen on the bridge's gateway: %v", err)
	}
	return ln, "http://" + ln.Addr().String()
}

// agentScript is what the task runs: the agent inside a container, with
// busybox wget and its task credential. It prints the secret keys, tries
// to read secrets and tasks (refused), then either asks for OPENAI_API_KEY
// (the first attempt of the task prompted "asks") or prints the SHA-256 of the value it was given (the
// attempt after the answer), and waits to be stopped.
const agentScript = `
auth="Authorization: Bearer $ENVVAULT_TASK_TOKEN"
api() { wget -q -O - --header "$auth" "$@"; }
trap 'exit 0' TERM
echo "token: $ENVVAULT_TASK_TOKEN"
echo "keys: $(api "$ENVVAULT_URL/v1/task/secret-keys")"
for p in /v1/secrets /v1/secrets/$GITHUB_SECRET_ID /v1/profiles/$PROFILE_ID/env /v1/tasks/$TASK_ID /v1/tokens; do
  if api "$ENVVAULT_URL$p" >/dev/null 2>&1; then echo "READ $p"; else echo "refused $p"; fi
done
if [ -n "$OPENAI_API_KEY" ]; then
  echo "value sha256=$(printf %s "$OPENAI_API_KEY" | sha256sum | cut -d' ' -f1)"
  echo "requests: $(api "$ENVVAULT_URL/v1/task/secret-requests")"
elif [ "$TASK_PROMPT" = asks ]; then
  echo "asked: $(api --header 'Content-Type: application/json' --post-data '{"names":[{"name":"OPENAI_API_KEY","description":"the model key"}],"message":"I need the OpenAI key to call the model"}' "$ENVVAULT_URL/v1/task/secret-requests")"
fi
echo ready
sleep 300 &
wait
`

// TestTaskAsksFromContainer is item 3 end to end on Docker: a task's
// container lists its keys and asks for a name with its task credential
// (busybox wget, through the bridge's gateway); the user answers through
// the API; the task's next attempt sees the value. The credential is
// refused on values, on every other route, on another task's request,
// once its attempt restarted and once the task ended. Neither the value
// nor a credential is in docker inspect, the task's logs, the server's log,
// a response or the audit trail.
func TestTaskAsksFromContainer(t *testing.T) {
	const value = "CANARY-task-asked-0123456789"
	e := newTaskEnv(t, taskEnvOptions{docker: true, taskAPI: true})
	alice, tok := e.newUser("alice")
	pid := e.mustProfile(tok, "agent", e.shellImage, []string{"/bin/sh", "-c", agentScript}, nil)
	ghID := e.mustSecret(tok, "GITHUB_TOKEN", "CANARY-github-token-value", pid)
	r := e.call("PATCH", "/v1/profiles/"+pid, tok, mustJSON(t, map[string]any{"env": map[string]string{"PROFILE_ID": pid, "GITHUB_SECRET_ID": ghID}}))
	want(t, r, http.StatusOK, "")
	task := e.startTask(tok, pid, "asks")
	other := e.startTask(tok, pid, "other")

	logs, _ := e.followLogs(tok, task.ID, func(s string) bool { return strings.Contains(s, "ready") })
	for _, line := range []string{`"name":"GITHUB_TOKEN","has_value":true,"source":"agents"`, `"status":"pending"`,
		`"message":"I need the OpenAI key to call the model"`, "token: ", "refused /v1/secrets\n", "refused /v1/secrets/" + ghID,
		"refused /v1/profiles/" + pid + "/env", "refused /v1/tasks/" + task.ID, "refused /v1/tokens"} {
		if !strings.Contains(logs, line) {
			t.Errorf("attempt 1's logs lack %q:\n%s", line, logs)
		}
	}
	if strings.Contains(logs, "READ ") {
		t.Errorf("the credential read a refused route:\n%s", logs)
	}
	running := e.awaitStatus(tok, task.ID, "running")
	cred1 := e.credentialOf(alice, running)
	if strings.Contains(logs, cred1) || !strings.Contains(e.rawLogs(running.container()), cred1) {
		t.Error("the credential is not masked in the task's logs, or is not the one the container got (rawLogs)")
	}
	e.inspectHolds(running.container(), false, cred1, value)

	// The same credential, from outside: its own routes, not a value nor
	// another task's request.
	want(t, e.call("GET", "/v1/task/secret-keys", cred1, ""), http.StatusOK, "")
	for _, p := range []string{"/v1/secrets/" + ghID, "/v1/profiles/" + pid + "/env", "/v1/tasks/" + other.ID, "/v1/secret-requests"} {
		want(t, e.call("GET", p, cred1, ""), http.StatusForbidden, "")
	}
	r = e.call("GET", "/v1/secret-requests", tok, "")
	want(t, r, http.StatusOK, "")
	var list struct {
		Data []struct {
			ID   string `json:"id"`
			Asks []struct {
				TaskID  string `json:"task_id"`
				Attempt int    `json:"attempt"`
			} `json:"asks"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.body, &list); err != nil || len(list.Data) != 1 || len(list.Data[0].Asks) != 1 ||
		list.Data[0].Asks[0].TaskID != task.ID || list.Data[0].Asks[0].Attempt != 1 {
		t.Fatalf("the user's requests: %s (%v)", r.body, err)
	}
	reqID := list.Data[0].ID
	otherRunning := e.awaitStatus(tok, other.ID, "running")
	want(t, e.call("GET", "/v1/task/secret-requests/"+reqID, e.credentialOf(alice, otherRunning), ""), http.StatusNotFound, "")

	answered := time.Now()
	want(t, e.call("POST", "/v1/secret-requests/"+reqID+"/answer", tok, `{"values":{"OPENAI_API_KEY":"`+value+`"},"scope":"agents"}`), 200, "")
	second := e.awaitTask(tok, task.ID, "attempt 2 running", func(a apiTask) bool { return a.Attempt == 2 && a.Status == "running" })
	t.Logf("answer to attempt 2 recorded running: %v", time.Since(answered))
	logs, _ = e.followLogs(tok, task.ID, func(s string) bool { return strings.Count(s, "ready") == 2 })
	t.Logf("answer to attempt 2's output read: %v", time.Since(answered))
	sum := sha256.Sum256([]byte(value))
	if !strings.Contains(logs, "value sha256="+hex.EncodeToString(sum[:])) || !strings.Contains(logs, "restarting (attempt 2) because secret request "+reqID+" was answered") ||
		!strings.Contains(logs, `"status":"answered"`) {
		t.Errorf("attempt 2's logs:\n%s", logs)
	}
	cred2 := e.credentialOf(alice, second)
	e.inspectHolds(second.container(), false, cred2, value)
	want(t, e.call("GET", "/v1/task/secret-keys", cred1, ""), http.StatusUnauthorized, "") // the old attempt's
	want(t, e.call("GET", "/v1/task/secret-keys", cred2, ""), http.StatusOK, "")

	// The task ends: its credential stops.
	want(t, e.call("POST", "/v1/tasks/"+task.ID+"/stop", tok, ""), http.StatusAccepted, "")
	e.awaitStatus(tok, task.ID, "stopped")
	r = e.call("GET", "/v1/task/secret-keys", cred2, "")
	want(t, r, http.StatusUnauthorized, "")
	if _, _, msg := r.errorOf(t); !strings.Contains(msg, "no longer running") {
		t.Errorf("after the end: %s", r.body)
	}
	want(t, e.call("POST", "/v1/tasks/"+other.ID+"/stop", tok, ""), http.StatusAccepted, "")
	e.awaitStatus(tok, other.ID, "stopped")
	want(t, e.call("GET", "/v1/audit?limit=200", tok, ""), http.StatusOK, "") // the trail, into the transcript
	e.finish()
	e.assertNoLeak(value, "CANARY-github-token-value", cred1, cred2)
}

// credentialOf makes again the credential the worker gave the task's
// current attempt: the same task, attempt and start give the same one.
func (e *taskEnv) credentialOf(user string, a apiTask) string {
	e.t.Helper()
	if a.StartedAt == nil {
		e.t.Fatalf("task %s has not started", a.ID)
	}
	at, err := time.Parse(time.RFC3339Nano, *a.StartedAt)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.svc.IssueTaskCredential(vault.TaskCredential{TaskID: a.ID, UserID: user, Attempt: a.Attempt, Expires: vault.TaskCredentialExpiry(at, 0)})
}

// inspectHolds fails unless docker inspect of the container holds each of
// values exactly when want says (having checked it names the container).
func (e *taskEnv) inspectHolds(containerID string, want bool, values ...string) {
	e.t.Helper()
	_, raw, err := e.cli.ContainerInspectWithRaw(e.t.Context(), containerID, false)
	if err != nil {
		e.t.Fatalf("inspect %s: %v", containerID, err)
	}
	if !strings.Contains(string(raw), containerID) {
		e.t.Fatalf("inspect of %s does not name it", containerID)
	}
	for _, v := range values {
		if strings.Contains(string(raw), v) != want {
			e.t.Errorf("docker inspect of %s holds %s: %v, want %v", containerID, fmt.Sprintf("%.12s…", v), !want, want)
		}
	}
}

package api

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envvault/envvault/vault"
)

// TestScopesEveryOperation walks every operation of /v1/openapi.json with
// a read token and a tasks token: each operation the scope does not allow
// answers 403 forbidden naming the scope, before anything is read or
// done; each read it allows answers 200, each write it allows is not
// refused for its scope. The expectations are written here, not read
// from the server's table, so that a route put in the wrong row fails.
// A full token is refused nowhere but the four task-credential operations.
func TestScopesEveryOperation(t *testing.T) {
	e := newTaskEnv(t, taskEnvOptions{})
	_, full := e.newUser("alice")
	pid := e.mustCreate("/v1/profiles", full, `{"name":"p","image":"img"}`)
	sid := e.mustCreate("/v1/secrets", full, `{"name":"API_KEY","value":"value-one"}`)
	r := e.call("POST", "/v1/tasks", full, `{"profile_id":"`+pid+`","prompt":"p"}`)
	want(t, r, http.StatusAccepted, "")
	tid, _ := r.json(t)["id"].(string)
	read := e.newToken(full, "reader", "read")
	tasks := e.newToken(full, "runner", "tasks")
	spare := e.newToken(full, "spare", "read")
	ids := map[string]string{"secrets": sid, "profiles": pid, "tasks": tid, "tokens": spare.ID}
	alice, _, err := e.svc.Authenticate(t.Context(), full)
	if err != nil {
		t.Fatal(err)
	}
	req, err := e.svc.OpenSecretRequest(t.Context(), alice, pid, tid, []vault.RequiredSecret{{Name: "WANTED"}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ids["secret-requests"] = req.ID
	ids["task"] = req.ID

	// /v1/task/... is for task credentials only (TestTaskCredentialScopes).
	taskAPI := func(path string) bool { return strings.HasPrefix(path, "/v1/task/") }
	allowed := map[string]func(method, path string) bool{
		"read": func(method, path string) bool { return method == "GET" && !taskAPI(path) },
		"tasks": func(method, path string) bool {
			return strings.HasPrefix(path, "/v1/tasks") || (method == "GET" && strings.HasPrefix(path, "/v1/profiles"))
		},
		"full": func(_, path string) bool { return !taskAPI(path) },
	}
	type op struct{ method, path string }
	var ops []op
	for path, item := range e.doc.Paths.Map() {
		if !strings.HasPrefix(path, "/v1/") || path == "/v1/openapi.json" {
			continue
		}
		for method := range item.Operations() {
			ops = append(ops, op{method, path})
		}
	}
	// Writes last, deletes at the very end, so the full walk's deletes
	// do not take the objects the other walks use.
	rank := map[string]int{"GET": 0, "POST": 1, "PATCH": 2, "DELETE": 3}
	slices.SortFunc(ops, func(a, b op) int {
		if rank[a.method] != rank[b.method] {
			return rank[a.method] - rank[b.method]
		}
		return strings.Compare(a.path, b.path)
	})
	if len(ops) < 20 {
		t.Fatalf("the document has %d /v1 operations: the walk would prove little", len(ops))
	}
	refused := map[string]int{}
	for _, scope := range []string{"read", "tasks", "full"} {
		tok := map[string]string{"read": read.Token, "tasks": tasks.Token, "full": full}[scope]
		for _, o := range ops {
			kind := strings.Split(o.path, "/")[2]
			path := strings.ReplaceAll(o.path, "{id}", ids[kind])
			body := ""
			if o.method == "POST" || o.method == "PATCH" {
				body = "{}"
			}
			r := e.call(o.method, path, tok, body)
			ok := allowed[scope](o.method, o.path)
			switch {
			case !ok:
				want(t, r, http.StatusForbidden, "")
				code, _, msg := r.errorOf(t)
				if code != "forbidden" || !strings.Contains(msg, "scope "+scope) || !strings.Contains(msg, "needs scope") {
					t.Errorf("%s %s with a %s token: %s", o.method, o.path, scope, r.body)
				}
				refused[scope]++
			case o.method == "GET":
				if r.status != http.StatusOK {
					t.Errorf("%s %s with a %s token: %s, want 200", o.method, o.path, scope, r)
				}
			default:
				if r.status == http.StatusForbidden || r.status == http.StatusUnauthorized {
					t.Errorf("%s %s with a %s token: %s, want it let through", o.method, o.path, scope, r)
				}
			}
		}
	}
	if refused["read"] == 0 || refused["tasks"] == 0 || refused["full"] != 4 {
		t.Errorf("refused: %v", refused)
	}
	t.Logf("operations: %d; refused to read: %d, to tasks: %d", len(ops), refused["read"], refused["tasks"])
}

// TestScopeRefusalChangesNothing: a refused write leaves everything as it
// was (the scope is checked before the body is read).
func TestScopeRefusalChangesNothing(t *testing.T) {
	e := newTestEnv(t)
	_, full := e.newUser("alice")
	read := e.newToken(full, "reader", "read")
	want(t, e.call("POST", "/v1/secrets", read.Token, `{"name":"NEW","value":"value-one"}`), http.StatusForbidden, "")
	want(t, e.call("POST", "/v1/tokens", read.Token, `{"name":"escalate","scope":"full"}`), http.StatusForbidden, "")
	want(t, e.call("DELETE", "/v1/tokens/"+read.ID, read.Token, ""), http.StatusForbidden, "")
	r := e.call("GET", "/v1/secrets", full, "")
	want(t, r, http.StatusOK, "")
	var secrets struct{ Data []json.RawMessage }
	_ = json.Unmarshal(r.body, &secrets)
	if len(secrets.Data) != 0 {
		t.Errorf("a refused create made a secret: %s", r.body)
	}
	if l, _ := e.listTokens(full); len(l) != 2 {
		t.Errorf("refused token writes changed the tokens: %+v", l)
	}
}

// TestScopeTableCoversEveryRoute: every authenticated route the server
// serves has a row in routeScopes, so that none is refused to every
// scope by omission.
func TestScopeTableCoversEveryRoute(t *testing.T) {
	e := newTestEnv(t)
	n := 0
	for _, rt := range e.server.echo.Routes() {
		if !strings.HasPrefix(rt.Path, "/v1/") || rt.Path == "/v1/openapi.json" || strings.HasSuffix(rt.Path, "/*") || rt.Method == "echo_route_not_found" {
			continue
		}
		n++
		if _, ok := routeScopes[rt.Method+" "+rt.Path]; !ok {
			t.Errorf("route %s %s has no row in routeScopes", rt.Method, rt.Path)
		}
	}
	if n != len(routeScopes) {
		t.Errorf("%d routes, %d rows in routeScopes", n, len(routeScopes))
	}
}

package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/envvault/envvault/vault"
)

func TestHealth(t *testing.T) {
	e := newTestEnv(t)
	r := e.call("GET", "/healthz", "", "")
	want(t, r, 200, "")
	if string(r.body) != `{"status":"ok"}` {
		t.Errorf("healthz: %s", r.body)
	}
	want(t, e.call("GET", "/readyz", "", ""), 200, "")

	// With the store closed, /readyz says so and /healthz does not care.
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	want(t, e.call("GET", "/readyz", "", ""), http.StatusServiceUnavailable, "")
	want(t, e.call("GET", "/healthz", "", ""), 200, "")
}

func TestOpenAPIServed(t *testing.T) {
	e := newTestEnv(t)
	r := e.call("GET", "/v1/openapi.json", "", "")
	want(t, r, 200, "")
	if !bytes.Equal(r.body, openapiJSON) {
		t.Error("served document differs from the embedded one")
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	// Every route the server has is documented, and every documented
	// operation is served.
	documented := map[string]bool{}
	for path, item := range e.doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+echoPath(path)] = true
		}
	}
	served := map[string]bool{}
	for _, rt := range e.server.echo.Routes() {
		if strings.HasSuffix(rt.Name, "NotFoundHandler") || strings.HasSuffix(rt.Path, "/*") || rt.Method == echo.RouteNotFound {
			continue
		}
		served[rt.Method+" "+rt.Path] = true
	}
	for k := range served {
		if !documented[k] {
			t.Errorf("route %s is not in openapi.json", k)
		}
	}
	for k := range documented {
		if !served[k] {
			t.Errorf("openapi.json documents %s, which is not served", k)
		}
	}
}

func echoPath(p string) string {
	return strings.NewReplacer("{", ":", "}", "").Replace(p)
}

// TestSpecRefusesLeaks proves the response check has teeth: a secret with
// a value field, or an error of another shape, does not pass.
func TestSpecRefusesLeaks(t *testing.T) {
	doc, _ := mustSpec(t)
	var secret, errBody any
	_ = json.Unmarshal([]byte(`{"id":"sec_V1StGXR8_Z5jdHi6B-myT","name":"A","scope":"all","profile_ids":[],"description":"","version":1,
		"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","value":"leak"}`), &secret)
	if err := doc.Components.Schemas["Secret"].Value.VisitJSON(secret); err == nil {
		t.Error("a secret with a value field passes the Secret schema")
	}
	_ = json.Unmarshal([]byte(`{"message":"x"}`), &errBody)
	if err := doc.Components.Schemas["Error"].Value.VisitJSON(errBody); err == nil {
		t.Error("echo's default error shape passes the Error schema")
	}
}

// TestErrorStatuses reaches every status of the error table over HTTP.
func TestErrorStatuses(t *testing.T) {
	panicked := errors.New("boom")
	e := newTestEnv(t, envOptions{bodyLimit: 1024, setup: func(s *Server) {
		s.echo.GET("/test/panic", func(echo.Context) error { panic(panicked) })
		s.echo.POST("/test/panic", func(c echo.Context) error {
			var req createSecretRequest
			_ = decodeJSON(c, s.bodyLimit, &req)
			panic(panicked)
		})
		s.echo.GET("/test/error", func(echo.Context) error { return errors.New("database password is hunter2") })
		s.echo.GET("/test/vault-internal", func(echo.Context) error { return vault.Errorf(vault.EINTERNAL, "detail for logs only") })
	}})
	_, tok := e.newUser("alice")

	t.Run("401", func(t *testing.T) {
		e.t = t
		uid, realTok := e.newUser("carol")
		tokenID, _, _ := strings.Cut(realTok, ".")
		for name, set := range map[string]func(h http.Header){
			"no header":        func(http.Header) {},
			"empty":            func(h http.Header) { h.Set("Authorization", "") },
			"basic":            func(h http.Header) { h.Set("Authorization", "Basic YTpi") },
			"bearer no token":  func(h http.Header) { h.Set("Authorization", "Bearer ") },
			"token alone":      func(h http.Header) { h.Set("Authorization", realTok) },
			"garbage token":    func(h http.Header) { h.Set("Authorization", "Bearer garbage") },
			"wrong secret":     func(h http.Header) { h.Set("Authorization", "Bearer "+tokenID+".AAAA") },
			"unknown token id": func(h http.Header) { h.Set("Authorization", "Bearer "+vault.NewID(vault.PrefixToken)+".AAAA") },
			"user id as token": func(h http.Header) { h.Set("Authorization", "Bearer "+uid) },
			"two headers": func(h http.Header) {
				h.Add("Authorization", "Bearer "+realTok)
				h.Add("Authorization", "Bearer "+realTok)
			},
			"token with suffix": func(h http.Header) { h.Set("Authorization", "Bearer "+realTok+"x") },
		} {
			for _, path := range []string{"/v1/secrets", "/v1/profiles", "/v1/secrets/sec_x", "/v1/profiles/prof_x/env"} {
				req := e.request("GET", path, "", "")
				set(req.Header)
				r := e.send(req)
				if r.status != 401 {
					t.Errorf("%s on %s: %s", name, path, r)
					continue
				}
				if _, _, msg := r.errorOf(t); msg != "missing or invalid API token" {
					t.Errorf("%s: message %q", name, msg)
				}
				if r.header.Get("WWW-Authenticate") == "" {
					t.Errorf("%s: 401 without WWW-Authenticate", name)
				}
			}
		}
		for _, scheme := range []string{"Bearer", "bearer", "BEARER"} {
			req := e.request("GET", "/v1/secrets", "", "")
			req.Header.Set("Authorization", scheme+" "+realTok)
			want(t, e.send(req), 200, "")
		}
		// A write without a token changes nothing.
		want(t, e.call("POST", "/v1/secrets", "", `{"name":"A","value":"v1234"}`), 401, "")
		want(t, e.call("POST", "/v1/secrets", "tok_x.y", `{"name":"A","value":"v1234"}`), 401, "")
		r := e.call("GET", "/v1/secrets", realTok, "")
		if n := len(r.json(t)["data"].([]any)); n != 0 {
			t.Errorf("unauthenticated POST created %d secrets", n)
		}
	})

	// Each documented 401, 413 and 415 of every operation, reached.
	t.Run("every operation", func(t *testing.T) {
		e.t = t
		big := `{"name":"` + strings.Repeat("x", 2000) + `"}`
		for path, item := range e.doc.Paths.Map() {
			path = strings.ReplaceAll(path, "{id}", "x")
			if strings.HasPrefix(path, "/v1/task/") {
				continue // a task credential's: TestAskSecretsRules reaches them
			}
			for method, op := range item.Operations() {
				if op.Responses.Status(401) != nil {
					r := e.call(method, path, "", `{}`)
					want(t, r, 401, "")
				}
				if op.Responses.Status(413) != nil {
					want(t, e.call(method, path, tok, big), 413, "")
				}
				if op.Responses.Status(415) != nil {
					req := e.request(method, path, tok, `{}`)
					req.Header.Set("Content-Type", "text/plain")
					want(t, e.send(req), 415, "")
				}
			}
		}
	})

	t.Run("404 and 405 routes", func(t *testing.T) {
		e.t = t
		for _, path := range []string{"/", "/nope", "/v1/secrets/sec_x/nope", "/v1/nope", "/v2/secrets", "/v1/secrets/", "/V1/SECRETS"} {
			r := e.call("GET", path, tok, "")
			want(t, r, 404, "")
		}
		for _, c := range []struct{ method, path string }{
			{"PUT", "/v1/secrets"}, {"DELETE", "/v1/secrets"}, {"PUT", "/v1/secrets/sec_x"}, {"POST", "/v1/secrets/sec_x"},
			{"POST", "/v1/profiles/prof_x/env"}, {"POST", "/healthz"}, {"DELETE", "/readyz"}, {"PATCH", "/v1/profiles"},
		} {
			r := e.call(c.method, c.path, tok, "")
			want(t, r, 405, "")
			if r.header.Get("Allow") == "" {
				t.Errorf("%s %s: 405 without Allow", c.method, c.path)
			}
		}
	})

	t.Run("OPTIONS", func(t *testing.T) {
		e.t = t
		req := e.request("OPTIONS", "/v1/secrets/x", "", "")
		res, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if res.StatusCode != 204 || res.Header.Get("Allow") == "" {
			t.Errorf("OPTIONS: %d, Allow %q", res.StatusCode, res.Header.Get("Allow"))
		}
	})

	t.Run("413", func(t *testing.T) {
		e.t = t
		big := `{"name":"BIG","value":"` + strings.Repeat("x", 2000) + `"}`
		want(t, e.call("POST", "/v1/secrets", tok, big), 413, "")
		// Without Content-Length the limit is found while reading.
		req := e.request("POST", "/v1/secrets", tok, "")
		req.Header.Set("Content-Type", "application/json")
		req.Body = io.NopCloser(strings.NewReader(big))
		req.ContentLength = -1
		want(t, e.send(req), 413, "")
		want(t, e.call("PATCH", "/v1/profiles/prof_x", tok, `{"name":"`+strings.Repeat("x", 2000)+`"}`), 413, "")
		want(t, e.call("POST", "/v1/secrets", tok, `{"name":"SMALL","value":"`+strings.Repeat("x", 900)+`"}`), 201, "")
	})

	t.Run("415", func(t *testing.T) {
		e.t = t
		for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json; charset=latin1", "application/jsonx"} {
			req := e.request("POST", "/v1/secrets", tok, `{"name":"CT","value":"v1234"}`)
			if ct == "" {
				req.Header.Del("Content-Type")
			} else {
				req.Header.Set("Content-Type", ct)
			}
			want(t, e.send(req), 415, "")
		}
		req := e.request("PATCH", "/v1/profiles/prof_x", tok, `{}`)
		req.Header.Set("Content-Type", "text/json")
		want(t, e.send(req), 415, "")
	})

	t.Run("400 and 422", func(t *testing.T) {
		e.t = t
		want(t, e.call("POST", "/v1/secrets", tok, `{"name":`), 400, "")
		want(t, e.call("POST", "/v1/secrets", tok, `{"name":"lower","value":"v1234"}`), 422, "name")
	})

	t.Run("500", func(t *testing.T) {
		e.t = t
		ids := map[string]bool{}
		for _, c := range []struct{ method, path, body string }{
			{"GET", "/test/panic", ""}, {"POST", "/test/panic", `{"name":"A","value":"PANIC-CANARY-9e1"}`},
			{"GET", "/test/error", ""}, {"GET", "/test/vault-internal", ""},
		} {
			r := e.call(c.method, c.path, "", c.body)
			if r.status != 500 {
				t.Fatalf("%s: %s", c.path, r)
			}
			if string(r.body) != `{"error":{"code":"internal","message":"internal error"}}` {
				t.Errorf("%s: body %s", c.path, r.body)
			}
			ids[r.header.Get("X-Request-Id")] = true
		}
		e.finish()
		logs := e.logs.String()
		for _, s := range []string{`"msg":"panic"`, "boom", `"stack":`, "hunter2", "detail for logs only"} {
			if !strings.Contains(logs, s) {
				t.Errorf("log lacks %q:\n%s", s, logs)
			}
		}
		if strings.Contains(logs, "PANIC-CANARY") {
			t.Error("the log holds the body of a request that panicked")
		}
		logged := map[string]bool{}
		for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("log line is not JSON: %s", line)
			}
			if m["level"] == "ERROR" {
				id, _ := m["request_id"].(string)
				if !ids[id] {
					t.Errorf("error logged without the request id of a 500: %s", line)
				}
				logged[id] = true
			}
		}
		if len(logged) != len(ids) {
			t.Errorf("%d 500s, error lines for %d of them", len(ids), len(logged))
		}
	})
}

// TestStrictJSONOverHTTP sends each kind of body the strict decoder must
// refuse, to every route that takes a body, and checks the status and that
// nothing changed.
func TestStrictJSONOverHTTP(t *testing.T) {
	e := newTestEnv(t)
	_, tok := e.newUser("alice")
	pid := e.mustCreate("/v1/profiles", tok, `{"name":"p","image":"img","env":{"A":"1"}}`)
	sid := e.mustCreate("/v1/secrets", tok, `{"name":"KEEP","value":"v1234","description":"d"}`)
	snapshot := func() string {
		t.Helper()
		var b strings.Builder
		for _, p := range []string{"/v1/secrets", "/v1/profiles"} {
			r := e.call("GET", p, tok, "")
			b.Write(r.body)
		}
		return b.String()
	}
	before := snapshot()

	bodies := []struct {
		name   string
		body   string
		status int
		field  string
	}{
		{"duplicate key", `{"name":"X","name":"Y","value":"v1234","image":"i"}`, 400, "name"},
		{"duplicate key, second upper-case", `{"name":"X","NAME":"Y","value":"v1234","image":"i"}`, 422, "NAME"},
		{"upper-case key only", `{"NAME":"X","value":"v1234","image":"i"}`, 422, "NAME"},
		{"title-case key", `{"Name":"X","value":"v1234","image":"i"}`, 422, "Name"},
		{"unknown field", `{"name":"X","value":"v1234","image":"i","extra":true}`, 422, "extra"},
		{"trailing object", `{"name":"X","value":"v1234","image":"i"} {}`, 400, ""},
		{"trailing text", `{"name":"X","value":"v1234","image":"i"}x`, 400, ""},
		{"invalid UTF-8", "{\"name\":\"X\xff\",\"value\":\"v1234\",\"image\":\"i\"}", 400, ""},
		{"lone surrogate", `{"name":"X","value":"\udead","image":"i"}`, 400, ""},
		{"array", `[{"name":"X"}]`, 400, ""},
		{"truncated", `{"name":"X"`, 400, ""},
		{"number for name", `{"name":7,"value":"v1234","image":"i"}`, 422, "name"},
		{"object for name", `{"name":{"first":"X"},"value":"v1234","image":"i"}`, 422, "name"},
		{"null name", `{"name":null,"value":"v1234","image":"i"}`, 422, "name"},
	}
	routes := []struct{ method, path string }{
		{"POST", "/v1/secrets"}, {"PATCH", "/v1/secrets/" + sid}, {"POST", "/v1/profiles"}, {"PATCH", "/v1/profiles/" + pid},
	}
	for _, rt := range routes {
		for _, b := range bodies {
			body := b.body
			if strings.HasSuffix(rt.path, sid) || strings.HasSuffix(rt.path, pid) {
				// PATCH bodies: value/image are known fields for one of the
				// two resources only; drop them so only the case at hand is wrong.
				body = strings.NewReplacer(`,"value":"v1234"`, "", `,"image":"i"`, "").Replace(body)
			} else if strings.Contains(rt.path, "profiles") {
				body = strings.Replace(body, `,"value":"v1234"`, "", 1)
			} else {
				body = strings.Replace(body, `,"image":"i"`, "", 1)
			}
			r := e.call(rt.method, rt.path, tok, body)
			if r.status != b.status {
				t.Errorf("%s %s %s: got %s, want %d", rt.method, rt.path, b.name, r, b.status)
				continue
			}
			if _, f, _ := r.errorOf(t); f != b.field {
				t.Errorf("%s %s %s: field %q, want %q", rt.method, rt.path, b.name, f, b.field)
			}
		}
	}
	// Profile-specific shapes.
	for _, b := range []struct{ body, field string }{
		{`{"command":"ls"}`, "command"}, {`{"command":[["ls"]]}`, "command"}, {`{"command":[1]}`, "command"},
		{`{"setup_commands":{"a":"b"}}`, "setup_commands"}, {`{"env":["A=1"]}`, "env"}, {`{"env":{"A":{"B":"1"}}}`, "env"},
		{`{"env":{"A":1}}`, "env"}, {`{"env":{"A":null}}`, "env"}, {`{"env":{"A":["1"]}}`, "env"},
	} {
		want(t, e.call("PATCH", "/v1/profiles/"+pid, tok, b.body), 422, b.field)
		want(t, e.call("POST", "/v1/profiles", tok, `{"name":"q","image":"i",`+b.body[1:]), 422, b.field)
	}
	want(t, e.call("PATCH", "/v1/profiles/"+pid, tok, `{"env":{"A":"1","A":"2"}}`), 400, "env")
	want(t, e.call("PATCH", "/v1/secrets/"+sid, tok, `{"profile_ids":[["`+pid+`"]]}`), 422, "profile_ids")
	want(t, e.call("PATCH", "/v1/secrets/"+sid, tok, `{"profile_ids":{"id":"`+pid+`"}}`), 422, "profile_ids")

	if after := snapshot(); after != before {
		t.Errorf("refused requests changed state:\n%s\n%s", before, after)
	}
}

// TestGarbageNeverFails sends garbage bodies, paths and headers and
// checks that none gets a 5xx (send fails the test on any).
func TestGarbageNeverFails(t *testing.T) {
	e := newTestEnv(t)
	_, tok := e.newUser("alice")
	pid := e.mustCreate("/v1/profiles", tok, `{"name":"p","image":"img"}`)
	sid := e.mustCreate("/v1/secrets", tok, `{"name":"S","value":"v1234"}`)
	valid := []string{
		`{"name":"A","value":"v1234","scope":"agents","profile_ids":["` + pid + `"],"description":"d"}`,
		`{"name":"p2","image":"i","command":["a"],"setup_commands":["b"],"env":{"A":"1"}}`,
	}
	garbage := []string{
		"\x00", "\xff\xfe", "{", "}", "[]", "[", `""`, "0", "-0", "1e999", "true", "null", "{}}", "{{}}", `{"":""}`, `{"":null}`,
		`{"name":"\u0000"}`, `{"name":"` + strings.Repeat(`\u00e9`, 300) + `"}`, `{"value":"` + strings.Repeat(`\\`, 1000) + `"}`,
		`{"name":1e999}`, `{"name":-}`, `{"name":"A","value":"v1234","scope":"agents","profile_ids":[` + strings.Repeat(`"x",`, 1200) + `"x"]}`,
		`{"profile_ids":[` + strings.Repeat(`"`+pid+`",`, 10) + `"` + pid + `"]}`, `{"env":{"` + strings.Repeat("A", 300) + `":"v"}}`,
		`{"command":[` + strings.Repeat(`"a",`, 300) + `"a"]}`, `{"scope":"agents","profile_ids":["../../etc/passwd"]}`,
		strings.Repeat("[", 100000), strings.Repeat(`{"a":`, 10000), "\ufeff{}", `{"name":"A"}` + "\x00",
		`{"description":"` + strings.Repeat("é", 600) + `"}`, `{"name":"A","value":"v1234","description":"\ud834\udd1e"}`,
	}
	// Mutations of valid bodies: every cut and one flipped byte at a few places.
	for _, v := range valid {
		for i := 0; i < len(v); i += 7 {
			garbage = append(garbage, v[:i], v[:i]+"\x80"+v[i:], v[:i]+`"`+v[i:], v[:i]+"null"+v[i+1:])
		}
	}
	routes := []struct{ method, path string }{
		{"POST", "/v1/secrets"}, {"PATCH", "/v1/secrets/" + sid}, {"POST", "/v1/profiles"}, {"PATCH", "/v1/profiles/" + pid},
	}
	for _, rt := range routes {
		for _, g := range garbage {
			r := e.call(rt.method, rt.path, tok, g)
			if r.status >= 500 {
				t.Errorf("%s %s %q: %s", rt.method, rt.path, g, r)
			}
		}
	}
	for _, path := range []string{
		"/v1/secrets/" + strings.Repeat("x", 4000), "/v1/secrets/%00", "/v1/secrets/%ff%fe", "/v1/secrets/..%2F..%2Fetc",
		"/v1/profiles/%27%20OR%201=1--/env", "/v1/secrets?limit=%ff", "/v1/secrets?q=%ff%00", "/v1/secrets?cursor=%00%00",
		"/v1/profiles?cursor=" + strings.Repeat("A", 3000), "/v1/secrets?q=%25", "/v1/secrets?q=_",
	} {
		for _, m := range []string{"GET", "DELETE"} {
			req, err := http.NewRequestWithContext(context.Background(), m, e.srv.URL+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+tok)
			if r := e.send(req); r.status >= 500 {
				t.Errorf("%s %s: %s", m, path, r)
			}
		}
	}
	// A body whose chunked encoding breaks off is the client's fault too.
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/secrets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"+
		"Transfer-Encoding: chunked\r\n\r\n5\r\n{\"nam\r\nzz\r\n", tok)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 400 || !strings.Contains(string(body), "could not be read") {
		t.Errorf("broken chunked body: %d %s", res.StatusCode, body)
	}

	// Still whole.
	want(t, e.call("GET", "/v1/secrets/"+sid, tok, ""), 200, "")
}

func TestRequestIDAndLog(t *testing.T) {
	e := newTestEnv(t)
	uid, tok := e.newUser("alice")

	req := e.request("GET", "/v1/secrets", tok, "")
	req.Header.Set("X-Request-Id", "client-id-1")
	r := e.send(req)
	if got := r.header.Get("X-Request-Id"); got != "client-id-1" {
		t.Errorf("request id %q, want the client's", got)
	}
	for _, bad := range []string{strings.Repeat("a", 65), "has space", "quote\"", "semi;colon", "ünïcode", "a,b"} {
		req := e.request("GET", "/healthz", "", "")
		req.Header["X-Request-Id"] = []string{bad}
		r := e.send(req)
		if got := r.header.Get("X-Request-Id"); got == bad || got == "" {
			t.Errorf("bad request id %q answered with %q", bad, got)
		}
	}
	r = e.call("GET", "/v1/secrets", "", "")
	unauthID := r.header.Get("X-Request-Id")
	r = e.call("POST", "/v1/secrets", tok, `{"name":"LOGGED","value":"v1234"}`)
	createdID := r.header.Get("X-Request-Id")
	r = e.call("POST", "/v1/secrets", tok, `{"name":"lower","value":"v1234"}`)
	refusedID := r.header.Get("X-Request-Id")
	e.finish()

	lines := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(e.logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %s", line)
		}
		if m["msg"] == "request" {
			if _, dup := lines[m["request_id"].(string)]; dup {
				t.Errorf("two request lines for one request: %s", line)
			}
			lines[m["request_id"].(string)] = m
		} else {
			// Nothing here is unexpected: no error lines, no double handling.
			t.Errorf("unexpected log line: %s", line)
		}
	}
	l, ok := lines["client-id-1"]
	if !ok {
		t.Fatalf("no request line with the client's id:\n%s", e.logs)
	}
	for k, v := range map[string]any{"method": "GET", "path": "/v1/secrets", "route": "/v1/secrets", "status": 200.0, "user_id": uid} {
		if l[k] != v {
			t.Errorf("log %s = %v, want %v", k, l[k], v)
		}
	}
	if _, ok := l["latency"]; !ok {
		t.Error("log line has no latency")
	}
	if l := lines[unauthID]; l == nil || l["status"] != 401.0 || l["user_id"] != nil {
		t.Errorf("unauthenticated request line: %v", l)
	}
	if l := lines[refusedID]; l == nil || l["status"] != 422.0 {
		t.Errorf("refused create line: %v", l)
	}
	if l := lines[createdID]; l == nil || l["status"] != 201.0 {
		t.Errorf("create line: %v", l)
	}
	tokenSecret := tok[strings.IndexByte(tok, '.')+1:]
	if strings.Contains(e.logs.String(), tokenSecret) || strings.Contains(e.logs.String(), "Bearer") {
		t.Errorf("the log holds the token:\n%s", e.logs)
	}
}

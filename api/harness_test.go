package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/envvault/envvault/internal/testenv"
	"github.com/envvault/envvault/internal/testvault"
	"github.com/envvault/envvault/sqlite"
	"github.com/envvault/envvault/vault"
)

// spec is the embedded OpenAPI document, loaded and validated once.
var spec = sync.OnceValues(func() (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(openapiJSON)
	if err != nil {
		return nil, fmt.Errorf("load openapi.json: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi.json is not valid OpenAPI 3: %w", err)
	}
	return doc, nil
})

func mustSpec(t *testing.T) (*openapi3.T, routers.Router) {
	t.Helper()
	doc, err := spec()
	if err != nil {
		t.Fatal(err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return doc, router
}

// seenResponses records "METHOD /path/{id} status" of every response a
// test got on a documented operation; TestMain checks that every
// documented response was seen.
var seenResponses sync.Map

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 && flag.Lookup("test.run").Value.String() == "" && !testing.Short() {
		if missing := unseenResponses(); len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: documented responses no test reached:\n  %s\n", strings.Join(missing, "\n  "))
			code = 1
		}
	}
	os.Exit(code)
}

// unseenResponses lists the documented responses no test got, except 500:
// no input reaches it on a real operation (TestErrorStatuses reaches it on
// test routes).
func unseenResponses() []string {
	doc, err := spec()
	if err != nil {
		return []string{err.Error()}
	}
	var missing []string
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for status := range op.Responses.Map() {
				key := method + " " + path + " " + status
				if _, ok := seenResponses.Load(key); !ok && status != "500" {
					missing = append(missing, key)
				}
			}
		}
	}
	slices.Sort(missing)
	return missing
}

// testEnv is a real Server over a real SQLite store behind real HTTP. Every
// response it gets is checked against the OpenAPI document, and kept in a
// transcript the canary checks read.
type testEnv struct {
	t      *testing.T
	srv    *httptest.Server
	server *Server
	svc    *vault.Service
	store  *sqlite.DB
	dbPath string
	logs   *testenv.SyncBuffer
	doc    *openapi3.T
	router routers.Router

	mu         sync.Mutex
	transcript bytes.Buffer // every response's status line, headers and body
}

type envOptions struct {
	maxSecrets int
	bodyLimit  int64
	setup      func(*Server)    // runs before the HTTP server starts
	now        func() time.Time // the service's clock; time.Now if nil
	// writeRate and writeBurst are Config.WritesPerSecond and WriteBurst.
	writeRate  float64
	writeBurst int
	// limits turns on the default limits of failed authentication and of
	// writes (vault/abuse.go, limits.go), off for the tests of other
	// things, which send many requests at once; a writeRate set here is
	// used either way.
	limits bool
}

func newTestEnv(t *testing.T, opts ...envOptions) *testEnv {
	t.Helper()
	var o envOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	dbPath := filepath.Join(t.TempDir(), "v.db")
	db := testvault.MustSQLite(t, dbPath)
	svc := testvault.MustService(t, db, vault.Options{MaxSecrets: o.maxSecrets, Now: o.now, AuthLimits: vault.AuthLimits{Off: !o.limits}, OAuth2AllowNetworks: testenv.Loopback})
	if o.writeRate == 0 && !o.limits {
		o.writeRate = -1
	}
	logs := &testenv.SyncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := NewServer(Config{Service: svc, Logger: logger, BodyLimit: o.bodyLimit, WritesPerSecond: o.writeRate, WriteBurst: o.writeBurst})
	if o.setup != nil {
		o.setup(s)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	doc, router := mustSpec(t)
	return &testEnv{t: t, srv: srv, server: s, svc: svc, store: db, dbPath: dbPath, logs: logs, doc: doc, router: router}
}

// newUser creates a user and returns its id and token.
func (e *testEnv) newUser(name string) (string, string) {
	e.t.Helper()
	u, token, err := e.svc.CreateUser(context.Background(), name)
	if err != nil {
		e.t.Fatalf("create user: %v", err)
	}
	return u.ID, token
}

// finish waits for every request in flight, so the log holds every line.
func (e *testEnv) finish() { e.srv.Close() }

type response struct {
	status int
	header http.Header
	body   []byte
	// specErr is why the OpenAPI document refuses the request, nil if it
	// accepts it or no route of the document matches.
	specErr error
}

func (r *response) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

// json decodes the body into a generic value.
func (r *response) json(t *testing.T) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("response body is not a JSON object: %v: %s", err, r.body)
	}
	return v
}

// errorOf returns code, field and message of an error response.
func (r *response) errorOf(t *testing.T) (code, field, msg string) {
	t.Helper()
	e, ok := r.json(t)["error"].(map[string]any)
	if !ok {
		t.Fatalf("not an error body: %s", r.body)
	}
	code, _ = e["code"].(string)
	field, _ = e["field"].(string)
	msg, _ = e["message"].(string)
	return code, field, msg
}

// request builds a request; a non-empty body is sent as application/json.
func (e *testEnv) request(method, path, token, body string) *http.Request {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// call sends method path with token and body (none if "").
func (e *testEnv) call(method, path, token, body string) *response {
	e.t.Helper()
	return e.send(e.request(method, path, token, body))
}

// send sends req and checks the response against the OpenAPI document:
// status, headers and body for a documented route, the error shape for
// any other. A 2xx for a request the document refuses is an error too.
func (e *testEnv) send(req *http.Request) *response {
	t := e.t
	t.Helper()
	var reqBody []byte
	if req.Body != nil {
		var err error
		if reqBody, err = io.ReadAll(req.Body); err != nil {
			t.Fatal(err)
		}
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	body, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	r := &response{status: res.StatusCode, header: res.Header, body: body}

	e.mu.Lock()
	fmt.Fprintf(&e.transcript, "%s %s -> %d\n", req.Method, req.URL, res.StatusCode)
	_ = res.Header.Write(&e.transcript)
	e.transcript.Write(body)
	e.transcript.WriteString("\n\n")
	e.mu.Unlock()

	if res.Header.Get("X-Request-Id") == "" {
		t.Errorf("%s %s: no X-Request-Id header", req.Method, req.URL.Path)
	}
	if r.status >= 500 && r.status != http.StatusServiceUnavailable && !strings.HasPrefix(req.URL.Path, "/test/") {
		t.Errorf("%s %s: %s", req.Method, req.URL.Path, r)
	}

	ctx := context.Background()
	vreq := req.Clone(ctx)
	vreq.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, params, err := e.router.FindRoute(vreq)
	if err == nil && req.URL.Path != "/" && strings.HasSuffix(req.URL.Path, "/") {
		// The document's router ignores a trailing slash; the server does not.
		err = errors.New("trailing slash")
	}
	for _, v := range params {
		if v == "" {
			// Nor does it match {id} only with something.
			err = errors.New("empty path parameter")
		}
	}
	if err != nil {
		// No documented operation: only an error may answer.
		if r.status < 400 {
			t.Errorf("%s %s: %d for a route the OpenAPI document lacks", req.Method, req.URL.Path, r.status)
		}
		e.checkErrorShape(req, r)
		return r
	}
	in := &openapi3filter.RequestValidationInput{
		Request: vreq, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
	}
	seenResponses.Store(route.Method+" "+route.Path+" "+fmt.Sprint(r.status), true)
	r.specErr = openapi3filter.ValidateRequest(ctx, in)
	if r.specErr != nil && r.status < 300 {
		t.Errorf("%s %s %s: server answered %d to a request the OpenAPI document refuses: %v", req.Method, req.URL.Path, reqBody, r.status, r.specErr)
	}
	in.Request = req.Clone(ctx) // the document validated vreq's body
	err = openapi3filter.ValidateResponse(ctx, &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 r.status,
		Header:                 res.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	})
	if err != nil {
		t.Errorf("%s %s: response does not match the OpenAPI document: %v\n%s", req.Method, req.URL.Path, err, r)
	}
	if r.status >= 400 {
		e.checkErrorShape(req, r)
	}
	return r
}

// checkErrorShape checks a response against the document's Error schema
// and that its code is the one of its status.
func (e *testEnv) checkErrorShape(req *http.Request, r *response) {
	t := e.t
	t.Helper()
	if req.Method == http.MethodHead {
		return
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: error Content-Type %q", req.Method, req.URL.Path, ct)
	}
	var v any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Errorf("%s %s: error body is not JSON: %s", req.Method, req.URL.Path, r.body)
		return
	}
	if err := e.doc.Components.Schemas["Error"].Value.VisitJSON(v); err != nil {
		t.Errorf("%s %s: error body does not match the Error schema: %v: %s", req.Method, req.URL.Path, err, r.body)
	}
	code, _, _ := r.errorOf(t)
	if want := codeOfStatus[r.status]; code != want {
		t.Errorf("%s %s: status %d with code %q, want %q", req.Method, req.URL.Path, r.status, code, want)
	}
}

// codeOfStatus is the one error code each status carries.
var codeOfStatus = map[int]string{
	400: codeMalformedJSON, 401: vault.EUNAUTHORIZED, 403: vault.EFORBIDDEN, 404: vault.ENOTFOUND, 405: codeMethodNotAllowed,
	409: vault.ECONFLICT, 413: codeBodyTooLarge, 415: codeUnsupportedMediaType, 422: vault.EINVALID,
	429: vault.ELIMIT, 500: vault.EINTERNAL, 503: codeUnavailable,
}

// want fails unless r has the status and, for an error, the code of that
// status and the field (when field is not "").
func want(t *testing.T, r *response, status int, field string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("got %s, want %d", r, status)
	}
	if status >= 400 && field != "" {
		if _, f, _ := r.errorOf(t); f != field {
			t.Fatalf("got field %q, want %q: %s", f, field, r.body)
		}
	}
}

// mustCreate posts body to path and returns the created object's id.
func (e *testEnv) mustCreate(path, token, body string) string {
	e.t.Helper()
	r := e.call("POST", path, token, body)
	want(e.t, r, http.StatusCreated, "")
	id, _ := r.json(e.t)["id"].(string)
	if loc := r.header.Get("Location"); loc != path+"/"+id {
		e.t.Errorf("Location %q, want %q", loc, path+"/"+id)
	}
	return id
}

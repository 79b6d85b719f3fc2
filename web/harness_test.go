package web_test

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envvault/envvault/api"
	"github.com/envvault/envvault/internal/testenv"
	"github.com/envvault/envvault/internal/testvault"
	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/orchestrator/dockerbackend"
	"github.com/envvault/envvault/runner"
	"github.com/envvault/envvault/seal"
	"github.com/envvault/envvault/storetest"
	"github.com/envvault/envvault/vault"
	"github.com/envvault/envvault/web"
)

// stack is envvault as cmd/envvault wires it: the API at /v1, /healthz
// and /readyz, the dashboard at /, over a real SQLite file, served over
// real HTTP on 127.0.0.1. Its orchestrator has no runner: tasks stay
// queued, which is enough for the pages.
type stack struct {
	URL    string
	srv    *httptest.Server
	svc    *vault.Service
	store  storetest.Store
	dbPath string
	orch   *orchestrator.Orchestrator
	logs   *testenv.SyncBuffer
	keys   *seal.Keyring
	userID string
	token  string
}

type stackOptions struct {
	// store is the stack's store; nil for a fresh SQLite file.
	store storetest.Store
	// keys is the stack's keyring; nil for a fresh one. Two stacks on one
	// store need the same.
	keys    *seal.Keyring
	noTasks bool
	names   vault.NamePolicy // the operator's locked and allowed names
	// runner runs the stack's tasks: with one, a worker runs for the
	// test; without, tasks stay queued.
	runner *runner.Runner
	secure bool
	tls    bool
}

func newStack(t testing.TB, opts ...stackOptions) *stack {
	t.Helper()
	var o stackOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	ctx := context.Background()
	s := &stack{logs: &testenv.SyncBuffer{}, store: o.store}
	if s.store == nil {
		s.dbPath = filepath.Join(t.TempDir(), "envvault.db")
		s.store = testvault.MustSQLite(t, s.dbPath)
	}
	store := s.store
	keys := o.keys
	if keys == nil {
		keys = testvault.MustKeyring(t)
	}
	s.keys = keys
	s.svc = vault.NewService(store, keys, vault.Options{Names: o.names, OAuth2AllowNetworks: testenv.Loopback})
	if err := s.svc.CheckKeys(ctx); err != nil {
		t.Fatal(err)
	}
	u, token, err := s.svc.CreateUser(ctx, "dev")
	if err != nil {
		t.Fatal(err)
	}
	s.userID, s.token = u.ID, token

	logger := slog.New(slog.NewTextHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if !o.noTasks {
		var backend orchestrator.Backend // a nil *dockerbackend.Backend would be a non-nil Backend
		if o.runner != nil {
			backend = dockerbackend.New(o.runner)
		}
		s.orch = orchestrator.New(orchestrator.Config{Vault: s.svc, Store: store, Logger: logger,
			Runner: backend, Worker: "web-test", Poll: 50 * time.Millisecond})
	}
	if o.runner != nil && s.orch != nil {
		runCtx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.orch.Run(runCtx) }()
		t.Cleanup(func() {
			stop()
			if err := <-done; err != nil && runCtx.Err() == nil {
				t.Errorf("worker: %v", err)
			}
		})
	}
	apiHandler := api.NewServer(api.Config{Service: s.svc, Logger: logger, Orchestrator: s.orch}).Handler()
	mux := http.NewServeMux()
	for _, p := range []string{"/v1", "/v1/", "/healthz", "/readyz"} {
		mux.Handle(p, apiHandler)
	}
	mux.Handle("/", web.New(web.Config{Vault: s.svc, Keys: keys, Orchestrator: s.orch, Logger: logger, Secure: o.secure}))
	if o.tls {
		s.srv = httptest.NewTLSServer(mux)
	} else {
		s.srv = httptest.NewServer(mux)
	}
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL
	return s
}

// deleteToken removes an API token row, as an operator revoking it would.
func (s *stack) deleteToken(t testing.TB, tokenID string) {
	t.Helper()
	db, err := sql.Open("sqlite", s.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DELETE FROM tokens WHERE id = ?`, tokenID); err != nil {
		t.Fatal(err)
	}
}

func (s *stack) mustProfile(t testing.TB, name string) *vault.Profile {
	t.Helper()
	p, err := s.svc.CreateProfile(context.Background(), s.userID, vault.ProfileInput{Name: name, Image: "busybox:latest"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// client is a browser without JavaScript: cookies, no redirects followed,
// and every response body kept for the canary checks.
type client struct {
	t    testing.TB
	s    *stack
	http *http.Client
	mu   sync.Mutex
	seen bytes.Buffer
}

func (s *stack) client(t testing.TB) *client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	hc := *s.srv.Client() // a copy: each client has its own jar
	hc.Jar = jar
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &client{t: t, s: s, http: &hc}
}

type response struct {
	*http.Response
	Body string
}

func (c *client) do(req *http.Request) *response {
	c.t.Helper()
	res, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.seen.Write(b)
	for k, v := range res.Header {
		c.seen.WriteString(k + ": " + strings.Join(v, ",") + "\n")
	}
	c.mu.Unlock()
	return &response{Response: res, Body: string(b)}
}

func (c *client) get(path string) *response {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.s.URL+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.do(req)
}

// post sends a form as a same-origin browser would (Origin and
// Sec-Fetch-Site set), unless headers say otherwise.
func (c *client) post(path string, form url.Values, headers ...string) *response {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.s.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", c.s.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	return c.do(req)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the CSRF token of the forms of a page.
func (c *client) csrf(path string) string {
	c.t.Helper()
	res := c.get(path)
	m := csrfRE.FindStringSubmatch(res.Body)
	if m == nil {
		c.t.Fatalf("GET %s: %d, no CSRF field in:\n%s", path, res.StatusCode, res.Body)
	}
	return m[1]
}

// signIn signs in with the stack's token.
func (c *client) signIn() {
	c.t.Helper()
	res := c.post("/login", url.Values{"csrf": {c.csrf("/login")}, "token": {c.s.token}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/settings/secrets" {
		c.t.Fatalf("sign in: %d %s\n%s", res.StatusCode, res.Header.Get("Location"), res.Body)
	}
}

func wantStatus(t testing.TB, res *response, want int) {
	t.Helper()
	if res.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d\n%s", res.Request.Method, res.Request.URL.Path, res.StatusCode, want, res.Body)
	}
}

func wantRedirect(t testing.TB, res *response, to string) {
	t.Helper()
	wantStatus(t, res, http.StatusSeeOther)
	if got := res.Header.Get("Location"); got != to {
		t.Fatalf("%s %s: redirect to %q, want %q", res.Request.Method, res.Request.URL.Path, got, to)
	}
}

func wantContains(t testing.TB, body string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(body, s) {
			t.Fatalf("page lacks %q:\n%s", s, body)
		}
	}
}

// wantAbsent fails if body holds any of subs. Check first that body is the
// page it should be (wantStatus, wantContains): an error page passes it.
func wantAbsent(t testing.TB, body string, subs ...string) {
	t.Helper()
	if body == "" {
		t.Fatal("nothing to scan: the page is empty")
	}
	for _, s := range subs {
		if strings.Contains(body, s) {
			t.Fatalf("page contains %q", s)
		}
	}
}

// secretsByName reads the user's secrets from the vault.
func (s *stack) secretsByName(t testing.TB) map[string]*vault.Secret {
	t.Helper()
	page, err := s.svc.Secrets(context.Background(), s.userID, vault.ListOptions{Limit: vault.MaxPageLimit})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]*vault.Secret{}
	for _, sec := range page.Items {
		m[sec.Name] = sec
	}
	return m
}

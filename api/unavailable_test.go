package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/envvault/envvault/internal/testenv"
	"github.com/envvault/envvault/internal/testvault"
	"github.com/envvault/envvault/postgres"
	"github.com/envvault/envvault/vault"
)

// newPostgresEnv is newTestEnv over a real PostgreSQL reached through a
// proxy the test can cut.
func newPostgresEnv(t *testing.T) (*testEnv, *testenv.CutProxy) {
	t.Helper()
	url := testenv.RequirePostgres(t)
	ctx := context.Background()
	proxy := testenv.NewCutProxy(t, url)
	db, err := postgres.Open(ctx, proxy.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	svc := testvault.MustService(t, db, vault.Options{})
	logs := &testenv.SyncBuffer{}
	s := NewServer(Config{Service: svc, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	doc, router := mustSpec(t)
	return &testEnv{t: t, srv: srv, server: s, svc: svc, logs: logs, doc: doc, router: router}, proxy
}

// unavailableBodies are valid bodies of the documented writes, so that a
// request reaches the store rather than a 422.
var unavailableBodies = map[string]string{
	"POST /v1/secrets":                       `{"name":"NEW","value":"v"}`,
	"POST /v1/secrets/import":                `{"content":"NEW_TOO=v1234"}`,
	"PATCH /v1/secrets/{id}":                 `{"value":"v2"}`,
	"POST /v1/secrets/{id}/rollback":         `{"version":1}`,
	"POST /v1/secrets/{id}/oauth2/authorize": "",
	"POST /v1/profiles":                      `{"name":"q","image":"img"}`,
	"PATCH /v1/profiles/{id}":                `{"image":"img2"}`,
	"GET /v1/secrets/{id}":                   "",
	"GET /v1/secrets/{id}/versions":          "",
	"DELETE /v1/secrets/{id}":                "",
	"GET /v1/profiles/{id}":                  "",
	"GET /v1/profiles/{id}/env":              "",
	"GET /v1/profiles/{id}/secret-keys":      "",
	"GET /v1/secret-requests":                "",
	"GET /v1/secret-requests/{id}":           "",
	"DELETE /v1/profiles/{id}":               "",
	"GET /v1/secrets":                        "",
	"GET /v1/profiles":                       "",
	"GET /v1/audit":                          "",
	"GET /v1/tokens":                         "",
	"POST /v1/tokens":                        `{"name":"n","scope":"read"}`,
	"DELETE /v1/tokens/{id}":                 "",
}

// TestStoreUnavailable cuts the connection to PostgreSQL and calls every
// operation that documents the Unavailable response: each answers 503
// unavailable with Retry-After, never 500, and the writes did nothing.
// Once connections go through again, the same server answers 200 without
// a restart.
func TestStoreUnavailable(t *testing.T) {
	e, proxy := newPostgresEnv(t)
	_, tok := e.newUser("alice")
	sid := e.mustCreate("/v1/secrets", tok, `{"name":"KEEP","value":"v"}`)
	pid := e.mustCreate("/v1/profiles", tok, `{"name":"p","image":"img"}`)
	spare := e.newToken(tok, "spare", "read")

	proxy.Cut()
	calls := 0
	for path, item := range e.doc.Paths.Map() {
		for method, op := range item.Operations() {
			ref := op.Responses.Status(http.StatusServiceUnavailable)
			if ref == nil || ref.Ref != "#/components/responses/StoreUnavailable" {
				continue
			}
			key := method + " " + path
			body, ok := unavailableBodies[key]
			if !ok {
				t.Errorf("%s documents Unavailable but the test has no request for it", key)
				continue
			}
			id := sid
			if strings.HasPrefix(path, "/v1/profiles/") {
				id = pid
			}
			if strings.HasPrefix(path, "/v1/tokens/") {
				id = spare.ID
			}
			r := e.call(method, strings.ReplaceAll(path, "{id}", id), tok, body)
			calls++
			if code, _, _ := r.errorOf(t); r.status != http.StatusServiceUnavailable || code != vault.EUNAVAILABLE {
				t.Errorf("%s while the database is cut: %s, want 503 %s", key, r, vault.EUNAVAILABLE)
				continue
			}
			if got := r.header.Get("Retry-After"); got != strconv.Itoa(int(StoreRetryAfter.Seconds())) {
				t.Errorf("%s: Retry-After %q, want %v in seconds", key, got, StoreRetryAfter)
			}
		}
	}
	if calls != len(unavailableBodies) {
		t.Errorf("%d operations document Unavailable, the test knows %d", calls, len(unavailableBodies))
	}

	proxy.Restore()
	// The pool may hand out one connection it has not yet seen closed.
	var r *response
	for range 5 {
		if r = e.call("GET", "/v1/secrets", tok, ""); r.status == http.StatusOK {
			break
		}
		want(t, r, http.StatusServiceUnavailable, "")
	}
	want(t, r, http.StatusOK, "")
	items, _ := r.json(t)["data"].([]any)
	if len(items) != 1 {
		t.Errorf("after the cut the user has %d secrets, want only KEEP (writes refused while cut did nothing): %s", len(items), r)
	}
	want(t, e.call("GET", "/v1/secrets/"+sid, tok, ""), http.StatusOK, "")
	want(t, e.call("GET", "/v1/profiles/"+pid, tok, ""), http.StatusOK, "")
	if l, _ := e.listTokens(tok); len(l) != 2 || l[1].ID != spare.ID {
		t.Errorf("after the cut the user has tokens %+v, want the initial one and spare", l)
	}
}

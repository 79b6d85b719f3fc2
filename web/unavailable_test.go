package web_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/envvault/envvault/internal/testenv"
	"github.com/envvault/envvault/postgres"
	"github.com/envvault/envvault/vault"
)

// newPostgresStack is newStack without tasks over a real PostgreSQL reached
// through a proxy the test can cut.
func newPostgresStack(t *testing.T) (*stack, *testenv.CutProxy) {
	t.Helper()
	ctx := context.Background()
	proxy := testenv.NewCutProxy(t, testenv.RequirePostgres(t))
	db, err := postgres.Open(ctx, proxy.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return newStack(t, stackOptions{store: db, noTasks: true}), proxy
}

// TestStoreUnavailablePage cuts the connection to PostgreSQL: the
// dashboard's pages and forms answer 503 with a page saying the
// database cannot be reached and Retry-After, never 500, and a form posted
// then saved nothing. Once connections go through again the same server
// shows the pages.
func TestStoreUnavailablePage(t *testing.T) {
	s, proxy := newPostgresStack(t)
	c := s.client(t)
	c.signIn()
	wantContains(t, c.get("/settings/secrets").Body, "Secrets")
	csrf := c.csrf("/settings/secrets/new")

	proxy.Cut()
	const said = "database cannot be reached right now"
	for name, res := range map[string]*response{
		"a page": c.get("/settings/secrets"),
		"a form": c.post("/settings/secrets", url.Values{"csrf": {csrf}, "name": {"WHILE_CUT"}, "value": {"v"}, "scope": {"all"}}),
	} {
		wantStatus(t, res, http.StatusServiceUnavailable)
		wantContains(t, res.Body, said)
		if got := res.Header.Get("Retry-After"); got != "5" {
			t.Errorf("%s: Retry-After %q, want 5", name, got)
		}
	}

	proxy.Restore()
	// The pool may hand out one connection it has not yet seen closed.
	var res *response
	for range 5 {
		if res = c.get("/settings/secrets"); res.StatusCode == http.StatusOK {
			break
		}
		wantStatus(t, res, http.StatusServiceUnavailable)
	}
	wantStatus(t, res, http.StatusOK)
	wantContains(t, res.Body, "Secrets")
	wantAbsent(t, res.Body, "WHILE_CUT")
	secrets, err := s.svc.Secrets(context.Background(), s.userID, vault.ListOptions{})
	if err != nil || len(secrets.Items) != 0 {
		t.Fatalf("after the cut: %d secrets, %v; want none (the form posted while cut saved nothing)", len(secrets.Items), err)
	}
}

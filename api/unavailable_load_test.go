package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/envvault/envvault/internal/testenv"
	"github.com/envvault/envvault/internal/testvault"
	"github.com/envvault/envvault/postgres"
	"github.com/envvault/envvault/vault"
)

// loadClient is one client of the load: it creates secrets and patches the
// ones it was told exist, and keeps what it was answered.
type loadClient struct {
	token string
	// acked holds, per secret id, the highest version an answer
	// acknowledged.
	acked    map[string]int
	names    map[string]string // id -> name
	statuses map[int]int
	problems []string
	// unavailable counts 503s, ok 2xx, each since the phase began.
	unavailable, ok int
}

// loadState is what the clients share with the test: counters guarded by
// mu, and changed, signalled after every answer, so the test awaits a
// condition rather than sleeping.
type loadState struct {
	mu      sync.Mutex
	clients []*loadClient
	changed chan struct{}
}

// await waits until cond (called with mu held) holds, or fails the test
// after timeout, saying what it waited for, or as soon as a client got an
// answer other than 2xx or 503 with Retry-After.
func (s *loadState) await(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		done := cond()
		var problems []string
		for _, c := range s.clients {
			problems = append(problems, c.problems...)
		}
		s.mu.Unlock()
		if len(problems) > 0 {
			t.Fatalf("waiting for %s: %d answers other than 2xx or 503 with Retry-After, first: %v", what, len(problems), problems[:min(3, len(problems))])
		}
		if done {
			return
		}
		select {
		case <-s.changed:
		case <-deadline.C:
			t.Fatalf("waited %v for %s", timeout, what)
		}
	}
}

// every reports whether f holds for every client (mu held).
func (s *loadState) every(f func(*loadClient) bool) bool {
	for _, c := range s.clients {
		if !f(c) {
			return false
		}
	}
	return true
}

// resetPhase zeroes the per-phase counters.
func (s *loadState) resetPhase() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.clients {
		c.unavailable, c.ok = 0, 0
	}
}

// run is one client's loop until stop: odd steps create a secret, even ones
// patch an acknowledged one with a new value.
func (s *loadState) run(base string, c *loadClient, n int, stop <-chan struct{}) {
	hc := &http.Client{Timeout: 30 * time.Second}
	var ids []string
	for i := 1; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		method, path, body := "POST", "/v1/secrets", fmt.Sprintf(`{"name":"C%d_%d","value":"v%d"}`, n, i, i)
		if i%2 == 0 && len(ids) > 0 {
			method, path, body = "PATCH", "/v1/secrets/"+ids[i%len(ids)], fmt.Sprintf(`{"value":"v%d"}`, i)
		}
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+c.token)
		req.Header.Set("Content-Type", "application/json")
		status, header, raw := 0, http.Header(nil), []byte(nil)
		resp, err := hc.Do(req)
		if err == nil {
			status, header = resp.StatusCode, resp.Header
			raw, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		var got struct {
			ID      string `json:"id"`
			Name    string `json:"name"`
			Version int    `json:"version"`
			Error   struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		_ = json.Unmarshal(raw, &got)

		s.mu.Lock()
		c.statuses[status]++
		switch {
		case err != nil:
			c.problems = append(c.problems, fmt.Sprintf("%s %s: %v", method, path, err))
		case status == http.StatusOK || status == http.StatusCreated:
			c.ok++
			if _, seen := c.names[got.ID]; !seen {
				ids = append(ids, got.ID)
			}
			c.names[got.ID] = got.Name
			c.acked[got.ID] = max(c.acked[got.ID], got.Version)
		case status == http.StatusServiceUnavailable:
			c.unavailable++
			if ra := header.Get("Retry-After"); ra != strconv.Itoa(int(StoreRetryAfter.Seconds())) || got.Error.Code != vault.EUNAVAILABLE {
				c.problems = append(c.problems, fmt.Sprintf("%s %s: 503 with Retry-After %q: %s", method, path, ra, raw))
			}
		default:
			c.problems = append(c.problems, fmt.Sprintf("%s %s: %d: %s", method, path, status, raw))
		}
		s.mu.Unlock()
		select {
		case s.changed <- struct{}{}:
		default:
		}
	}
}

// TestPostgresStoppedMidLoad stops PostgreSQL itself (pg_ctl stop -m fast
// on a cluster of the test's own) while 8 clients create and patch secrets
// over real HTTP, then starts it again. Every answer is 2xx or 503 with
// Retry-After, never a 500; every acknowledged write is there afterwards;
// nothing is half-written (each secret has its one create event, one
// update event per later version and its replaced value kept; no event
// without its secret; the audit chain verifies); and the same server,
// never restarted, answers 2xx again to every client.
func TestPostgresStoppedMidLoad(t *testing.T) {
	cluster := testenv.StartCluster(t)
	ctx := context.Background()
	db, err := postgres.Open(ctx, cluster.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	svc := testvault.MustService(t, db, vault.Options{})
	logs := &testenv.SyncBuffer{}
	// No write limit: the load is the test's, not a user's abuse.
	srv := httptest.NewServer(NewServer(Config{Service: svc, Logger: slog.New(slog.NewJSONHandler(logs, nil)), WritesPerSecond: -1}).Handler())
	t.Cleanup(srv.Close)

	const clients, users = 8, 4
	st := &loadState{changed: make(chan struct{}, 1)}
	tokens := make([]string, users)
	for u := range users {
		_, token, err := svc.CreateUser(ctx, fmt.Sprintf("user%d", u))
		if err != nil {
			t.Fatal(err)
		}
		tokens[u] = token
	}
	for n := range clients {
		st.clients = append(st.clients, &loadClient{token: tokens[n%users], acked: map[string]int{}, names: map[string]string{}, statuses: map[int]int{}})
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for n, c := range st.clients {
		wg.Go(func() { st.run(srv.URL, c, n, stop) })
	}
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopLoad)

	st.await(t, "every client to get 5 writes through before the stop", 60*time.Second,
		func() bool { return st.every(func(c *loadClient) bool { return c.ok >= 5 }) })
	st.resetPhase()
	cluster.Stop("fast")
	st.await(t, "every client to be answered 503 while PostgreSQL is stopped", 60*time.Second,
		func() bool { return st.every(func(c *loadClient) bool { return c.unavailable >= 3 }) })
	cluster.Start()
	st.resetPhase()
	st.await(t, "every client to get 3 writes through after PostgreSQL is back, without restarting the server", 60*time.Second,
		func() bool { return st.every(func(c *loadClient) bool { return c.ok >= 3 }) })
	stopLoad()

	total := map[int]int{}
	for n, c := range st.clients {
		for s, k := range c.statuses {
			total[s] += k
		}
		if len(c.problems) > 0 {
			t.Errorf("client %d: %d answers other than 2xx or 503 with Retry-After, first: %v", n, len(c.problems), c.problems[:min(3, len(c.problems))])
		}
	}
	t.Logf("answers by status: %v", total)
	if total[http.StatusInternalServerError] > 0 {
		t.Errorf("%d answers were 500", total[http.StatusInternalServerError])
	}

	checkNothingHalfWritten(t, cluster.URL, st)
	rep, err := vault.VerifyAudit(ctx, db)
	if err != nil || rep.Break != nil || rep.Events == 0 {
		t.Fatalf("audit chain after the stop: %+v, %v", rep, err)
	}
}

// checkNothingHalfWritten reads the database directly: every acknowledged
// write is there, and every secret has exactly the events and kept
// versions its version says it went through.
func checkNothingHalfWritten(t *testing.T, url string, st *loadState) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	type row struct {
		name                string
		version             int
		creates, updates    int
		replacedValueIsKept bool
	}
	rows, err := conn.Query(ctx, `SELECT s.id, s.name, s.version,
		(SELECT count(*) FROM audit_events e WHERE e.action = $1 AND e.target_id = s.id),
		(SELECT count(*) FROM audit_events e WHERE e.action = $2 AND e.target_id = s.id),
		s.version = 1 OR EXISTS (SELECT FROM secret_versions v WHERE v.secret_id = s.id AND v.version = s.version - 1)
		FROM secrets s`, vault.ActionSecretCreate, vault.ActionSecretUpdate)
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]row{}
	for rows.Next() {
		var id string
		var r row
		if err := rows.Scan(&id, &r.name, &r.version, &r.creates, &r.updates, &r.replacedValueIsKept); err != nil {
			t.Fatal(err)
		}
		secrets[id] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	acked := 0
	for _, c := range st.clients {
		for id, v := range c.acked {
			acked++
			r, ok := secrets[id]
			switch {
			case !ok:
				t.Errorf("acknowledged secret %s (%s) is missing", id, c.names[id])
			case r.version < v:
				t.Errorf("secret %s is at version %d, but version %d was acknowledged", id, r.version, v)
			}
		}
	}
	if acked == 0 || len(secrets) < acked {
		t.Fatalf("%d secrets in the database, %d acknowledged", len(secrets), acked)
	}
	for id, r := range secrets {
		if r.creates != 1 || r.updates != r.version-1 || !r.replacedValueIsKept {
			t.Errorf("secret %s half-written: version %d, %d create and %d update events, replaced value kept: %v",
				id, r.version, r.creates, r.updates, r.replacedValueIsKept)
		}
	}
	var orphans int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM audit_events e WHERE e.action IN ($1, $2)
		AND NOT EXISTS (SELECT FROM secrets s WHERE s.id = e.target_id)`, vault.ActionSecretCreate, vault.ActionSecretUpdate).Scan(&orphans); err != nil {
		t.Fatal(err)
	}
	if orphans > 0 {
		t.Errorf("%d secret events have no secret: a write was half-done", orphans)
	}
	t.Logf("%d secrets, %d acknowledged by their creator's answers", len(secrets), acked)
}

package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/envvault/envvault/internal/testenv"
	"github.com/envvault/envvault/postgres"
	"github.com/envvault/envvault/vault"
)

// TestUnavailableMidLoad cuts the connection to PostgreSQL (a proxy that
// closes every connection and refuses new ones) while writers create
// secrets: every failure is EUNAVAILABLE, never an internal error; no
// write is half-done (each secret has its one secret.create event, and no
// event is without its secret); and once the proxy lets connections
// through again the same store serves writes, without being reopened.
func TestUnavailableMidLoad(t *testing.T) {
	direct, url := openDB(t)
	ctx := context.Background()
	proxy := testenv.NewCutProxy(t, url)
	store, err := postgres.Open(ctx, proxy.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	svc := newService(t, store, vault.Options{})
	userID := mustUser(t, svc)

	const writers, perWriter, cutAfter = 4, 40, 20
	var (
		mu       sync.Mutex
		done     int
		created  = map[string]bool{} // name -> acknowledged
		refused  int
		cut      = make(chan struct{})
		cutOnce  sync.Once
		problems []string
	)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				name := fmt.Sprintf("W%d_%d", w, i)
				_, err := svc.CreateSecret(ctx, userID, vault.SecretInput{Name: name, Value: "v"})
				mu.Lock()
				switch code := vault.ErrorCode(err); code {
				case "":
					created[name] = true
					if done++; done == cutAfter {
						cutOnce.Do(func() { proxy.Cut(); close(cut) })
					}
				case vault.EUNAVAILABLE:
					refused++
				default:
					problems = append(problems, fmt.Sprintf("%s: %s (%v)", name, code, err))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	select {
	case <-cut:
	default:
		t.Fatalf("the load ended before the cut (%d writes done)", done)
	}
	if len(problems) > 0 {
		t.Fatalf("%d writes failed otherwise than EUNAVAILABLE while the database was cut, first:\n%v", len(problems), problems[:min(3, len(problems))])
	}
	if refused == 0 {
		t.Fatal("no write was refused after the cut: the cut did not happen mid-load")
	}

	// Still cut: a read is refused the same way.
	if _, err := svc.Secrets(ctx, userID, vault.ListOptions{}); vault.ErrorCode(err) != vault.EUNAVAILABLE {
		t.Fatalf("list while cut: %v, want %s", err, vault.EUNAVAILABLE)
	}

	proxy.Restore()
	// The pool may hand out one connection it has not yet seen closed; a
	// few attempts, each an awaited round trip, bound that.
	var after *vault.Secret
	for attempt := range 5 {
		after, err = svc.CreateSecret(ctx, userID, vault.SecretInput{Name: "AFTER", Value: "v"})
		if err == nil {
			break
		}
		if vault.ErrorCode(err) != vault.EUNAVAILABLE {
			t.Fatalf("write after restore (attempt %d): %v", attempt, err)
		}
	}
	if err != nil {
		t.Fatalf("the store did not recover without a restart: %v", err)
	}
	if got, err := svc.Secret(ctx, userID, after.ID); err != nil || got.Name != "AFTER" {
		t.Fatalf("read after restore: %v %v", got, err)
	}

	// Nothing half-written: every secret has exactly its one create event,
	// and every create event its secret; every acknowledged write is there.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	rows, err := conn.Query(ctx, `SELECT s.name, (SELECT count(*) FROM audit_events e
		WHERE e.action = $2 AND e.target_id = s.id) FROM secrets s WHERE s.user_id = $1`, userID, vault.ActionSecretCreate)
	if err != nil {
		t.Fatal(err)
	}
	events := map[string]int64{}
	for rows.Next() {
		var name string
		var n int64
		if err := rows.Scan(&name, &n); err != nil {
			t.Fatal(err)
		}
		events[name] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for name, n := range events {
		if n != 1 {
			t.Errorf("secret %s has %d create events, want 1", name, n)
		}
	}
	for name := range created {
		if _, ok := events[name]; !ok {
			t.Errorf("acknowledged secret %s is missing", name)
		}
	}
	var orphans int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM audit_events e WHERE e.action = $1
		AND NOT EXISTS (SELECT FROM secrets s WHERE s.id = e.target_id)`, vault.ActionSecretCreate).Scan(&orphans); err != nil {
		t.Fatal(err)
	}
	if orphans != 0 {
		t.Errorf("%d create events have no secret: a write was half-done", orphans)
	}
	if len(events) < len(created)+1 {
		t.Errorf("%d secrets stored, fewer than the %d acknowledged", len(events), len(created)+1)
	}
	rep, err := vault.VerifyAudit(ctx, direct)
	if err != nil || rep.Break != nil {
		t.Fatalf("audit chain after the cut: %+v %v", rep, err)
	}
	t.Logf("%d writes acknowledged, %d refused as unavailable, %d stored", len(created), refused, len(events))
}

// Command writefloor is the floor of envvault's HTTP write, for `envvault
// bench` (README, "Beside OpenBao"): it answers PATCH /v1/secrets/:id with
// only the write's own SQL, grouped as postgres/group.go groups it (two
// senders, each group in two round trips and one COMMIT), as the
// row-level-security role: the user's setting and check, the secret's
// lock and read, its kept version, the pruned one, the row, the audit
// event. It does nothing else a write does: no authentication, no
// sealing (the row keeps its sealed bytes), no validation, no link pass
// (its events stay unlinked until a real server's next pass). Every other
// request (the benchmark's set-up and clean-up) goes to a real envvault
// server on the same database. For benchmarks on loopback only.
//
//	writefloor -addr 127.0.0.1:18090 -upstream http://127.0.0.1:18084 \
//	  -db postgres://envvault@127.0.0.1:5432/envvault -user usr_…
package main

import (
	"context"
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// write is one PATCH waiting for its group.
type write struct {
	secret string
	done   chan error
}

func main() {
	addr := flag.String("addr", "127.0.0.1:18090", "address to listen on")
	upstream := flag.String("upstream", "http://127.0.0.1:18081", "the envvault server every other request goes to")
	db := flag.String("db", "", "PostgreSQL URL of the upstream's database, as its service role")
	user := flag.String("user", "", "id of the user whose secrets the benchmark writes")
	flag.Parse()
	if *db == "" || *user == "" {
		log.Fatal("writefloor: -db and -user are required")
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, *db)
	if err != nil {
		log.Fatal(err)
	}
	u, _ := url.Parse(*upstream)
	proxy := httputil.NewSingleHostReverseProxy(u)
	queue := make(chan write, 1024)
	for range 2 {
		go func() {
			for w := range queue {
				batch := []write{w}
			more:
				for len(batch) < 64 {
					select {
					case w := <-queue:
						batch = append(batch, w)
					default:
						break more
					}
				}
				err := writeGroup(ctx, pool, *user, batch)
				for _, w := range batch {
					w.done <- err
				}
			}
		}()
	}
	http.HandleFunc("/", func(rw http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPatch || !strings.HasPrefix(r.URL.Path, "/v1/secrets/") {
			proxy.ServeHTTP(rw, r)
			return
		}
		var body struct{ Value string }
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(rw, err.Error(), 400)
			return
		}
		w := write{strings.TrimPrefix(r.URL.Path, "/v1/secrets/"), make(chan error, 1)}
		queue <- w
		if err := <-w.done; err != nil {
			http.Error(rw, err.Error(), 500)
			return
		}
		rw.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(rw).Encode(map[string]any{"id": w.secret})
	})
	log.Fatal(http.ListenAndServe(*addr, nil))
}

// writeGroup writes a new version of each secret of batch in one
// transaction: the reads in one round trip, the writes and COMMIT in the
// other.
func writeGroup(ctx context.Context, pool *pgxpool.Pool, user string, batch []write) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	read := &pgx.Batch{}
	read.Queue(`BEGIN ISOLATION LEVEL READ COMMITTED`)
	read.Queue(`SELECT set_config('envvault.user_id', $1, true)`, user)
	read.Queue(`SELECT FROM users WHERE id = $1`, user)
	versions := make([]int32, len(batch))
	for i, w := range batch {
		read.Queue(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, user+"/"+w.secret)
		var kept []int32
		read.Queue(`SELECT s.version, v.versions FROM secrets s CROSS JOIN LATERAL (
			SELECT array_agg(version ORDER BY version DESC) FROM secret_versions
			WHERE secret_id = s.id AND user_id = s.user_id) v(versions)
		WHERE s.id = $1 AND s.user_id = $2`, w.secret, user).QueryRow(func(r pgx.Row) error { return r.Scan(&versions[i], &kept) })
	}
	if err := conn.SendBatch(ctx, read).Close(); err != nil {
		return err
	}
	b := &pgx.Batch{}
	for i, w := range batch {
		b.Queue(`INSERT INTO secret_versions (secret_id, user_id, version, name, sealed_value, sealed_key, master_key_id, replaced_at)
		SELECT id, user_id, version, name, sealed_value, sealed_key, master_key_id, now() FROM secrets WHERE id = $1 AND user_id = $2`, w.secret, user)
		b.Queue(`DELETE FROM secret_versions WHERE secret_id = $1 AND user_id = $2 AND version = ANY($3)`,
			w.secret, user, []int32{versions[i] - 10})
		b.Queue(`UPDATE secrets SET version = version + 1, updated_at = now() WHERE id = $1 AND user_id = $2`, w.secret, user)
		b.Queue(`INSERT INTO audit_events (time, user_id, token_id, action, target_type, target_id, details)
		VALUES (now(), $1, '', 'secret.update', 'secret', $2, $3)`, user, w.secret,
			map[string]any{"name": "W", "scope": "all", "profile_ids": []string{}, "version": versions[i] + 1, "changed": []string{"value"}})
	}
	b.Queue(`COMMIT`)
	return conn.SendBatch(ctx, b).Close()
}

// Command writefloor is the floor of envvault's HTTP write, for `envvault
// bench` (README, "Beside OpenBao"): it answers PATCH /v1/secrets/:id with
// only the write's own SQL (internal/writefloor), grouped as
// postgres/group.go groups it (two senders, each group in two round trips
// and one COMMIT), as the row-level-security role: the user's setting and
// check, the secret's lock and read, its kept version, the pruned one, the
// row, the audit event. It does nothing else a write does: no authentication, no
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
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/envvault/envvault/internal/writefloor"
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
	// It writes as the service role for whoever asks, without a token:
	// never on an address other hosts reach.
	host, _, err := net.SplitHostPort(*addr)
	if ip := net.ParseIP(host); err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
		log.Fatalf("writefloor: -addr %q must be a loopback address (127.0.0.0/8, ::1, localhost)", *addr)
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
				targets := make([]writefloor.Target, len(batch))
				for i, w := range batch {
					targets[i] = writefloor.Target{User: *user, Secret: w.secret}
				}
				err := writefloor.WriteGroup(ctx, pool, targets)
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

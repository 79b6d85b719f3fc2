package postgres_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/envvault/envvault/postgres"
	"github.com/envvault/envvault/vault"
)

// TestViewStatement checks ViewStatement as the service role: it reads
// what View reads, only the user's rows (row-level security holds with no
// WHERE user_id at all), refuses writes and a second statement, and
// converts errors as View does.
func TestViewStatement(t *testing.T) {
	d := newRLSDB(t)
	ctx := context.Background()
	svc := newService(t, d.service, vault.Options{})
	alice, bob := mustUser(t, svc), mustUser(t, svc)
	p := mustProfile(t, svc, alice, "p")
	sec := mustSecret(t, svc, alice, vault.SecretInput{Name: "A", Value: "value-a", Scope: vault.ScopeAgents, ProfileIDs: []string{p.ID}})
	mustSecret(t, svc, alice, vault.SecretInput{Name: "B", Value: "value-b"})
	mustSecret(t, svc, bob, vault.SecretInput{Name: "C", Value: "value-c"})

	read := func(view func(context.Context, string, func(vault.Tx) error) error) (s *vault.Secret, list []*vault.Secret) {
		t.Helper()
		err := view(ctx, alice, func(tx vault.Tx) (err error) { s, err = tx.Secret(ctx, sec.ID); return err })
		if err != nil {
			t.Fatalf("read secret: %v", err)
		}
		err = view(ctx, alice, func(tx vault.Tx) (err error) { list, err = tx.Secrets(ctx, vault.ListFilter{Limit: 10}); return err })
		if err != nil {
			t.Fatalf("list secrets: %v", err)
		}
		return s, list
	}
	got, gotList := read(d.service.ViewStatement)
	want, wantList := read(d.service.View)
	if !reflect.DeepEqual(got, want) || !slices.Equal(got.ProfileIDs, []string{p.ID}) {
		t.Fatalf("ViewStatement read %+v, View %+v", got, want)
	}
	if len(gotList) != 2 || !reflect.DeepEqual(gotList, wantList) {
		t.Fatalf("ViewStatement listed %d secrets, View %d, or they differ", len(gotList), len(wantList))
	}

	err := d.service.ViewStatement(ctx, bob, func(tx vault.Tx) error { _, err := tx.Secret(ctx, sec.ID); return err })
	wantCode(t, err, vault.ENOTFOUND)

	if n, err := d.service.StatementCount(ctx, alice, "secrets"); err != nil || n != 2 {
		t.Fatalf("alice's one-statement view counts %d secrets with no filter (%v), want her 2", n, err)
	}
	var pgErr *pgconn.PgError
	if err := d.service.StatementExec(ctx, alice, `DELETE FROM secrets`); !errors.As(err, &pgErr) || pgErr.Code != "25006" {
		t.Fatalf("a delete in a one-statement view: %v, want read_only_sql_transaction (25006)", err)
	}
	if n, _ := d.service.StatementCount(ctx, alice, "secrets"); n != 2 {
		t.Fatalf("alice holds %d secrets after a refused delete, want 2", n)
	}

	calls := 0
	err = d.service.ViewStatement(ctx, alice, func(tx vault.Tx) error {
		for range 2 {
			if _, err := tx.Secret(ctx, sec.ID); err != nil {
				return err
			}
			calls++
		}
		return nil
	})
	if err == nil || calls != 1 || !strings.Contains(err.Error(), "second statement") {
		t.Fatalf("two statements in a one-statement view: %d ran, %v; want the second refused", calls, err)
	}
}

// TestReadRoundTrips counts the round trips of the API's reads on
// PostgreSQL, through a proxy that counts the client's sends: reading a
// secret or a page of secrets costs one, and a token checked a moment ago
// costs none.
func TestReadRoundTrips(t *testing.T) {
	ctx := context.Background()
	store, svc, proxy := countedStore(t, vault.Options{})
	u, token, err := svc.CreateUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	sec := mustSecret(t, svc, u.ID, vault.SecretInput{Name: "A", Value: "value-a"})
	request := func() {
		t.Helper()
		user, _, err := svc.Authenticate(ctx, token)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Secret(ctx, user, sec.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Secrets(ctx, user, vault.ListOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The first request prepares the statements and caches the token;
	// the token cache serves only once the store's revocation feed
	// listens (token_feed.go), so until then a request also reads the
	// token: wait for one of two round trips.
	for i := 0; ; i++ {
		before := proxy.sends.Load()
		request()
		if proxy.sends.Load()-before == 2 {
			break
		}
		if i == 200 {
			t.Fatal("the token cache never served: the revocation feed did not come up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The write's link pass runs after it returned: let it end first.
	if _, err := store.LinkAudit(ctx); err != nil {
		t.Fatal(err)
	}
	// The store's own background work (the revocation feed's heartbeat,
	// a token's last use written once a minute) can fall in a window and
	// only adds to it: the fewest of three windows is the reads' cost.
	const n = 5
	fewest := int64(-1)
	for range 3 {
		proxy.sends.Store(0)
		for range n {
			request()
		}
		if got := proxy.sends.Load(); fewest < 0 || got < fewest {
			fewest = got
		}
	}
	if fewest != 2*n {
		t.Fatalf("%d requests (a secret and a list each) took at fewest %d round trips in three tries, want %d", n, fewest, 2*n)
	}
}

// countedStore opens the store as the service role through a counting
// proxy, and a service on it with opts.
func countedStore(t *testing.T, opts vault.Options) (*postgres.DB, *vault.Service, *countingProxy) {
	t.Helper()
	d := newRLSDB(t)
	proxy := newCountingProxy(t, d.Service)
	store, err := postgres.Open(context.Background(), proxy.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store, newService(t, store, opts), proxy
}

// countingProxy forwards TCP to a PostgreSQL server and counts what the
// client sends, a round trip each (a client of the protocol sends, then
// waits for the answer), leaving out the pool's idle-connection pings.
type countingProxy struct {
	url   string
	sends atomic.Int64
}

func newCountingProxy(t *testing.T, target string) *countingProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{}
	server := u.Host
	u.Host = ln.Addr().String()
	p.url = u.String()
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", server)
			if err != nil {
				c.Close()
				continue
			}
			wg.Go(func() { _, _ = io.Copy(c, s); c.Close() })
			wg.Go(func() { p.forward(s, c); s.Close() })
		}
	})
	return p
}

func (p *countingProxy) forward(dst io.Writer, src io.Reader) {
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !strings.Contains(string(buf[:n]), "-- ping") {
				p.sends.Add(1)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestWriteRoundTrips counts the round trips of a new value (PATCH of a
// secret's value): two, one for BEGIN, the setting, the user's check, the
// lock and the read of the secret with its kept versions, one for the kept
// version, the pruned one, the row, the audit event and COMMIT. The link
// pass that follows runs on its own after the write returns; the fewest of
// ten writes is the write's own cost.
func TestWriteRoundTrips(t *testing.T) {
	ctx := context.Background()
	store, svc, proxy := countedStore(t, vault.Options{KeepVersions: 2})
	u, _, err := svc.CreateUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	sec := mustSecret(t, svc, u.ID, vault.SecretInput{Name: "A", Value: "value-0"})
	fewest := int64(-1)
	for i := range 10 {
		// Past the second write, each one prunes a version too.
		if _, err := store.LinkAudit(ctx); err != nil {
			t.Fatal(err)
		}
		before := proxy.sends.Load()
		if _, err := svc.UpdateSecret(ctx, u.ID, sec.ID, vault.SecretPatch{Value: ptrTo("value-" + strconv.Itoa(i+1))}); err != nil {
			t.Fatal(err)
		}
		if got := proxy.sends.Load() - before; fewest < 0 || got < fewest {
			fewest = got
		}
	}
	if fewest != 2 {
		t.Fatalf("a new value took at fewest %d round trips in ten writes, want 2", fewest)
	}
	versions, err := svc.SecretVersions(ctx, u.ID, sec.ID)
	if err != nil || len(versions) != 3 || versions[0].Version != 11 || versions[2].Version != 9 {
		t.Fatalf("versions after ten writes keeping 2: %+v, %v; want 11 (current), 10, 9", versions, err)
	}
}

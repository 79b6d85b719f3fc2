package testenv

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// fakeTB records how RequirePostgres ends a test, without ending this one.
type fakeTB struct {
	testing.TB // only for the methods not overridden here
	mu         sync.Mutex
	fatal      string
	skip       string
	cleanups   []func()
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatal(args ...any) { f.end(&f.fatal, fmt.Sprint(args...)) }
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.end(&f.fatal, fmt.Sprintf(format, args...))
}
func (f *fakeTB) Skip(args ...any) { f.end(&f.skip, fmt.Sprint(args...)) }
func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fatal = fmt.Sprintf(format, args...)
}
func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }

func (f *fakeTB) end(into *string, msg string) {
	f.mu.Lock()
	*into = msg
	f.mu.Unlock()
	runtime.Goexit()
}

// run calls RequirePostgres on a fake in its own goroutine, as the testing
// package would, and returns the URL it gave, if any.
func run(t *testing.T) (*fakeTB, string) {
	f := &fakeTB{TB: t}
	var url string
	done := make(chan struct{})
	go func() {
		defer close(done)
		url = RequirePostgres(f)
	}()
	<-done
	return f, url
}

func TestRequirePostgresUnset(t *testing.T) {
	t.Setenv(PostgresURLEnv, "")

	t.Setenv("CI", "")
	f, _ := run(t)
	if f.fatal != "" || !strings.Contains(f.skip, PostgresURLEnv) || !strings.Contains(f.skip, "./scripts/test") {
		t.Errorf("outside CI: skip %q, fatal %q; want a skip naming %s and ./scripts/test", f.skip, f.fatal, PostgresURLEnv)
	}

	t.Setenv("CI", "true")
	f, _ = run(t)
	want := "PostgreSQL is required in CI: ENVVAULT_TEST_DATABASE_URL is not set; run ./scripts/test"
	if f.skip != "" || f.fatal != want {
		t.Errorf("in CI: skip %q, fatal %q; want fatal %q", f.skip, f.fatal, want)
	}
}

func TestRequirePostgresUnreachable(t *testing.T) {
	t.Setenv("CI", "")
	t.Setenv(PostgresURLEnv, "postgres://postgres:pw-not-shown@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=5")
	f, _ := run(t)
	if f.skip != "" || !strings.Contains(f.fatal, "does not answer") {
		t.Errorf("unreachable: skip %q, fatal %q; want a failure, never a skip", f.skip, f.fatal)
	}
	if strings.Contains(f.fatal, "pw-not-shown") {
		t.Errorf("failure shows the password: %q", f.fatal)
	}
}

func TestRequirePostgresFreshDatabase(t *testing.T) {
	admin := os.Getenv(PostgresURLEnv)
	url := RequirePostgres(t) // skips or fails here as documented
	other := RequirePostgres(t)
	if url == other || url == admin {
		t.Fatalf("two calls gave %q and %q (admin %q); want two fresh databases", url, other, admin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect to the fresh database: %v", err)
	}
	var name string
	var tables int
	err = conn.QueryRow(ctx, `SELECT current_database(),
		(SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema'))`).Scan(&name, &tables)
	if err != nil || !strings.HasPrefix(name, "envvault_test_") || tables != 0 {
		t.Fatalf("fresh database %q with %d tables, %v; want an empty envvault_test_ database", name, tables, err)
	}

	// Its cleanup drops it even with a connection still open.
	f := &fakeTB{TB: t}
	dropped := RequirePostgres(f)
	held, err := pgx.Connect(ctx, dropped)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer held.Close(ctx)
	for _, fn := range f.cleanups {
		fn()
	}
	if f.fatal != "" {
		t.Fatalf("cleanup failed: %s", f.fatal)
	}
	var n int
	dbName := dropped[strings.LastIndex(dropped, "/")+1:]
	dbName, _, _ = strings.Cut(dbName, "?")
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, dbName).Scan(&n); err != nil || n != 0 {
		t.Errorf("database %s still exists after cleanup (%d, %v)", dbName, n, err)
	}
	conn.Close(ctx)
}

func TestWithDatabase(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:p@h:5432/postgres?sslmode=disable": "postgres://u:p@h:5432/x?sslmode=disable",
		"postgresql://u@h/db":                            "postgresql://u@h/x",
		"host=/run/postgresql user=postgres":             "host=/run/postgresql user=postgres dbname=x",
	} {
		if got := withDatabase(t, in, "x"); got != want {
			t.Errorf("withDatabase(%q) = %q, want %q", in, got, want)
		}
	}
}

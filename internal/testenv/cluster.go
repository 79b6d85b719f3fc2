package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Cluster is a PostgreSQL cluster of one test's own, which the test may
// stop and start again (on the same port) to see what a database that goes
// away does to the code under test. The cluster on ENVVAULT_TEST_DATABASE_URL
// is shared by every test and must never be stopped.
type Cluster struct {
	// URL is the superuser URL of the cluster's postgres database.
	URL string

	t       testing.TB
	bin     string // the directory of initdb and pg_ctl
	dir     string // data directory, log, socket
	port    int
	asOwner []string // the command prefix that runs a program as the cluster's owner
}

// StartCluster initdbs and starts a throwaway cluster on a free loopback
// port (fsync off: durability on power loss is not what such tests look
// at) and stops it, immediately, and removes it when the test ends. It
// needs PostgreSQL's server programs (/usr/lib/postgresql/N/bin, or initdb
// and pg_ctl on PATH), and as root a postgres user to own the cluster
// (initdb refuses root); without them the test skips, or fails with
// CI=true.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	c := &Cluster{t: t}
	c.bin = pgBinDir()
	if c.bin == "" {
		requireOrSkip(t, "PostgreSQL's server programs (initdb, pg_ctl) are not installed: install Debian's postgresql package")
	}
	dir, err := os.MkdirTemp("", "envvault-cluster-")
	if err != nil {
		t.Fatal(err)
	}
	c.dir = dir
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		owner, err := user.Lookup("postgres")
		if err != nil {
			requireOrSkip(t, "running as root, and there is no postgres user to own a cluster (initdb refuses root)")
		}
		c.asOwner = []string{"runuser", "-u", owner.Username, "--"}
		if out, err := exec.Command("chown", owner.Username+":", dir).CombinedOutput(); err != nil {
			t.Fatalf("chown %s: %v: %s", dir, err, out)
		}
	}
	c.run("initdb", "-D", c.data(), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-sync")
	c.port = freePort(t)
	c.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
	c.Start()
	t.Cleanup(func() {
		// Whatever state the test left it in: immediate ends it at once.
		cmd := c.command("pg_ctl", "-D", c.data(), "-m", "immediate", "-w", "stop")
		_ = cmd.Run()
	})
	return c
}

// Start starts the cluster (again) on its port and waits until it accepts
// connections.
func (c *Cluster) Start() {
	c.t.Helper()
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100",
		c.port, c.dir)
	c.run("pg_ctl", "-D", c.data(), "-l", filepath.Join(c.dir, "postgres.log"), "-w", "-t", "60", "-o", opts, "start")
}

// Stop stops the cluster with pg_ctl's mode (smart, fast, immediate) and
// waits until it has stopped. fast is an administrator's shutdown: every
// session is ended (SQLSTATE 57P01) and transactions in flight are rolled
// back.
func (c *Cluster) Stop(mode string) {
	c.t.Helper()
	c.run("pg_ctl", "-D", c.data(), "-m", mode, "-w", "-t", "60", "stop")
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

func (c *Cluster) command(program string, args ...string) *exec.Cmd {
	argv := append(slices.Clone(c.asOwner), append([]string{filepath.Join(c.bin, program)}, args...)...)
	return exec.Command(argv[0], argv[1:]...)
}

func (c *Cluster) run(program string, args ...string) {
	c.t.Helper()
	if out, err := c.command(program, args...).CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "postgres.log"))
		c.t.Fatalf("%s %s: %v\n%s\n%s", program, strings.Join(args, " "), err, out, log)
	}
}

// pgBinDir returns the directory of the newest installed initdb and
// pg_ctl, "" if none.
func pgBinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return versionOf(a) - versionOf(b) })
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i]
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("pg_ctl"); err == nil {
			return filepath.Dir(p)
		}
	}
	return ""
}

// versionOf reads N of /usr/lib/postgresql/N/bin, 0 if it is not a number.
func versionOf(dir string) int {
	var n int
	fmt.Sscanf(filepath.Base(filepath.Dir(dir)), "%d", &n)
	return n
}

// freePort returns a loopback port nothing listens on now.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// requireOrSkip skips the test with msg, or fails it with CI=true.
func requireOrSkip(t testing.TB, msg string) {
	t.Helper()
	if CI() {
		t.Fatal(msg + " (required in CI)")
	}
	t.Skip(msg)
}

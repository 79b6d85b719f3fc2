package testenv

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// dockerTB records how RequireDocker ends a test, without ending this one.
type dockerTB struct {
	testing.TB // only for the methods not overridden here
	fatal      string
	skip       string
	cleanups   []func()
}

func (f *dockerTB) Helper()           {}
func (f *dockerTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }
func (f *dockerTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (f *dockerTB) Skipf(format string, args ...any) {
	f.skip = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// requireDocker calls RequireDocker on a fake in its own goroutine, as the
// testing package would, and runs the cleanups it registered.
func requireDocker(t *testing.T) (*dockerTB, bool) {
	f := &dockerTB{TB: t}
	ok := false
	done := make(chan struct{})
	go func() {
		defer close(done)
		RequireDocker(f)
		ok = true
	}()
	<-done
	for _, fn := range f.cleanups {
		fn()
	}
	return f, ok
}

func TestRequireDockerUnreachable(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/envvault-test/docker.sock")

	t.Setenv("CI", "")
	f, ok := requireDocker(t)
	if ok || f.fatal != "" || !strings.Contains(f.skip, "Docker Engine is not reachable at unix:///nonexistent/envvault-test/docker.sock") ||
		!strings.Contains(f.skip, "DOCKER_HOST") || !strings.Contains(f.skip, "CI=true") {
		t.Errorf("outside CI: returned %v, skip %q, fatal %q; want a skip saying the engine is not reachable and how to fix it", ok, f.skip, f.fatal)
	}

	t.Setenv("CI", "true")
	f, ok = requireDocker(t)
	if ok || f.skip != "" || !strings.Contains(f.fatal, "Docker Engine is required in CI (CI=true) but is not reachable") {
		t.Errorf("in CI: returned %v, skip %q, fatal %q; want a failure", ok, f.skip, f.fatal)
	}
}

func TestRequireDockerBadSetting(t *testing.T) {
	t.Setenv("DOCKER_HOST", "not a host")
	t.Setenv("CI", "")
	f, ok := requireDocker(t)
	if ok || f.skip != "" || !strings.Contains(f.fatal, "DOCKER_HOST") {
		t.Errorf("returned %v, skip %q, fatal %q; want a failure: a malformed setting is a broken install", ok, f.skip, f.fatal)
	}
}

func TestRequireDocker(t *testing.T) {
	cli := RequireDocker(t)
	if _, err := cli.Ping(context.Background()); err != nil {
		t.Fatalf("Ping after RequireDocker: %v", err)
	}
}

package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/docker/docker/client"
)

// RequireDocker returns a client of the Docker Engine that DOCKER_HOST (and
// the other DOCKER_* variables) name, or the local socket, once it has
// answered a ping. The client is closed when the test ends.
//
// If the engine does not answer, the test skips with a message saying so,
// or fails with CI=true: CI never passes by skipping the Docker tests.
func RequireDocker(t testing.TB) client.APIClient {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		// Only a malformed DOCKER_* setting gets here: a broken install.
		t.Fatalf("Docker client from DOCKER_HOST/DOCKER_* settings: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		if CI() {
			t.Fatalf("Docker Engine is required in CI (CI=true) but is not reachable at %s: %v", cli.DaemonHost(), err)
		}
		t.Skipf("Docker tests skipped: Docker Engine is not reachable at %s (%v). "+
			"Start Docker, make its socket readable by this user (group docker), or set DOCKER_HOST; "+
			"with CI=true this is a failure instead of a skip", cli.DaemonHost(), err)
	}
	// Negotiate now, so that every later call uses the engine's version.
	cli.NegotiateAPIVersion(ctx)
	return cli
}

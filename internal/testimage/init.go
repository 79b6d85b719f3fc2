package testimage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/envvault/envvault/runner"
)

var (
	initOnce sync.Once
	initProg []byte
	initErr  error
)

// Init builds cmd/envvault-init as the static Linux program of this
// machine's architecture (once per test process), writes it into a
// directory of t's, and returns its path: what runner.Options.InitPath
// takes. -trimpath and -buildvcs=false keep the bytes, and so the init's
// content hash, the same from one run to the next.
func Init(t testing.TB) string {
	t.Helper()
	initOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		initProg, initErr = buildInit(ctx)
	})
	if initErr != nil {
		t.Fatalf("build envvault-init: %v", initErr)
	}
	path := filepath.Join(t.TempDir(), "envvault-init")
	if err := os.WriteFile(path, initProg, 0o755); err != nil {
		t.Fatalf("write envvault-init: %v", err)
	}
	return path
}

func buildInit(ctx context.Context) ([]byte, error) {
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return nil, fmt.Errorf("locate the envvault-init source")
	}
	dir, err := os.MkdirTemp("", "envvault-init-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "envvault-init")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", out, "./cmd/envvault-init")
	cmd.Dir = filepath.Join(filepath.Dir(self), "..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ./cmd/envvault-init: %w\n%s", err, msg)
	}
	return os.ReadFile(out)
}

// NewRunner returns a runner on cli with opts and an init (Init) whose
// image and volume are named for t alone and removed when t ends, after
// the containers of cleanups registered later.
func NewRunner(t testing.TB, cli client.APIClient, opts runner.Options) *runner.Runner {
	t.Helper()
	var raw [6]byte
	_, _ = rand.Read(raw[:])
	opts.InitPath, opts.InitName = Init(t), "envvault-init-test-"+hex.EncodeToString(raw[:])
	r := runner.New(cli, opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := r.RemoveInit(ctx); err != nil {
			t.Errorf("remove the test's init: %v", err)
		}
	})
	return r
}

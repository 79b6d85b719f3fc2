package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/docker/docker/api/types/image"
	dockerclient "github.com/docker/docker/client"

	"github.com/envvault/envvault/runner"
)

// buildEnvInit builds envvault-init (static) into dir, as the README and
// the Dockerfile want it beside envvault, and puts dir first on PATH, so
// that Main run in process (whose executable is the test binary) finds it
// there, as a worker started by a test needs it for stdin env delivery.
func buildEnvInit(dir string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, initName), "../envvault-init")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ../envvault-init: %v\n%s", err, out)
	}
	return os.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// removeEnvInit removes the init image and volume that the workers of
// these tests prepared for the init in dir (named by its content hash, as
// the runner names them). One still in use by a concurrent run of the same
// build stays, and goes at a later run's end.
func removeEnvInit(dir string) {
	prog, err := os.ReadFile(filepath.Join(dir, initName))
	if err != nil {
		return
	}
	cli, err := dockerclient.NewClientWithOpts(dockerclient.FromEnv, dockerclient.WithAPIVersionNegotiation())
	if err != nil {
		return
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sum := sha256.Sum256(prog)
	hash := hex.EncodeToString(sum[:])[:16]
	_ = cli.VolumeRemove(ctx, runner.DefaultInitName+"-"+hash, false)
	_, _ = cli.ImageRemove(ctx, runner.DefaultInitName+":"+hash, image.RemoveOptions{PruneChildren: true})
}

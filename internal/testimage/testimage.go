// Package testimage builds the small images envvault's Docker tests run,
// through the Docker API and from scratch, so that no test pulls from a
// registry:
//
//   - envvault-test-env holds /envprobe, a static Go program (see
//     internal/testimage/envprobe) that prints its environment, echoes
//     values, sleeps or exits with a given code. It has no shell.
//   - envvault-test-shell holds busybox (Debian's busybox-static, from
//     /bin/busybox on the test machine) as /bin/busybox with a symlink per
//     applet, /bin/sh among them, and the same probe as /bin/envprobe.
//
// Both have a /tmp. Each image is tagged with a hash of its content, so a
// later test run reuses it instead of building again, and also :latest for
// people typing docker run by hand.
package testimage

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
)

// Image repositories; Build returns them tagged with a content hash.
const (
	EnvRepo   = "envvault-test-env"
	ShellRepo = "envvault-test-shell"
)

// Probe paths inside the images.
const (
	EnvProbe   = "/envprobe"     // in the env image
	ShellProbe = "/bin/envprobe" // in the shell image
)

// BusyboxPath is where the test machine keeps a static busybox
// (Debian's busybox-static package).
var BusyboxPath = "/bin/busybox"

// staleAfter is how old an image of an earlier content must be before Build
// removes it: younger ones may still serve a concurrent test process that
// runs other code.
const staleAfter = time.Hour

var (
	mu                sync.Mutex
	built             bool
	builtEnv, builtSh string
	buildErr          error
)

// Build returns the env and shell images, building them on the engine cli
// talks to the first time it is called in a test process (or finding them
// from an earlier run). It fails the test if they cannot be built.
func Build(t testing.TB, cli client.APIClient) (envImage, shellImage string) {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if !built {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		builtEnv, builtSh, buildErr = buildAll(ctx, cli)
		built = true
	}
	if buildErr != nil {
		t.Fatalf("build test images: %v", buildErr)
	}
	return builtEnv, builtSh
}

func buildAll(ctx context.Context, cli client.APIClient) (string, string, error) {
	v, err := cli.ServerVersion(ctx)
	if err != nil {
		return "", "", fmt.Errorf("ask the Docker Engine its platform: %w", err)
	}
	if v.Os != "linux" {
		return "", "", fmt.Errorf("the Docker Engine runs %s containers; the test images are linux only", v.Os)
	}
	probe, err := buildProbe(ctx, v.Arch)
	if err != nil {
		return "", "", err
	}
	busybox, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return "", "", fmt.Errorf("read static busybox for the shell image (apt-get install busybox-static): %w", err)
	}
	applets, err := busyboxApplets()
	if err != nil {
		return "", "", err
	}

	envCtx := []file{
		{name: "Dockerfile", body: []byte("FROM scratch\nCOPY rootfs/ /\nCMD [\"" + EnvProbe + "\", \"env\"]\n"), mode: 0o644},
		{name: "rootfs/tmp/", mode: 0o1777, dir: true},
		{name: "rootfs" + EnvProbe, body: probe, mode: 0o755},
	}
	shellCtx := []file{
		{name: "Dockerfile", body: []byte("FROM scratch\nCOPY rootfs/ /\nCMD [\"" + ShellProbe + "\", \"env\"]\n"), mode: 0o644},
		{name: "rootfs/tmp/", mode: 0o1777, dir: true},
		{name: "rootfs/bin/", mode: 0o755, dir: true},
		{name: "rootfs/bin/busybox", body: busybox, mode: 0o755},
		{name: "rootfs" + ShellProbe, body: probe, mode: 0o755},
	}
	for _, a := range applets {
		if a != "busybox" && a != "envprobe" {
			shellCtx = append(shellCtx, file{name: "rootfs/bin/" + a, link: "busybox"})
		}
	}

	envRef, err := ensure(ctx, cli, EnvRepo, envCtx)
	if err != nil {
		return "", "", err
	}
	shellRef, err := ensure(ctx, cli, ShellRepo, shellCtx)
	if err != nil {
		return "", "", err
	}
	return envRef, shellRef, nil
}

// buildProbe compiles envprobe as a static binary for the engine's
// architecture. -trimpath and -buildvcs=false keep the bytes, and so the
// image tag, the same from one run to the next.
func buildProbe(ctx context.Context, arch string) ([]byte, error) {
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return nil, fmt.Errorf("locate the envprobe source")
	}
	dir, err := os.MkdirTemp("", "envprobe-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "envprobe")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", out, "./envprobe")
	cmd.Dir = filepath.Dir(self)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build envprobe: %w\n%s", err, msg)
	}
	return os.ReadFile(out)
}

func busyboxApplets() ([]string, error) {
	out, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("list busybox applets: %w", err)
	}
	applets := strings.Fields(string(out))
	for _, a := range applets {
		if a == "sh" {
			return applets, nil
		}
	}
	return nil, fmt.Errorf("%s has no sh applet", BusyboxPath)
}

type file struct {
	name string
	body []byte
	mode int64
	dir  bool
	link string // symlink target
}

// ensure returns repo:<content hash>, building it from files unless the
// engine has it already.
func ensure(ctx context.Context, cli client.APIClient, repo string, files []file) (string, error) {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%o\x00%t\x00%s\x00%d\x00", f.name, f.mode, f.dir, f.link, len(f.body))
		h.Write(f.body)
	}
	ref := repo + ":" + hex.EncodeToString(h.Sum(nil))[:16]
	if _, err := cli.ImageInspect(ctx, ref); err == nil {
		// Another checkout on this engine (its probe binary differs by
		// its build path) may have moved :latest since this one was built.
		if err := cli.ImageTag(ctx, ref, repo+":latest"); err != nil {
			return "", fmt.Errorf("tag %s as %s:latest: %w", ref, repo, err)
		}
		return ref, nil
	}

	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}
		switch {
		case f.dir:
			hdr.Typeflag = tar.TypeDir
		case f.link != "":
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, f.link, 0o777
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return "", err
		}
		if _, err := tw.Write(f.body); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}

	resp, err := cli.ImageBuild(ctx, &tarball, build.ImageBuildOptions{
		Tags:        []string{ref, repo + ":latest"},
		Dockerfile:  "Dockerfile",
		Remove:      true,
		ForceRemove: true,
		Version:     build.BuilderV1, // needs no BuildKit session and no registry
		Labels:      map[string]string{"envvault.test": "true"},
	})
	if err != nil {
		return "", fmt.Errorf("build %s: %w", ref, err)
	}
	defer resp.Body.Close()
	var log bytes.Buffer
	if err := jsonmessage.DisplayJSONMessagesStream(resp.Body, &log, 0, false, nil); err != nil {
		return "", fmt.Errorf("build %s: %w\n%s", ref, err, log.String())
	}
	if _, err := cli.ImageInspect(ctx, ref); err != nil {
		return "", fmt.Errorf("build %s: the engine reports success but has no such image: %w\n%s", ref, err, log.String())
	}
	removeStale(ctx, cli, repo, ref)
	return ref, nil
}

// removeStale removes images of repo built from other content more than
// staleAfter ago, so that test runs do not pile images up. Failures are
// ignored: an image still used by a container stays until the next time.
func removeStale(ctx context.Context, cli client.APIClient, repo, keep string) {
	list, err := cli.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("reference", repo))})
	if err != nil {
		return
	}
	cutoff := time.Now().Add(-staleAfter).Unix()
	for _, img := range list {
		if img.Created > cutoff {
			continue
		}
		for _, tag := range img.RepoTags {
			if tag != keep && tag != repo+":latest" {
				_, _ = cli.ImageRemove(ctx, tag, image.RemoveOptions{PruneChildren: true})
			}
		}
	}
}

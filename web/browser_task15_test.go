package web_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	dockerclient "github.com/docker/docker/client"

	"github.com/chromedp/chromedp"

	"github.com/envvault/envvault/internal/testenv"
	"github.com/envvault/envvault/internal/testimage"
	"github.com/envvault/envvault/runner"
	"github.com/envvault/envvault/vault"
)

// dockerStack is a stack whose tasks run on the Docker Engine, in the
// test images (internal/testimage: built from scratch, nothing pulled),
// with the shell image's name. Its containers and init are removed when
// the test ends.
func dockerStack(t *testing.T) (*stack, string) {
	t.Helper()
	cli := testenv.RequireDocker(t)
	_, shell := testimage.Build(t, cli)
	var raw [6]byte
	_, _ = rand.Read(raw[:])
	r := runner.New(cli, runner.Options{StopTimeout: 5 * time.Second,
		InitPath: testimage.Init(t), InitName: "envvault-init-webtest-" + hex.EncodeToString(raw[:])})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := r.RemoveInit(ctx); err != nil {
			t.Errorf("remove the test's init: %v", err)
		}
	})
	s := newStack(t, stackOptions{runner: r})
	// Registered after the stack, so run before its worker stops: the
	// containers of the stack's user go, and only those.
	t.Cleanup(func() { removeContainers(t, cli, s.userID) })
	return s, shell
}

// removeContainers removes every container labelled with the user.
func removeContainers(t *testing.T, cli dockerclient.APIClient, userID string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", runner.LabelUser+"="+userID))})
	if err != nil {
		t.Errorf("list containers of %s: %v", userID, err)
		return
	}
	for _, c := range list {
		if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("remove container %s: %v", c.ID, err)
		}
	}
}

// A four-line PEM key typed into the dashboard reaches a real task's
// container byte for byte: the task prints the SHA-256 and length of
// what it received (the log masks the value itself), started from the
// Tasks page, its end followed by the task page.
func TestBrowserPEMReachesTask(t *testing.T) {
	const pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCcanaryTaskPEM\ntrailing spaces kept  \n-----END PRIVATE KEY-----\n"
	s, shell := dockerStack(t)
	ctx := context.Background()
	p, err := s.svc.CreateProfile(ctx, s.userID, vault.ProfileInput{Name: "printer", Image: shell,
		Command: []string{"/bin/sh", "-c", `printf '%s' "$TLS_KEY" | sha256sum; printf 'bytes=%s\n' "$(printf '%s' "$TLS_KEY" | wc -c)"`}})
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, s)
	b.do(chromedp.EmulateViewport(1280, 1000))
	b.signIn()
	b.do(chromedp.Click(chromedp.ID("add-secret")), chromedp.WaitVisible(chromedp.ID("add-secret-dialog")),
		chromedp.SendKeys(chromedp.ID("secret-name"), "TLS_KEY"),
		chromedp.SendKeys(chromedp.ID("secret-value"), pem),
		chromedp.Click(chromedp.CSS(`#add-secret-dialog button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-name="TLS_KEY"]`)))

	b.do(chromedp.Navigate(s.URL+"/tasks"), chromedp.WaitVisible(chromedp.ID("task-profile")),
		chromedp.SetValue(chromedp.ID("task-profile"), p.ID),
		chromedp.SendKeys(chromedp.ID("task-prompt"), "print the key's hash"),
		chromedp.Click(chromedp.CSS(`#start-task button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("task-status")))
	// The page follows the task and reloads when it ends.
	b.do(chromedp.WaitVisible(chromedp.CSS(`#task-status.succeeded, #task-status.failed`)))
	status, log := b.text("#task-status"), b.text("#log")
	sum := sha256.Sum256([]byte(pem))
	want := fmt.Sprintf("%x", sum)
	if status != "succeeded" || !strings.Contains(log, want) || !strings.Contains(log, fmt.Sprintf("bytes=%d", len(pem))) {
		t.Fatalf("task %s, log:\n%s\nwant the SHA-256 %s and bytes=%d of the PEM as typed", status, log, want, len(pem))
	}
	noCanary(t, s, map[string]*browser{"main": b}, "canaryTaskPEM", "trailing spaces kept")
}

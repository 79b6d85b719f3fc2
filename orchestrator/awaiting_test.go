package orchestrator_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

func isAwaiting(task *orchestrator.Task, _ string) bool {
	return task.Status == orchestrator.StatusAwaitingSecrets
}

// TestAwaitingSecrets runs tasks on the real Docker Engine whose profile
// requires names without a value: they wait in awaiting_secrets on one
// request of their profile; one answer releases both and their containers
// see the value; a secret created through the ordinary path releases a
// task too; an unanswered request expires and fails its task naming the
// name; a cancelled one cancels its task.
func TestAwaitingSecrets(t *testing.T) {
	f := newFixture(t, sqliteBackend(t).open(t), true)
	ctx := context.Background()
	o := orchestrator.New(orchestrator.Config{Vault: f.svc, Store: f.store, Runner: f.runner, Worker: "w-" + vault.NewID(""),
		Poll: 100 * time.Millisecond, SecretRequestTTL: time.Hour})
	f.run(o)
	profile := func(name string, required ...string) string {
		var req []vault.RequiredSecret
		for _, n := range required {
			req = append(req, vault.RequiredSecret{Name: n, Description: "the " + strings.ToLower(n)})
		}
		p, err := f.svc.CreateProfile(ctx, f.user, vault.ProfileInput{Name: name, Image: f.shellImage, RequiredSecrets: req,
			Command: []string{"/bin/sh", "-c", `echo "len=${#NEEDED}/${#OTHER}"`}})
		if err != nil {
			t.Fatal(err)
		}
		return p.ID
	}
	needs := profile("needs", "NEEDED")
	first, second := f.create(o, needs), f.create(o, needs)
	f.await(first.ID, "awaiting secrets", isAwaiting, o)
	f.await(second.ID, "awaiting secrets", isAwaiting, o)
	reqs, err := f.svc.SecretRequests(ctx, f.user)
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) != 1 || reqs[0].Status != vault.RequestPending || !slices.Equal(vault.RequiredNames(reqs[0].Names), []string{"NEEDED"}) ||
		!slices.Equal(slices.Sorted(slices.Values(reqs[0].TaskIDs)), slices.Sorted(slices.Values([]string{first.ID, second.ID}))) {
		t.Fatalf("requests %+v, want one pending for NEEDED holding both tasks", reqs)
	}
	answered, err := f.svc.AnswerSecretRequest(ctx, f.user, reqs[0].ID, map[string]string{"NEEDED": "answer-value-12"}, vault.ScopeAgents)
	if err != nil {
		t.Fatal(err)
	}
	o.ReleaseAnswered(ctx, answered)
	succeeded := func(task *orchestrator.Task, logs string) bool {
		return task.Status == orchestrator.StatusSucceeded && strings.Contains(logs, "len=15/0")
	}
	f.await(first.ID, "succeeded with the value", succeeded, o)
	f.await(second.ID, "succeeded with the value", succeeded, o)

	// Any route: a secret created as usual releases the task at the next poll.
	other := profile("other", "OTHER")
	third := f.create(o, other)
	f.await(third.ID, "awaiting secrets", isAwaiting, o)
	f.secret("OTHER", "other-value")
	f.await(third.ID, "succeeded", func(task *orchestrator.Task, logs string) bool {
		return task.Status == orchestrator.StatusSucceeded && strings.Contains(logs, "/11")
	}, o)
	if reqs, _ := f.svc.SecretRequests(ctx, f.user); reqs[0].Status != vault.RequestAnswered {
		t.Errorf("the satisfied request is %s, want answered", reqs[0].Status)
	}

	// Cancelled: its task ends cancelled.
	cancelled := f.create(o, profile("cancelled", "NEVER_GIVEN"))
	f.await(cancelled.ID, "awaiting secrets", isAwaiting, o)
	r := f.pendingRequest()
	closed, err := f.svc.CancelSecretRequest(ctx, f.user, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	o.CancelWaiting(ctx, closed)
	if got := f.task(cancelled.ID); got.Status != orchestrator.StatusCancelled || !strings.Contains(got.Error, r.ID) {
		t.Errorf("after the cancel: %s %q", got.Status, got.Error)
	}
}

// TestSecretRequestExpires: a request nobody answers expires after the
// configured time and fails its task with an error naming the names.
func TestSecretRequestExpires(t *testing.T) {
	f := newFixture(t, sqliteBackend(t).open(t), true)
	ctx := context.Background()
	o := orchestrator.New(orchestrator.Config{Vault: f.svc, Store: f.store, Runner: f.runner, Worker: "w-" + vault.NewID(""),
		Poll: 100 * time.Millisecond, SecretRequestTTL: 300 * time.Millisecond})
	f.run(o)
	p, err := f.svc.CreateProfile(ctx, f.user, vault.ProfileInput{Name: "p", Image: f.shellImage, Command: []string{"/bin/true"},
		RequiredSecrets: []vault.RequiredSecret{{Name: "NEVER_GIVEN"}}})
	if err != nil {
		t.Fatal(err)
	}
	task := f.create(o, p.ID)
	failed := f.await(task.ID, "failed", isDone, o)
	if failed.Status != orchestrator.StatusFailed || !strings.Contains(failed.Error, "expired: no value was given for NEVER_GIVEN") {
		t.Errorf("after the expiry: %s %q", failed.Status, failed.Error)
	}
	reqs, _ := f.svc.SecretRequests(ctx, f.user)
	if len(reqs) != 1 || reqs[0].Status != vault.RequestExpired {
		t.Errorf("requests %+v, want one expired", reqs)
	}
}

func (f *fixture) pendingRequest() *vault.SecretRequest {
	f.t.Helper()
	reqs, err := f.svc.SecretRequests(context.Background(), f.user)
	if err != nil || len(reqs) == 0 || reqs[0].Status != vault.RequestPending {
		f.t.Fatalf("no pending request: %v, %v", reqs, err)
	}
	return reqs[0]
}

package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/envvault/envvault/vault"
)

// taskAskTests are the suite of running tasks' asks (issue 13 item 3): a
// request's asks written and read back by every read, beside its waiting
// tasks.
var taskAskTests = []test{
	{name: "AsksRoundTrip", fn: testTaskAsksRoundTrip},
}

// testTaskAsksRoundTrip: an ask opens a request holding it (no waiting
// task); a waiting task joins it without touching the ask; a second ask of
// the same attempt adds its names and replaces its message; another
// attempt's ask is a new entry; every read gives the asks back exactly
// (the user's, the profile's pending one, the worker's cross-user ones);
// the audit event names the task, attempt and names, never the message.
func testTaskAsksRoundTrip(t *testing.T, f *fixture) {
	alice, bob := f.mustUser("alice"), f.mustUser("bob")
	p := f.mustProfile(alice, "p")
	ask := func(attempt int, msg string, names ...string) *vault.SecretRequest {
		t.Helper()
		list := make([]vault.RequiredSecret, len(names))
		for i, n := range names {
			list[i] = vault.RequiredSecret{Name: n, Description: "for " + n}
		}
		r, err := f.svc.AskSecretRequest(f.ctx, alice, p.ID, "tsk_1", attempt, list, msg, time.Hour)
		if err != nil {
			t.Fatalf("ask: %v", err)
		}
		return r
	}
	r := ask(1, "first message\nwith a line break", "OPENAI_API_KEY")
	if len(r.TaskIDs) != 0 || len(r.Asks) != 1 || r.Asks[0].TaskID != "tsk_1" || r.Asks[0].Attempt != 1 ||
		!slices.Equal(r.Asks[0].Names, []string{"OPENAI_API_KEY"}) || r.Asks[0].Message != "first message\nwith a line break" || !r.AskedBy("tsk_1") {
		t.Fatalf("asked: %+v", r)
	}
	f.mustOpenRequest(alice, p.ID, "tsk_2", time.Hour, "WAITED")
	ask(1, "second message", "GITHUB_TOKEN")
	r = ask(2, "", "OPENAI_API_KEY")
	if !slices.Equal(r.TaskIDs, []string{"tsk_2"}) || len(r.Asks) != 2 ||
		!slices.Equal(r.Asks[0].Names, []string{"GITHUB_TOKEN", "OPENAI_API_KEY"}) || r.Asks[0].Message != "second message" ||
		r.Asks[1].Attempt != 2 || r.Asks[1].Message != "" || r.AskedBy("tsk_2") ||
		!slices.Equal(vault.RequiredNames(r.Names), []string{"GITHUB_TOKEN", "OPENAI_API_KEY", "WAITED"}) {
		t.Fatalf("after the joins: %+v", r)
	}
	got, err := f.svc.SecretRequest(f.ctx, alice, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameRequest(t, got, r)
	pending, err := f.svc.PendingSecretRequests(f.ctx, 10)
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending: %v, %v", pending, err)
	}
	sameRequest(t, pending[0], r)
	if list, err := f.svc.SecretRequests(f.ctx, bob); err != nil || len(list) != 0 {
		t.Errorf("bob sees %v, %v", list, err)
	}
	page, err := f.svc.AuditEvents(f.ctx, alice, vault.AuditOptions{Action: vault.ActionSecretRequestOpen, Limit: 10})
	if err != nil || len(page.Items) != 4 {
		t.Fatalf("open events: %v, %v", page.Items, err)
	}
	last := page.Items[0]
	if last.Details["by"] != "task" || last.Details["task_id"] != "tsk_1" || fmt.Sprint(last.Details["attempt"]) != "2" {
		t.Errorf("the ask's event: %+v", last.Details)
	}
	for _, ev := range page.Items {
		for _, v := range ev.Details {
			if s, ok := v.(string); ok && (s == "second message" || s == "first message\nwith a line break") {
				t.Errorf("the audit trail holds an ask's message: %+v", ev.Details)
			}
		}
	}
}

package storetest

import (
	"time"

	"github.com/envvault/envvault/vault"
)

// secretRequests opens, cancels, answers and expires secret requests of p:
// one event each (the answer's value written as an import's secret.create
// first), names and ids in the details, never a value; then a worker's
// push restart of a task of p.
func (s *auditScript) secretRequests(p *vault.Profile) {
	t, alice, svc := s.t, s.alice, s.f.svc
	want := []vault.RequiredSecret{{Name: "NEEDED", Description: "what to give"}}
	c, a := s.next()
	r1, err := svc.OpenSecretRequest(c.ctx, alice, p.ID, "tsk_000000000000000000002", want, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s.expect(wantEvent{vault.ActionSecretRequestOpen, vault.TargetSecretRequest, r1.ID, a,
		map[string]any{"profile_id": p.ID, "task_id": "tsk_000000000000000000002", "names": []string{"NEEDED"}}})
	c, a = s.next()
	if _, err := svc.CancelSecretRequest(c.ctx, alice, r1.ID); err != nil {
		t.Fatal(err)
	}
	s.expect(wantEvent{vault.ActionSecretRequestCancel, vault.TargetSecretRequest, r1.ID, a,
		map[string]any{"profile_id": p.ID, "names": []string{"NEEDED"}, "task_ids": []string{"tsk_000000000000000000002"}}})

	c, a = s.next()
	r2, err := svc.OpenSecretRequest(c.ctx, alice, p.ID, "tsk_000000000000000000003", want, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s.expect(wantEvent{vault.ActionSecretRequestOpen, vault.TargetSecretRequest, r2.ID, a,
		map[string]any{"profile_id": p.ID, "task_id": "tsk_000000000000000000003", "names": []string{"NEEDED"}}})
	c, a = s.next()
	if _, err := svc.AnswerSecretRequest(c.ctx, alice, r2.ID, map[string]string{"NEEDED": value("needed")}, vault.ScopeAgents); err != nil {
		t.Fatal(err)
	}
	var created string
	for _, sec := range c.mustAllSecrets(alice) {
		if sec.Name == "NEEDED" {
			created = sec.ID
		}
	}
	s.expect(
		wantEvent{vault.ActionSecretCreate, vault.TargetSecret, created, a,
			map[string]any{"name": "NEEDED", "scope": "agents", "profile_ids": []string{p.ID}, "version": 1, "import_line": 1}},
		wantEvent{vault.ActionSecretRequestAnswer, vault.TargetSecretRequest, r2.ID, a,
			map[string]any{"profile_id": p.ID, "names": []string{"NEEDED"}, "scope": "agents"}})

	// Expiry is the worker's, acting for the user without a token.
	c, a = s.next()
	r3, err := svc.OpenSecretRequest(c.ctx, alice, p.ID, "tsk_000000000000000000004",
		[]vault.RequiredSecret{{Name: "LATER"}}, time.Microsecond)
	if err != nil {
		t.Fatal(err)
	}
	s.expect(wantEvent{vault.ActionSecretRequestOpen, vault.TargetSecretRequest, r3.ID, a,
		map[string]any{"profile_id": p.ID, "task_id": "tsk_000000000000000000004", "names": []string{"LATER"}}})
	worker := vault.Actor{UserID: alice}
	if _, err := svc.ExpireSecretRequest(vault.WithActor(s.f.ctx, worker), alice, r3.ID); err != nil {
		t.Fatal(err)
	}
	s.expect(wantEvent{vault.ActionSecretRequestExpire, vault.TargetSecretRequest, r3.ID, worker,
		map[string]any{"profile_id": p.ID, "names": []string{"LATER"}, "task_ids": []string{"tsk_000000000000000000004"}}})

	// A worker restarts a task whose secrets changed (orchestrator/push.go).
	if err := svc.RecordPushRestart(vault.WithActor(s.f.ctx, worker), alice, "tsk_000000000000000000005", p.ID, 2, []string{"NEEDED"}); err != nil {
		t.Fatal(err)
	}
	s.expect(wantEvent{vault.ActionTaskPushRestart, vault.TargetTask, "tsk_000000000000000000005", worker,
		map[string]any{"profile_id": p.ID, "attempt": 2, "names": []string{"NEEDED"}}})
}

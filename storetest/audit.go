package storetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envvault/envvault/vault"
)

// auditTests are the audit trail's suite: every action the Service audits
// appears exactly once, with its actor, in its own transaction; failed
// writes leave no event; lists, prune and concurrent appends keep the
// chain verifiable. The database refuses changes to the trail, VerifyAudit
// reports, at the right seq, every change made anyway (a changed, deleted
// or reordered row), and a write whose event cannot be appended does not
// happen.
var auditTests = []test{
	{name: "PruneInBatches", fn: testAuditPruneInBatches, serial: true},
	{name: "EveryActionOnce", fn: testAuditEveryActionOnce},
	{name: "FailedWritesLeaveNoEvent", opts: vault.Options{MaxSecrets: 2}, fn: testAuditFailedWritesLeaveNoEvent},
	{name: "List", fn: testAuditList},
	{name: "Prune", fn: testAuditPrune},
	{name: "ConcurrentAppends", opts: vault.Options{AuthLimits: vault.AuthLimits{Off: true}}, fn: testAuditConcurrentAppends},
	{name: "Guarded", fn: testAuditGuarded},
	{name: "Tampered", tests: auditTamperedTests()},
	{name: "FailedAppendRollsBack", fn: testAuditFailedAppendRollsBack},
}

// tokenID returns the id part of an API token.
func tokenID(t *testing.T, token string) string {
	t.Helper()
	id, _, ok := strings.Cut(token, ".")
	if !ok {
		t.Fatalf("token without a dot")
	}
	return id
}

// actor returns the actor of a user's n-th request, with a request id and
// client address of its own.
func (f *fixture) actor(userID, tokenID string, n int) vault.Actor {
	return vault.Actor{UserID: userID, TokenID: tokenID, RequestID: fmt.Sprintf("req-%02d", n), ClientAddr: fmt.Sprintf("192.0.2.%d", n)}
}

// chain returns every event of the store in order, failing on a gap.
func chain(t *testing.T, st vault.AuditStore) []*vault.AuditEvent {
	t.Helper()
	var out []*vault.AuditEvent
	var after int64
	for {
		list, err := st.AuditChain(t.Context(), after, 100)
		if err != nil {
			t.Fatalf("read audit chain: %v", err)
		}
		if len(list) == 0 {
			return out
		}
		out = append(out, list...)
		after = list[len(list)-1].Seq
	}
}

// mustVerify verifies the chain and fails on a break; it returns how many
// events were checked.
func mustVerify(t *testing.T, st vault.AuditStore) int64 {
	t.Helper()
	rep, err := vault.VerifyAudit(t.Context(), st)
	if err != nil {
		t.Fatalf("verify audit: %v", err)
	}
	if rep.Break != nil {
		t.Fatalf("audit chain broken: %v", rep.Break)
	}
	return rep.Events
}

// wantBreak verifies the chain and fails unless it breaks at seq with a
// reason containing want.
func wantBreak(t *testing.T, st vault.AuditStore, seq int64, want string) {
	t.Helper()
	rep, err := vault.VerifyAudit(t.Context(), st)
	if err != nil {
		t.Fatalf("verify audit: %v", err)
	}
	if rep.Break == nil {
		t.Fatalf("verify found the chain intact (%d events), want a break at seq %d (%s)", rep.Events, seq, want)
	}
	if rep.Break.Seq != seq || !strings.Contains(rep.Break.Reason, want) {
		t.Fatalf("verify: break %v, want at seq %d with %q", rep.Break, seq, want)
	}
}

// noSecretsIn fails if any event, however printed, holds a secret value or
// a token's secret part.
func noSecretsIn(t *testing.T, events []*vault.AuditEvent, tokens ...string) {
	t.Helper()
	for _, e := range events {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b) + fmt.Sprintf("%+v %#v", e, e.Details)
		if strings.Contains(text, canary) {
			t.Errorf("event %d (%s) holds a secret value", e.Seq, e.Action)
		}
		for _, tok := range tokens {
			if _, secret, _ := strings.Cut(tok, "."); secret != "" && strings.Contains(text, secret) {
				t.Errorf("event %d (%s) holds a token", e.Seq, e.Action)
			}
		}
	}
}

// wantEvent is what an event must be; Details are checked one key at a
// time, as their JSON.
type wantEvent struct {
	action, targetType, targetID string
	actor                        vault.Actor
	details                      map[string]any
}

func checkEvents(t *testing.T, got []*vault.AuditEvent, want []wantEvent) {
	t.Helper()
	if len(got) != len(want) {
		var acts []string
		for _, e := range got {
			acts = append(acts, e.Action+" "+e.TargetID)
		}
		t.Fatalf("got %d events, want %d:\n  %s", len(got), len(want), strings.Join(acts, "\n  "))
	}
	for i, w := range want {
		e := got[i]
		if e.Seq != int64(i+1) {
			t.Errorf("event %d has seq %d", i+1, e.Seq)
		}
		if e.Action != w.action || e.TargetType != w.targetType || e.TargetID != w.targetID {
			t.Errorf("event %d: %s %s %s, want %s %s %s", e.Seq, e.Action, e.TargetType, e.TargetID, w.action, w.targetType, w.targetID)
		}
		if e.Actor != w.actor {
			t.Errorf("event %d (%s): actor %+v, want %+v", e.Seq, e.Action, e.Actor, w.actor)
		}
		if e.Time.Location() != time.UTC || e.Time.Nanosecond()%1000 != 0 || e.Time.IsZero() {
			t.Errorf("event %d: time %s is not UTC whole microseconds", e.Seq, e.Time)
		}
		for k, v := range w.details {
			gj, _ := json.Marshal(e.Details[k])
			wj, _ := json.Marshal(v)
			if !bytes.Equal(gj, wj) {
				t.Errorf("event %d (%s): details[%s] = %s, want %s", e.Seq, e.Action, k, gj, wj)
			}
		}
	}
}

func testAuditFailedWritesLeaveNoEvent(t *testing.T, f *fixture) {
	alice := f.mustUser("alice")
	bob := f.mustUser("bob")
	p := f.mustProfile(alice, "agent")
	sec := f.mustSecret(alice, "ONE", value("1"))
	f.mustSecret(alice, "TWO", value("2"), p)
	before := chain(t, f.store)

	ctx := f.ctx
	for _, err := range []error{
		func() error {
			_, err := f.svc.CreateSecret(ctx, alice, vault.SecretInput{Name: "THREE", Value: value("3")})
			return err
		}(), // quota
		func() error {
			_, err := f.svc.CreateSecret(ctx, bob, vault.SecretInput{Name: "bad name", Value: value("x")})
			return err
		}(),
		func() error {
			_, err := f.svc.CreateSecret(ctx, bob, vault.SecretInput{Name: "X", Value: value("x"), Scope: vault.ScopeAgents, ProfileIDs: []string{p.ID}})
			return err
		}(),
		func() error {
			_, err := f.svc.UpdateSecret(ctx, bob, sec.ID, vault.SecretPatch{Value: ptr(value("4"))})
			return err
		}(),
		func() error {
			_, err := f.svc.UpdateSecret(ctx, alice, sec.ID, vault.SecretPatch{Name: ptr("TWO"), Scope: ptr(vault.ScopeAgents), ProfileIDs: []string{p.ID}, SetProfileIDs: true})
			return err
		}(),
		f.svc.DeleteSecret(ctx, bob, sec.ID),
		f.svc.DeleteSecret(ctx, alice, "sec_"+strings.Repeat("y", 21)),
		func() error {
			_, err := f.svc.CreateProfile(ctx, alice, vault.ProfileInput{Name: "agent", Image: "x"})
			return err
		}(),
		func() error {
			_, err := f.svc.UpdateProfile(ctx, bob, p.ID, vault.ProfilePatch{Image: ptr("y")})
			return err
		}(),
		f.svc.DeleteProfile(ctx, bob, p.ID),
		func() error { _, err := f.svc.CreateToken(ctx, "usr_"+strings.Repeat("z", 21)); return err }(),
		func() error {
			_, err := f.svc.ReleaseForTask(ctx, bob, vault.TaskRelease{TaskID: "tsk_1", ProfileID: p.ID, Attempt: 1})
			return err
		}(),
	} {
		if err == nil {
			t.Fatalf("a refused write succeeded")
		}
		noCanary(t, err)
	}
	after := chain(t, f.store)
	if len(after) != len(before) {
		t.Fatalf("refused writes left %d events: %s", len(after)-len(before), after[len(before)].Action)
	}
	mustVerify(t, f.store)
}

func testAuditPrune(t *testing.T, f *fixture) {
	alice := f.mustUser("alice")
	for i := range 6 {
		f.mustSecret(alice, fmt.Sprintf("S%d", i), value("v"))
	}
	events := chain(t, f.store)
	total := int64(len(events))

	// Nothing is older than the first event.
	n, head, err := f.store.PruneAudit(f.ctx, events[0].Time)
	if err != nil || n != 0 || head.FirstSeq != 1 {
		t.Fatalf("prune before the first event: %d, %+v, %v", n, head, err)
	}
	// Prune everything before the fourth event.
	cut := events[3]
	n, head, err = f.store.PruneAudit(f.ctx, cut.Time)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 || head.FirstSeq != cut.Seq || !bytes.Equal(head.AnchorHash, cut.PrevHash) || head.Seq != total {
		t.Fatalf("prune before seq %d: deleted %d, head %+v", cut.Seq, n, head)
	}
	if got := mustVerify(t, f.store); got != total-3 {
		t.Errorf("verified %d events after prune, want %d", got, total-3)
	}
	if kept := chain(t, f.store); kept[0].Seq != cut.Seq {
		t.Errorf("oldest kept is seq %d, want %d", kept[0].Seq, cut.Seq)
	}
	// The chain goes on from its head.
	f.mustSecret(alice, "AFTER", value("v"))
	if got := mustVerify(t, f.store); got != total-2 {
		t.Errorf("verified %d events, want %d", got, total-2)
	}
	// Prune all of it: the anchor is the head, and the next event follows.
	last := chain(t, f.store)
	n, head, err = f.store.PruneAudit(f.ctx, last[len(last)-1].Time.Add(time.Hour))
	if err != nil || n != int64(len(last)) || head.FirstSeq != head.Seq+1 || !bytes.Equal(head.AnchorHash, head.Hash) {
		t.Fatalf("prune all: %d, %+v, %v", n, head, err)
	}
	if got := mustVerify(t, f.store); got != 0 {
		t.Errorf("verified %d events in an empty chain", got)
	}
	f.mustSecret(alice, "LAST", value("v"))
	if got := mustVerify(t, f.store); got != 1 {
		t.Errorf("verified %d events, want 1", got)
	}
	if e := chain(t, f.store); len(e) != 1 || e[0].Seq != total+2 || !bytes.Equal(e[0].PrevHash, head.Hash) {
		t.Errorf("the event after a full prune does not follow the old head: %+v", e)
	}
}

func testAuditConcurrentAppends(t *testing.T, f *fixture) {
	users := []string{f.mustUser("a"), f.mustUser("b"), f.mustUser("c")}
	const perUser = 8
	var wg sync.WaitGroup
	errs := make(chan error, len(users)*perUser*2)
	for _, u := range users {
		for i := range perUser {
			wg.Go(func() {
				_, err := f.svc.CreateSecret(f.ctx, u, vault.SecretInput{Name: fmt.Sprintf("S%d", i), Value: value("v")})
				errs <- err
			})
			wg.Go(func() {
				_, _, err := f.svc.Authenticate(f.ctx, "tok_"+strings.Repeat("c", 21)+".x")
				if vault.ErrorCode(err) == vault.EUNAUTHORIZED {
					err = nil
				}
				if err == nil {
					// Failed sign-ins are written by flushes, which here
					// run beside the writes.
					err = f.svc.FlushAuthFailures(f.ctx)
				}
				errs <- err
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Two events per user (user, token), one per write, and the failed
	// sign-ins, counted in as many events as flushes found some.
	events := chain(t, f.store)
	var others, failed int
	for _, e := range events {
		if e.Action == vault.ActionAuthFailed {
			n, _ := strconv.Atoi(fmt.Sprint(e.Details["failed"]))
			failed += n
		} else {
			others++
		}
	}
	if others != len(users)*2+len(users)*perUser || failed != len(users)*perUser {
		t.Errorf("%d events but failed sign-ins, want %d; %d failed sign-ins counted, want %d",
			others, len(users)*2+len(users)*perUser, failed, len(users)*perUser)
	}
	if got := mustVerify(t, f.store); got != int64(len(events)) {
		t.Errorf("verified %d events, want %d", got, len(events))
	}
}

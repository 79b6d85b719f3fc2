package storetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
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
	{name: "ConcurrentAppends", fn: testAuditConcurrentAppends},
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

func testAuditList(t *testing.T, f *fixture) {
	alice := f.mustUser("alice")
	bob := f.mustUser("bob")
	a1 := f.mustSecret(alice, "A1", value("1"))
	f.mustSecret(bob, "B1", value("1"))
	a2 := f.mustSecret(alice, "A2", value("2"))
	f.mustUpdateSecret(alice, a1.ID, vault.SecretPatch{Value: ptr(value("1b"))})
	f.mustProfile(bob, "bob's")
	f.mustUpdateSecret(alice, a1.ID, vault.SecretPatch{Description: ptr("d")})
	if _, _, err := f.svc.Authenticate(f.ctx, "tok_"+strings.Repeat("q", 21)+".x"); vault.ErrorCode(err) != vault.EUNAUTHORIZED {
		t.Fatal(err)
	}
	if err := f.svc.DeleteSecret(f.ctx, alice, a2.ID); err != nil {
		t.Fatal(err)
	}

	var mine []*vault.AuditEvent
	for _, e := range chain(t, f.store) {
		if e.UserID == alice {
			mine = append(mine, e)
		}
	}
	slices.Reverse(mine)
	seqs := auditSeqs
	list := func(o vault.AuditOptions) []*vault.AuditEvent { return f.mustAuditList(alice, o) }
	filter := func(keep func(e *vault.AuditEvent) bool) []int64 {
		return auditSeqs(slices.DeleteFunc(slices.Clone(mine), func(e *vault.AuditEvent) bool { return !keep(e) }))
	}

	if got, want := seqs(list(vault.AuditOptions{})), seqs(mine); !slices.Equal(got, want) {
		t.Errorf("alice's events: %v, want %v (hers only, newest first)", got, want)
	}
	if got, want := seqs(list(vault.AuditOptions{Limit: 2})), seqs(mine); !slices.Equal(got, want) {
		t.Errorf("alice's events by twos: %v, want %v", got, want)
	}
	if got, want := seqs(list(vault.AuditOptions{Action: vault.ActionSecretUpdate, Limit: 1})),
		filter(func(e *vault.AuditEvent) bool { return e.Action == vault.ActionSecretUpdate }); !slices.Equal(got, want) || len(want) != 2 {
		t.Errorf("secret.update: %v, want %v", got, want)
	}
	if got, want := seqs(list(vault.AuditOptions{TargetID: a1.ID})),
		filter(func(e *vault.AuditEvent) bool { return e.TargetID == a1.ID }); !slices.Equal(got, want) || len(want) != 3 {
		t.Errorf("target %s: %v, want %v", a1.ID, got, want)
	}
	mid := mine[len(mine)/2]
	if got, want := seqs(list(vault.AuditOptions{Since: mid.Time})),
		filter(func(e *vault.AuditEvent) bool { return !e.Time.Before(mid.Time) }); !slices.Equal(got, want) {
		t.Errorf("since %s: %v, want %v", mid.Time, got, want)
	}
	if got, want := seqs(list(vault.AuditOptions{Until: mid.Time, Limit: 1})),
		filter(func(e *vault.AuditEvent) bool { return e.Time.Before(mid.Time) }); !slices.Equal(got, want) {
		t.Errorf("until %s: %v, want %v", mid.Time, got, want)
	}
	if got := list(vault.AuditOptions{TargetID: a1.ID, Action: vault.ActionSecretDelete}); len(got) != 0 {
		t.Errorf("a1 deleted: %v, want none", seqs(got))
	}
	// Bob sees none of alice's, and nobody sees the failed sign-in.
	page, err := f.svc.AuditEvents(f.ctx, bob, vault.AuditOptions{TargetID: a1.ID})
	if err != nil || len(page.Items) != 0 {
		t.Errorf("bob filtering on alice's secret: %v, %v", seqs(page.Items), err)
	}
	page, err = f.svc.AuditEvents(f.ctx, bob, vault.AuditOptions{Action: vault.ActionAuthFailed})
	if err != nil || len(page.Items) != 0 {
		t.Errorf("bob's failed sign-ins: %v, %v", seqs(page.Items), err)
	}

	f.wantAuditOptionsRefused(alice, mid)

}

// auditSeqs returns the seqs of list, in its order.
func auditSeqs(list []*vault.AuditEvent) []int64 {
	out := make([]int64, len(list))
	for i, e := range list {
		out[i] = e.Seq
	}
	return out
}

// mustAuditList walks every page of the user's events listed with o.
func (f *fixture) mustAuditList(userID string, o vault.AuditOptions) []*vault.AuditEvent {
	t := f.t
	t.Helper()
	var out []*vault.AuditEvent
	for range 100 {
		page, err := f.svc.AuditEvents(f.ctx, userID, o)
		if err != nil {
			t.Fatalf("list %+v: %v", o, err)
		}
		if len(page.Items) > max(o.Limit, 1) && o.Limit > 0 {
			t.Fatalf("page of %d items, limit %d", len(page.Items), o.Limit)
		}
		out = append(out, page.Items...)
		if page.NextCursor == "" {
			return out
		}
		o.Cursor = page.NextCursor
	}
	t.Fatal("pages never end")
	return nil
}

// wantAuditOptionsRefused checks that bad list options are refused, each
// naming its field; mid is one of alice's events.
func (f *fixture) wantAuditOptionsRefused(alice string, mid *vault.AuditEvent) {
	t := f.t
	t.Helper()
	f.mustSecret(alice, "A3", value("3"))
	secrets, err := f.svc.Secrets(f.ctx, alice, vault.ListOptions{Limit: 1})
	if err != nil || secrets.NextCursor == "" {
		t.Fatalf("secrets page: %v", err)
	}
	for _, tc := range []struct {
		o     vault.AuditOptions
		field string
	}{
		{vault.AuditOptions{Action: "secret.read"}, "action"},
		{vault.AuditOptions{Cursor: "nope"}, "cursor"},
		{vault.AuditOptions{Cursor: secrets.NextCursor}, "cursor"},
		{vault.AuditOptions{Limit: vault.MaxPageLimit + 1}, "limit"},
		{vault.AuditOptions{TargetID: strings.Repeat("x", 200)}, "target"},
		{vault.AuditOptions{TargetID: "a\x00b"}, "target"},
		{vault.AuditOptions{Since: mid.Time, Until: mid.Time}, "until"},
	} {
		_, err := f.svc.AuditEvents(f.ctx, alice, tc.o)
		wantErr(t, err, vault.EINVALID, tc.field)
	}
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
	// Two events per user (user, token), then one per write and sign-in.
	want := int64(len(users)*2 + len(users)*perUser*2)
	if got := mustVerify(t, f.store); got != want {
		t.Errorf("verified %d events, want %d", got, want)
	}
}

// seed makes a trail of a few events of two users.
func seedAudit(t *testing.T, f *fixture) []*vault.AuditEvent {
	t.Helper()
	alice := f.mustUser("alice")
	for i := range 3 {
		f.mustSecret(alice, fmt.Sprintf("S%d", i), value("v"))
	}
	return chain(t, f.store)
}

func testAuditGuarded(t *testing.T, f *fixture) {
	events := seedAudit(t, f)
	for _, q := range []string{
		`UPDATE audit_events SET target_id = 'forged' WHERE seq = 2`,
		`DELETE FROM audit_events WHERE seq = 2`,
		`DELETE FROM audit_events`,
		`UPDATE audit_head SET seq = 1`,
		`DELETE FROM audit_head`,
	} {
		if _, err := f.h.Exec(f.ctx, q); err == nil {
			t.Errorf("the database let %q through", q)
		}
	}
	last := events[len(events)-1]
	// An insert must follow the head.
	const forged = `INSERT INTO audit_events (seq, time, action, prev_hash, hash)
		VALUES (?, (SELECT time FROM audit_events WHERE seq = 1), 'secret.create', ?, ?)`
	if _, err := f.h.Exec(f.ctx, forged,
		last.Seq+2, last.Hash, bytes.Repeat([]byte{1}, 32)); err == nil {
		t.Errorf("the database took a row after a gap")
	}
	if _, err := f.h.Exec(f.ctx, forged,
		last.Seq+1, events[0].Hash, bytes.Repeat([]byte{1}, 32)); err == nil {
		t.Errorf("the database took a row that does not follow the head's hash")
	}
	mustVerify(t, f.store)
}

// auditTamperedTests each change the trail behind the store's back in one
// way and check that VerifyAudit reports it, at the seq given.
func auditTamperedTests() []test {
	var tests []test
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, h Harness, events []*vault.AuditEvent)
		seq    int64
		want   string
	}{
		{"changed target", func(t *testing.T, h Harness, _ []*vault.AuditEvent) {
			mustExec(t, h, `UPDATE audit_events SET target_id = 'sec_forged' WHERE seq = 3`)
		}, 3, "content changed"},
		{"changed details", func(t *testing.T, h Harness, _ []*vault.AuditEvent) {
			mustExec(t, h, `UPDATE audit_events SET details = '{"name":"OTHER","profile_ids":[],"scope":"all","version":1}' WHERE seq = 4`)
		}, 4, "content changed"},
		{"changed user", func(t *testing.T, h Harness, _ []*vault.AuditEvent) {
			mustExec(t, h, `UPDATE audit_events SET user_id = NULL WHERE seq = 5`)
		}, 5, "content changed"},
		{"rewritten with its hash recomputed", func(t *testing.T, h Harness, events []*vault.AuditEvent) {
			e := *events[2]
			e.TargetID = "sec_forged"
			sum, err := e.ComputeHash()
			if err != nil {
				t.Fatal(err)
			}
			mustExec(t, h, `UPDATE audit_events SET target_id = 'sec_forged', hash = ? WHERE seq = 3`, sum)
		}, 4, "prev_hash is not the hash of seq 3"},
		{"deleted in the middle", func(t *testing.T, h Harness, _ []*vault.AuditEvent) {
			mustExec(t, h, `DELETE FROM audit_events WHERE seq = 3`)
		}, 3, "missing"},
		{"two deleted in the middle", func(t *testing.T, h Harness, _ []*vault.AuditEvent) {
			mustExec(t, h, `DELETE FROM audit_events WHERE seq IN (3, 4)`)
		}, 3, "rows 3 to 4 are missing"},
		{"deleted first", func(t *testing.T, h Harness, _ []*vault.AuditEvent) {
			mustExec(t, h, `DELETE FROM audit_events WHERE seq = 1`)
		}, 1, "missing"},
		{"deleted last", func(t *testing.T, h Harness, events []*vault.AuditEvent) {
			mustExec(t, h, `DELETE FROM audit_events WHERE seq = ?`, events[len(events)-1].Seq)
		}, 5, "last row appended"},
		{"reordered", func(t *testing.T, h Harness, _ []*vault.AuditEvent) {
			mustExec(t, h, `UPDATE audit_events SET seq = 1000003 WHERE seq = 3`)
			mustExec(t, h, `UPDATE audit_events SET seq = 3 WHERE seq = 4`)
			mustExec(t, h, `UPDATE audit_events SET seq = 4 WHERE seq = 1000003`)
		}, 3, "out of order: the row follows seq 4"},
	} {
		tests = append(tests, test{name: tc.name, fn: func(t *testing.T, f *fixture) {
			events := seedAudit(t, f)
			if len(events) != 5 {
				t.Fatalf("seeded %d events, want 5", len(events))
			}
			mustVerify(t, f.store)
			for _, q := range f.h.Unguard {
				mustExec(t, f.h, q)
			}
			tc.tamper(t, f.h, events)
			wantBreak(t, f.store, tc.seq, tc.want)
		}})
	}
	return tests
}

func mustExec(t *testing.T, h Harness, query string, args ...any) {
	t.Helper()
	if _, err := h.Exec(t.Context(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func testAuditFailedAppendRollsBack(t *testing.T, f *fixture) {
	alice := f.mustUser("alice")
	p := f.mustProfile(alice, "agent")
	sec := f.mustSecret(alice, "KEPT", value("older"))
	sec = f.mustUpdateSecret(alice, sec.ID, vault.SecretPatch{Value: ptr(value("old"))})
	before := chain(t, f.store)

	for _, q := range f.h.FailAppends {
		mustExec(t, f.h, q)
	}
	ctx := f.ctx
	for name, write := range auditedWrites(f, alice, p, sec) {
		err := write()
		if err == nil {
			t.Errorf("%s succeeded without its audit event", name)
			continue
		}
		noCanary(t, err)
		if code := vault.ErrorCode(err); code != vault.EINTERNAL {
			t.Errorf("%s: code %s, want %s: %v", name, code, vault.EINTERNAL, err)
		}
	}
	// A failed sign-in that cannot be recorded is an internal error, not a
	// quiet 401.
	_, _, err := f.svc.Authenticate(ctx, "tok_"+strings.Repeat("f", 21)+".x")
	if code := vault.ErrorCode(err); code != vault.EINTERNAL {
		t.Errorf("unrecorded failed sign-in: code %s, want %s", code, vault.EINTERNAL)
	}

	// Nothing changed.
	if all := f.mustAllSecrets(alice); len(all) != 1 {
		t.Errorf("alice has %d secrets, want 1", len(all))
	}
	got := f.mustGetSecret(alice, sec.ID)
	sameSecret(t, got, sec)
	f.wantEnv(alice, p.ID, map[string]string{"KEPT": value("old")})
	sameProfile(t, f.mustGetProfile(alice, p.ID), p)
	if page, err := f.svc.Profiles(ctx, alice, vault.ListOptions{}); err != nil || len(page.Items) != 1 {
		t.Errorf("profiles: %d, %v", len(page.Items), err)
	}

	for _, q := range f.h.RestoreAppends {
		mustExec(t, f.h, q)
	}
	if after := chain(t, f.store); len(after) != len(before) {
		t.Errorf("%d events, want %d", len(after), len(before))
	}
	f.mustUpdateSecret(alice, sec.ID, vault.SecretPatch{Value: ptr(value("new"))})
	if got := mustVerify(t, f.store); got != int64(len(before)+1) {
		t.Errorf("verified %d events, want %d", got, len(before)+1)
	}
}

// auditedWrites are a write of each kind the Service audits, by alice on
// her profile p and secret sec.
func auditedWrites(f *fixture, alice string, p *vault.Profile, sec *vault.Secret) map[string]func() error {
	ctx := f.ctx
	return map[string]func() error{
		"create secret": func() error {
			_, err := f.svc.CreateSecret(ctx, alice, vault.SecretInput{Name: "NEW", Value: value("new")})
			return err
		},
		"update secret": func() error {
			_, err := f.svc.UpdateSecret(ctx, alice, sec.ID, vault.SecretPatch{Value: ptr(value("new")), Name: ptr("RENAMED")})
			return err
		},
		"delete secret": func() error { return f.svc.DeleteSecret(ctx, alice, sec.ID) },
		"create profile": func() error {
			_, err := f.svc.CreateProfile(ctx, alice, vault.ProfileInput{Name: "p2", Image: "x"})
			return err
		},
		"update profile": func() error {
			_, err := f.svc.UpdateProfile(ctx, alice, p.ID, vault.ProfilePatch{Image: ptr("changed")})
			return err
		},
		"delete profile": func() error { return f.svc.DeleteProfile(ctx, alice, p.ID) },
		"create token":   func() error { _, err := f.svc.CreateToken(ctx, alice); return err },
		"create user":    func() error { _, _, err := f.svc.CreateUser(ctx, "bob"); return err },
		"release": func() error {
			_, err := f.svc.ReleaseForTask(ctx, alice, vault.TaskRelease{TaskID: "tsk_1", ProfileID: p.ID})
			return err
		},
		"roll back": func() error { _, err := f.svc.RollbackSecret(ctx, alice, sec.ID, 1); return err },
		"import": func() error {
			_, err := f.svc.ImportSecrets(ctx, alice, []vault.ImportEntry{{Line: 1, Name: "KEPT", Value: value("imported")}}, vault.ScopeAll, nil)
			return err
		},
	}
}

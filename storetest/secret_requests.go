package storetest

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envvault/envvault/vault"
)

// secretRequestTests are the suite of secret requests (issue 13): the
// store's methods through the service's rules.
var secretRequestTests = []test{
	{name: "OpenJoinsThePendingOne", fn: testSecretRequestOpenJoins},
	{name: "AnswerIsAllOrNothing", fn: testSecretRequestAnswer},
	{name: "AnswerEachNameItsScope", fn: testSecretRequestAnswerEach}, // secret_answer.go
	{name: "CancelAndExpire", fn: testSecretRequestCancelExpire},
}

func (f *fixture) mustOpenRequest(user, profileID, taskID string, ttl time.Duration, names ...string) *vault.SecretRequest {
	f.t.Helper()
	list := make([]vault.RequiredSecret, len(names))
	for i, n := range names {
		list[i] = vault.RequiredSecret{Name: n, Description: "give " + strings.ToLower(n)}
	}
	r, err := f.svc.OpenSecretRequest(f.ctx, user, profileID, taskID, list, ttl)
	if err != nil {
		f.t.Fatalf("open secret request: %v", err)
	}
	return r
}

// sameRequest compares what a store read back with what was written.
func sameRequest(t *testing.T, got, want *vault.SecretRequest) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("secret request read back:\n got %s\nwant %s", g, w)
	}
}

// testSecretRequestOpenJoins: a task of a profile with a pending request
// joins it (its id and the names it lacks); another profile gets its own;
// the database refuses a second pending request of one profile; requests
// are listed pending first, then newest first; another user sees none.
func testSecretRequestOpenJoins(t *testing.T, f *fixture) {
	alice, bob := f.mustUser("alice"), f.mustUser("bob")
	p, q := f.mustProfile(alice, "p"), f.mustProfile(alice, "q")
	r1 := f.mustOpenRequest(alice, p.ID, "tsk_1", time.Hour, "OPENAI_API_KEY", "GITHUB_TOKEN")
	if !strings.HasPrefix(r1.ID, vault.PrefixSecretRequest) || r1.Status != vault.RequestPending || r1.AnsweredAt != nil ||
		!slices.Equal(vault.RequiredNames(r1.Names), []string{"GITHUB_TOKEN", "OPENAI_API_KEY"}) || !slices.Equal(r1.TaskIDs, []string{"tsk_1"}) {
		t.Fatalf("opened %+v", r1)
	}
	wantTime(t, "expires_at", r1.ExpiresAt, r1.CreatedAt.Add(time.Hour))
	got, err := f.svc.SecretRequest(f.ctx, alice, r1.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameRequest(t, got, r1)

	r2 := f.mustOpenRequest(alice, p.ID, "tsk_2", time.Minute, "SLACK_TOKEN", "GITHUB_TOKEN")
	if r2.ID != r1.ID || !slices.Equal(vault.RequiredNames(r2.Names), []string{"GITHUB_TOKEN", "OPENAI_API_KEY", "SLACK_TOKEN"}) ||
		!slices.Equal(r2.TaskIDs, []string{"tsk_1", "tsk_2"}) || !r2.ExpiresAt.Equal(r1.ExpiresAt) {
		t.Errorf("a second task of the profile: %+v, want it to join %s keeping its expiry", r2, r1.ID)
	}
	got, _ = f.svc.SecretRequest(f.ctx, alice, r1.ID)
	sameRequest(t, got, r2)
	rq := f.mustOpenRequest(alice, q.ID, "tsk_3", time.Hour, "GITHUB_TOKEN")
	if rq.ID == r1.ID {
		t.Errorf("another profile joined the first profile's request")
	}

	// The rule is the database's too: a second pending request of p.
	err = f.store.Update(f.ctx, alice, func(tx vault.Tx) error {
		dup := *r1
		dup.ID = vault.NewID(vault.PrefixSecretRequest)
		return tx.CreateSecretRequest(f.ctx, &dup)
	})
	if vault.ErrorCode(err) != vault.ECONFLICT {
		t.Errorf("a second pending request of one profile: %v, want conflict", err)
	}

	if _, err := f.svc.CancelSecretRequest(f.ctx, alice, rq.ID); err != nil {
		t.Fatal(err)
	}
	list, err := f.svc.SecretRequests(f.ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if ids := ids(list, func(r *vault.SecretRequest) string { return r.ID }); !slices.Equal(ids, []string{r1.ID, rq.ID}) {
		t.Errorf("list %v, want the pending %s before the cancelled %s", ids, r1.ID, rq.ID)
	}
	if _, err := f.svc.SecretRequest(f.ctx, bob, r1.ID); vault.ErrorCode(err) != vault.ENOTFOUND {
		t.Errorf("bob reads alice's request: %v", err)
	}
	if list, err := f.svc.SecretRequests(f.ctx, bob); err != nil || len(list) != 0 {
		t.Errorf("bob's list: %d, %v", len(list), err)
	}
	if _, err := f.svc.OpenSecretRequest(f.ctx, bob, p.ID, "tsk_4", []vault.RequiredSecret{{Name: "A"}}, time.Hour); vault.ErrorCode(err) != vault.ENOTFOUND {
		t.Errorf("bob opens a request on alice's profile: %v", err)
	}
	_, err = f.svc.OpenSecretRequest(f.ctx, alice, p.ID, "tsk_5", nil, time.Hour)
	wantErr(t, err, vault.EINVALID, "names")
	_, err = f.svc.OpenSecretRequest(f.ctx, alice, p.ID, "tsk_5", []vault.RequiredSecret{{Name: "bad"}}, time.Hour)
	wantErr(t, err, vault.EINVALID, "required_secrets")
}

// testSecretRequestAnswer: an answer stores its values through the import
// path (scope agents grants the request's profile) and marks the request
// answered in the same transaction; a name the request does not ask for,
// or a value breaking a rule, changes nothing; an answered request cannot
// be answered again; no value reaches the audit trail.
func testSecretRequestAnswer(t *testing.T, f *fixture) {
	alice := f.mustUser("alice")
	p := f.mustProfile(alice, "p")
	r := f.mustOpenRequest(alice, p.ID, "tsk_1", time.Hour, "OPENAI_API_KEY", "GITHUB_TOKEN")

	_, err := f.svc.AnswerSecretRequest(f.ctx, alice, r.ID, map[string]string{"OPENAI_API_KEY": value("k"), "OTHER": value("o")}, vault.ScopeAgents)
	wantErr(t, err, vault.EINVALID, "values")
	_, err = f.svc.AnswerSecretRequest(f.ctx, alice, r.ID, map[string]string{"OPENAI_API_KEY": value("k"), "GITHUB_TOKEN": "a\x00b"}, vault.ScopeAgents)
	if vault.ErrorCode(err) != vault.EINVALID {
		t.Errorf("a value with NUL: %v, want invalid", err)
	}
	_, err = f.svc.AnswerSecretRequest(f.ctx, alice, r.ID, map[string]string{"OPENAI_API_KEY": value("k")}, "some")
	wantErr(t, err, vault.EINVALID, "scope")
	_, err = f.svc.AnswerSecretRequest(f.ctx, alice, r.ID, nil, vault.ScopeAll)
	wantErr(t, err, vault.EINVALID, "values")
	if got, _ := f.svc.SecretRequest(f.ctx, alice, r.ID); got.Status != vault.RequestPending {
		t.Fatalf("a refused answer left it %s", got.Status)
	}
	if secrets, _ := f.svc.ProfileSecrets(f.ctx, alice, p.ID); len(secrets) != 0 {
		t.Fatalf("a refused answer stored %v", secrets)
	}

	f.mustSecret(alice, "GITHUB_TOKEN", value("old")) // an `all` secret the answer updates
	answered, err := f.svc.AnswerSecretRequest(f.ctx, alice, r.ID,
		map[string]string{"OPENAI_API_KEY": value("k"), "GITHUB_TOKEN": value("new")}, vault.ScopeAll)
	if err != nil {
		t.Fatalf("answer: %v", err)
	}
	if answered.Status != vault.RequestAnswered || answered.AnsweredAt == nil {
		t.Errorf("answered: %+v", answered)
	}
	got, _ := f.svc.SecretRequest(f.ctx, alice, r.ID)
	sameRequest(t, got, answered)
	env, err := f.svc.GetDecryptedForProfile(f.ctx, alice, p.ID)
	if err != nil || env["OPENAI_API_KEY"] != value("k") || env["GITHUB_TOKEN"] != value("new") {
		t.Errorf("after the answer the profile gets %d values, %v", len(env), err)
	}
	_, err = f.svc.AnswerSecretRequest(f.ctx, alice, r.ID, map[string]string{"OPENAI_API_KEY": value("again")}, vault.ScopeAll)
	if vault.ErrorCode(err) != vault.ECONFLICT {
		t.Errorf("answering twice: %v, want conflict", err)
	}

	// Scope agents: a secret granting the request's profile only.
	q := f.mustProfile(alice, "q")
	rq := f.mustOpenRequest(alice, q.ID, "tsk_2", time.Hour, "ONLY_Q")
	if _, err := f.svc.AnswerSecretRequest(f.ctx, alice, rq.ID, map[string]string{"ONLY_Q": value("q")}, vault.ScopeAgents); err != nil {
		t.Fatal(err)
	}
	srcs, _ := f.svc.ProfileSecrets(f.ctx, alice, q.ID)
	if i := slices.IndexFunc(srcs, func(e vault.EnvSecret) bool { return e.Name == "ONLY_Q" }); i < 0 || srcs[i].Scope != vault.ScopeAgents {
		t.Errorf("profile q gets %v, want ONLY_Q from an agents secret", srcs)
	}
	if srcs, _ := f.svc.ProfileSecrets(f.ctx, alice, p.ID); slices.ContainsFunc(srcs, func(e vault.EnvSecret) bool { return e.Name == "ONLY_Q" }) {
		t.Errorf("profile p gets q's agents secret")
	}
	f.wantRequestEvents(alice, map[string]int{vault.ActionSecretRequestOpen: 2, vault.ActionSecretRequestAnswer: 2})
}

// testSecretRequestCancelExpire: cancel ends a pending request; expiry
// refuses a request not yet due; DueSecretRequests finds the due pending
// requests of every user, oldest expiry first, and no others.
func testSecretRequestCancelExpire(t *testing.T, f *fixture) {
	alice, bob := f.mustUser("alice"), f.mustUser("bob")
	pa, pb, pc := f.mustProfile(alice, "a"), f.mustProfile(bob, "b"), f.mustProfile(alice, "c")
	ra := f.mustOpenRequest(alice, pa.ID, "tsk_1", 2*time.Millisecond, "A")
	rb := f.mustOpenRequest(bob, pb.ID, "tsk_2", 3*time.Millisecond, "B")
	rc := f.mustOpenRequest(alice, pc.ID, "tsk_3", time.Hour, "C")
	if _, err := f.svc.ExpireSecretRequest(f.ctx, alice, rc.ID); vault.ErrorCode(err) != vault.ECONFLICT {
		t.Errorf("expire before its time: %v, want conflict", err)
	}
	now := f.now().Add(10 * time.Millisecond)
	due, err := f.store.DueSecretRequests(f.ctx, now.UTC().Truncate(time.Microsecond), 10)
	if err != nil {
		t.Fatal(err)
	}
	if ids := ids(due, func(r *vault.SecretRequest) string { return r.ID }); !slices.Equal(ids, []string{ra.ID, rb.ID}) {
		t.Errorf("due %v, want [%s %s]", ids, ra.ID, rb.ID)
	}
	for range 20 {
		f.now() // the clock moves on past both expiries
	}
	if r, err := f.svc.ExpireSecretRequest(f.ctx, alice, ra.ID); err != nil || r.Status != vault.RequestExpired {
		t.Errorf("expire: %+v, %v", r, err)
	}
	if _, err := f.svc.ExpireSecretRequest(f.ctx, alice, rb.ID); vault.ErrorCode(err) != vault.ENOTFOUND {
		t.Errorf("alice expires bob's request: %v", err)
	}
	if r, err := f.svc.CancelSecretRequest(f.ctx, alice, rc.ID); err != nil || r.Status != vault.RequestCancelled {
		t.Errorf("cancel: %+v, %v", r, err)
	}
	if _, err := f.svc.CancelSecretRequest(f.ctx, alice, rc.ID); vault.ErrorCode(err) != vault.ECONFLICT {
		t.Errorf("cancel twice: %v, want conflict", err)
	}
	due, _ = f.store.DueSecretRequests(f.ctx, now.Add(time.Hour).UTC().Truncate(time.Microsecond), 10)
	if ids := ids(due, func(r *vault.SecretRequest) string { return r.ID }); !slices.Equal(ids, []string{rb.ID}) {
		t.Errorf("due after expiring a and cancelling c: %v, want [%s]", ids, rb.ID)
	}
	// A profile's next task opens a new request once the last one ended.
	ra2 := f.mustOpenRequest(alice, pa.ID, "tsk_4", time.Hour, "A")
	if ra2.ID == ra.ID {
		t.Errorf("a task after the expiry joined the expired request")
	}
	// The worker's release pass: the pending requests of every user, oldest first.
	pending, err := f.store.PendingSecretRequests(f.ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if ids := ids(pending, func(r *vault.SecretRequest) string { return r.ID }); !slices.Equal(ids, []string{rb.ID, ra2.ID}) {
		t.Errorf("pending %v, want [%s %s]", ids, rb.ID, ra2.ID)
	}
	if one, _ := f.store.PendingSecretRequests(f.ctx, 1); len(one) != 1 {
		t.Errorf("limit 1 gave %d", len(one))
	}
	f.wantRequestEvents(alice, map[string]int{vault.ActionSecretRequestOpen: 3, vault.ActionSecretRequestExpire: 1, vault.ActionSecretRequestCancel: 1})
}

// wantRequestEvents checks how many events of each secret request action
// the user's trail holds, and that none holds the canary.
func (f *fixture) wantRequestEvents(user string, want map[string]int) {
	f.t.Helper()
	for action, n := range want {
		page, err := f.svc.AuditEvents(f.ctx, user, vault.AuditOptions{Action: action, Limit: 100})
		if err != nil {
			f.t.Fatal(err)
		}
		if len(page.Items) != n {
			f.t.Errorf("%d %s events, want %d", len(page.Items), action, n)
		}
		for _, e := range page.Items {
			if e.TargetType != vault.TargetSecretRequest || !strings.HasPrefix(e.TargetID, vault.PrefixSecretRequest) {
				f.t.Errorf("%s event targets %s %s", action, e.TargetType, e.TargetID)
			}
			b, _ := json.Marshal(e.Details)
			if strings.Contains(string(b), canary) || !strings.Contains(string(b), `"names"`) {
				f.t.Errorf("%s event details %s: want names, never a value", action, b)
			}
		}
	}
}

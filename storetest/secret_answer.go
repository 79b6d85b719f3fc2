package storetest

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envvault/envvault/vault"
)

// testSecretRequestAnswerEach: an answer with a scope per name (the
// dashboard's form) stores each value with its own scope in one
// transaction; an empty value, a bad scope or a collision refuses the whole
// answer, naming every bad name by its line (the names sorted), and
// changes nothing; the audit event names each name's scope, no value.
func testSecretRequestAnswerEach(t *testing.T, f *fixture) {
	alice := f.mustUser("alice")
	p, q := f.mustProfile(alice, "p"), f.mustProfile(alice, "q")
	r := f.mustOpenRequest(alice, p.ID, "tsk_1", time.Hour, "A_KEY", "B_KEY", "C_KEY")
	if got, err := f.svc.PendingSecretRequestOf(f.ctx, alice, p.ID); err != nil || got.ID != r.ID {
		t.Fatalf("pending request of p: %v, %v", got, err)
	}
	if _, err := f.svc.PendingSecretRequestOf(f.ctx, alice, q.ID); vault.ErrorCode(err) != vault.ENOTFOUND {
		t.Fatalf("pending request of q, which has none: %v", err)
	}

	lines := func(err error, code string) []int {
		t.Helper()
		var ie *vault.ImportError
		if !errors.As(err, &ie) || vault.ErrorCode(err) != code {
			t.Fatalf("got %v, want an import error of code %s", err, code)
		}
		noCanary(t, err)
		var out []int
		for _, l := range ie.Lines {
			out = append(out, l.Line)
		}
		return out
	}
	unchanged := func() {
		t.Helper()
		if got, _ := f.svc.SecretRequest(f.ctx, alice, r.ID); got.Status != vault.RequestPending {
			t.Fatalf("a refused answer left the request %s", got.Status)
		}
		if n := len(f.mustAllSecrets(alice)); n != 1 {
			t.Fatalf("a refused answer left %d secrets, want the 1 made by the test", n)
		}
	}
	// Another agents secret of A_KEY goes to p and q: A_KEY for p alone
	// would give p the name twice.
	f.mustSecret(alice, "A_KEY", value("pq"), p, q)

	_, err := f.svc.AnswerSecretRequestEach(f.ctx, alice, r.ID, map[string]vault.SecretAnswer{
		"C_KEY": {Value: value("c"), Scope: "some"}, "A_KEY": {Value: "", Scope: vault.ScopeAll}, "B_KEY": {Value: value("b"), Scope: vault.ScopeAgents},
	})
	if got := lines(err, vault.EINVALID); !slices.Equal(got, []int{1, 3}) {
		t.Errorf("an empty value (A_KEY) and a bad scope (C_KEY) named lines %v, want [1 3]", got)
	}
	if msg := err.Error(); !strings.Contains(msg, "value of A_KEY") || !strings.Contains(msg, "scope of C_KEY") {
		t.Errorf("the error names neither A_KEY's value nor C_KEY's scope: %v", err)
	}
	unchanged()
	_, err = f.svc.AnswerSecretRequestEach(f.ctx, alice, r.ID, map[string]vault.SecretAnswer{
		"A_KEY": {Value: value("a"), Scope: vault.ScopeAgents}, "B_KEY": {Value: value("b"), Scope: vault.ScopeAll},
	})
	if got := lines(err, vault.ECONFLICT); !slices.Equal(got, []int{1}) {
		t.Errorf("A_KEY colliding named lines %v, want [1]", got)
	}
	unchanged()
	_, err = f.svc.AnswerSecretRequestEach(f.ctx, alice, r.ID, map[string]vault.SecretAnswer{"OTHER": {Value: value("o"), Scope: vault.ScopeAll}})
	wantErr(t, err, vault.EINVALID, "values")
	_, err = f.svc.AnswerSecretRequestEach(f.ctx, alice, r.ID, nil)
	wantErr(t, err, vault.EINVALID, "values")
	unchanged()

	wantAnsweredEach(t, f, alice, r, p, q)
}

// wantAnsweredEach answers r (of p) with B_KEY for p alone and C_KEY for
// all profiles, and checks what p and q receive and the audit event.
func wantAnsweredEach(t *testing.T, f *fixture, alice string, r *vault.SecretRequest, p, q *vault.Profile) {
	answered, err := f.svc.AnswerSecretRequestEach(f.ctx, alice, r.ID, map[string]vault.SecretAnswer{
		"B_KEY": {Value: value("b"), Scope: vault.ScopeAgents}, "C_KEY": {Value: value("c"), Scope: vault.ScopeAll},
	})
	if err != nil || answered.Status != vault.RequestAnswered {
		t.Fatalf("answer: %+v, %v", answered, err)
	}
	if _, err := f.svc.PendingSecretRequestOf(f.ctx, alice, p.ID); vault.ErrorCode(err) != vault.ENOTFOUND {
		t.Errorf("an answered request is still p's pending one: %v", err)
	}
	scopes := map[string]vault.Scope{}
	for _, e := range mustProfileSecrets(t, f, alice, p.ID) {
		scopes[e.Name] = e.Scope
	}
	if scopes["B_KEY"] != vault.ScopeAgents || scopes["C_KEY"] != vault.ScopeAll {
		t.Errorf("p gets %v, want B_KEY for p alone and C_KEY for all profiles", scopes)
	}
	forQ := map[string]bool{}
	for _, e := range mustProfileSecrets(t, f, alice, q.ID) {
		forQ[e.Name] = true
	}
	if forQ["B_KEY"] || !forQ["C_KEY"] {
		t.Errorf("q gets %v, want C_KEY (all profiles) and not B_KEY (p only)", forQ)
	}
	page, err := f.svc.AuditEvents(f.ctx, alice, vault.AuditOptions{Action: vault.ActionSecretRequestAnswer, Limit: 10})
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("answer events: %d, %v", len(page.Items), err)
	}
	d := page.Items[0].Details
	if _, uniform := d["scope"]; uniform || d["scopes"] == nil {
		t.Errorf("answer event details %v: want scopes per name", d)
	}
	f.wantRequestEvents(alice, map[string]int{vault.ActionSecretRequestAnswer: 1})
}

func mustProfileSecrets(t *testing.T, f *fixture, user, profileID string) []vault.EnvSecret {
	t.Helper()
	list, err := f.svc.ProfileSecrets(f.ctx, user, profileID)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

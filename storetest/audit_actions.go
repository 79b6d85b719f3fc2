package storetest

import (
	"bytes"
	"strings"
	"testing"

	"github.com/envvault/envvault/vault"
)

// auditScript is testAuditEveryActionOnce's user alice, acting with her
// token tok, and the events her requests should have appended, in order.
type auditScript struct {
	t     *testing.T
	f     *fixture
	alice string
	tok   string
	n     int
	want  []wantEvent
}

// next returns the fixture and actor of alice's next request.
func (s *auditScript) next() (*fixture, vault.Actor) {
	s.n++
	a := s.f.actor(s.alice, s.tok, s.n)
	c := *s.f
	c.ctx = vault.WithActor(s.f.ctx, a)
	return &c, a
}

func (s *auditScript) expect(events ...wantEvent) { s.want = append(s.want, events...) }

func testAuditEveryActionOnce(t *testing.T, f *fixture) {
	// The operator's command line: no user, no token in the actor.
	op := vault.Actor{RequestID: "", ClientAddr: ""}
	u, token, err := f.svc.CreateUser(vault.WithActor(f.ctx, op), "alice")
	if err != nil {
		t.Fatal(err)
	}
	s := &auditScript{t: t, f: f, alice: u.ID, tok: tokenID(t, token)}
	s.expect(
		wantEvent{vault.ActionUserCreate, vault.TargetUser, s.alice, vault.Actor{UserID: s.alice}, map[string]any{"name": "alice"}},
		wantEvent{vault.ActionTokenCreate, vault.TargetToken, s.tok, vault.Actor{UserID: s.alice}, nil})

	token2, p, all, agents := s.writes()
	s.release(p, all, agents)
	s.importAndRollback(p, all)
	s.signIns(token)
	s.secretRequests(p)

	c, a := s.next()
	if err := f.svc.DeleteSecret(c.ctx, s.alice, agents.ID); err != nil {
		t.Fatal(err)
	}
	s.expect(wantEvent{vault.ActionSecretDelete, vault.TargetSecret, agents.ID, a, map[string]any{"name": "GITHUB_TOKEN"}})

	c, a = s.next()
	if err := f.svc.DeleteProfile(c.ctx, s.alice, p.ID); err != nil {
		t.Fatal(err)
	}
	s.expect(wantEvent{vault.ActionProfileDelete, vault.TargetProfile, p.ID, a, map[string]any{"name": "agent"}})

	events := chain(t, f.store)
	checkEvents(t, events, s.want)
	noSecretsIn(t, events, token, token2)
	if got := mustVerify(t, f.store); got != int64(len(s.want)) {
		t.Errorf("verify checked %d events, want %d", got, len(s.want))
	}
	checkLinked(t, f.store, events)
}

// writes makes a token, a profile and two secrets (one `all`, one of the
// profile), and changes the profile and the `all` one's value and name.
func (s *auditScript) writes() (token2 string, p *vault.Profile, all, agents *vault.Secret) {
	t, alice := s.t, s.alice
	c, a := s.next()
	token2, err := s.f.svc.CreateToken(c.ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	s.expect(wantEvent{vault.ActionTokenCreate, vault.TargetToken, tokenID(t, token2), a, nil})

	c, a = s.next()
	p = c.mustProfile(alice, "agent")
	s.expect(wantEvent{vault.ActionProfileCreate, vault.TargetProfile, p.ID, a, map[string]any{"name": "agent", "image": "debian:bookworm"}})

	c, a = s.next()
	if _, err := s.f.svc.UpdateProfile(c.ctx, alice, p.ID, vault.ProfilePatch{Image: ptr("debian:trixie")}); err != nil {
		t.Fatal(err)
	}
	s.expect(wantEvent{vault.ActionProfileUpdate, vault.TargetProfile, p.ID, a, map[string]any{"name": "agent", "image": "debian:trixie", "changed": []string{"image"}}})

	c, a = s.next()
	all = c.mustSecret(alice, "STRIPE_KEY", value("one"))
	s.expect(wantEvent{vault.ActionSecretCreate, vault.TargetSecret, all.ID, a,
		map[string]any{"name": "STRIPE_KEY", "scope": "all", "profile_ids": []string{}, "version": 1}})

	c, a = s.next()
	agents = c.mustSecret(alice, "GITHUB_TOKEN", value("two"), p)
	s.expect(wantEvent{vault.ActionSecretCreate, vault.TargetSecret, agents.ID, a,
		map[string]any{"name": "GITHUB_TOKEN", "scope": "agents", "profile_ids": []string{p.ID}, "version": 1}})

	c, a = s.next()
	c.mustUpdateSecret(alice, all.ID, vault.SecretPatch{Value: ptr(value("three"))})
	s.expect(wantEvent{vault.ActionSecretUpdate, vault.TargetSecret, all.ID, a,
		map[string]any{"name": "STRIPE_KEY", "version": 2, "changed": []string{"value"}}})

	c, a = s.next()
	c.mustUpdateSecret(alice, all.ID, vault.SecretPatch{Name: ptr("STRIPE_SECRET_KEY"), Description: ptr("live")})
	s.expect(wantEvent{vault.ActionSecretUpdate, vault.TargetSecret, all.ID, a,
		map[string]any{"name": "STRIPE_SECRET_KEY", "version": 2, "changed": []string{"name", "description"}}})
	return token2, p, all, agents
}

// release is a task's start: the worker acts for the user, without a
// token.
func (s *auditScript) release(p *vault.Profile, all, agents *vault.Secret) {
	t := s.t
	worker := vault.Actor{UserID: s.alice}
	env, err := s.f.svc.ReleaseForTask(s.f.ctx, s.alice, vault.TaskRelease{TaskID: "tsk_000000000000000000001", ProfileID: p.ID, Attempt: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(env) != 2 {
		t.Fatalf("released %d values, want 2", len(env))
	}
	s.expect(wantEvent{vault.ActionTaskRelease, vault.TargetTask, "tsk_000000000000000000001", worker,
		map[string]any{"profile_id": p.ID, "attempt": 1,
			"secrets": agents.ID + "@1 " + all.ID + "@2", // GITHUB_TOKEN, STRIPE_SECRET_KEY
		}})
}

// importAndRollback imports (one event per secret written, none for a
// value unchanged) and rolls the `all` secret back.
func (s *auditScript) importAndRollback(p *vault.Profile, all *vault.Secret) {
	t, alice, svc := s.t, s.alice, s.f.svc
	c, a := s.next()
	res, err := svc.ImportSecrets(c.ctx, alice, []vault.ImportEntry{
		{Line: 1, Name: "FROM_FILE", Value: value("file")},
		{Line: 2, Name: "STRIPE_SECRET_KEY", Value: value("four")},
		{Line: 3, Name: "GITHUB_TOKEN", Value: value("five")}, // a new `all` secret: the agents one is not its target
	}, vault.ScopeAll, nil)
	if err != nil || res.Created != 2 || res.Updated != 1 {
		t.Fatalf("import: %+v, %v", res, err)
	}
	imported := map[string]string{}
	for _, sec := range c.mustAllSecrets(alice) {
		if sec.Scope == vault.ScopeAll {
			imported[sec.Name] = sec.ID
		}
	}
	s.expect(
		wantEvent{vault.ActionSecretCreate, vault.TargetSecret, imported["FROM_FILE"], a,
			map[string]any{"name": "FROM_FILE", "scope": "all", "version": 1, "import_line": 1}},
		wantEvent{vault.ActionSecretUpdate, vault.TargetSecret, all.ID, a,
			map[string]any{"name": "STRIPE_SECRET_KEY", "version": 3, "changed": []string{"value"}, "import_line": 2}},
		wantEvent{vault.ActionSecretCreate, vault.TargetSecret, imported["GITHUB_TOKEN"], a,
			map[string]any{"name": "GITHUB_TOKEN", "scope": "all", "version": 1, "import_line": 3}})
	c, a = s.next()
	if _, err := svc.RollbackSecret(c.ctx, alice, all.ID, 1); err != nil {
		t.Fatal(err)
	}
	s.expect(wantEvent{vault.ActionSecretRollback, vault.TargetSecret, all.ID, a,
		map[string]any{"name": "STRIPE_SECRET_KEY", "version": 4, "restored_version": 1}})
	c.wantEnv(alice, p.ID, map[string]string{"STRIPE_SECRET_KEY": value("one"), "GITHUB_TOKEN": value("two"), "FROM_FILE": value("file")})
	c, _ = s.next()
	if res, err := svc.ImportSecrets(c.ctx, alice, []vault.ImportEntry{{Line: 1, Name: "FROM_FILE", Value: value("file")}}, vault.ScopeAll, nil); err != nil || res.Unchanged != 1 {
		t.Fatalf("import of an unchanged value: %+v, %v", res, err)
	}
}

// signIns: a failed check is recorded, as no user's, without the token,
// counted per client address and token id ("malformed" for a token that
// does not parse) and written when its window ends (here: at the flush);
// a good one is not recorded.
func (s *auditScript) signIns(token string) {
	t, svc := s.t, s.f.svc
	c, a := s.next()
	if _, _, err := svc.Authenticate(c.ctx, "not-a-token"); vault.ErrorCode(err) != vault.EUNAUTHORIZED {
		t.Fatalf("malformed token: %v", err)
	}
	s.expect(wantEvent{vault.ActionAuthFailed, vault.TargetToken, "malformed",
		vault.Actor{RequestID: a.RequestID, ClientAddr: a.ClientAddr}, map[string]any{"reason": "malformed token", "failed": 1, "limited": 0}})
	c, a = s.next()
	unknown := "tok_" + strings.Repeat("x", 21)
	if _, _, err := svc.Authenticate(c.ctx, unknown+"."+canary); vault.ErrorCode(err) != vault.EUNAUTHORIZED {
		t.Fatalf("unknown token: %v", err)
	}
	s.expect(wantEvent{vault.ActionAuthFailed, vault.TargetToken, unknown,
		vault.Actor{RequestID: a.RequestID, ClientAddr: a.ClientAddr}, map[string]any{"reason": "unknown token", "failed": 1}})
	c, a = s.next()
	if _, _, err := svc.Authenticate(c.ctx, s.tok+".wrong-"+canary); vault.ErrorCode(err) != vault.EUNAUTHORIZED {
		t.Fatalf("wrong secret: %v", err)
	}
	s.expect(wantEvent{vault.ActionAuthFailed, vault.TargetToken, s.tok,
		vault.Actor{RequestID: a.RequestID, ClientAddr: a.ClientAddr}, map[string]any{"reason": "wrong secret", "failed": 1}})
	c, _ = s.next()
	if _, _, err := svc.Authenticate(c.ctx, token); err != nil {
		t.Fatalf("good token: %v", err)
	}
	if err := svc.FlushAuthFailures(c.ctx); err != nil {
		t.Fatal(err)
	}
}

// checkLinked checks that the head points at the last of events, each of
// which follows the one before and holds the hash of its content.
func checkLinked(t *testing.T, st vault.AuditStore, events []*vault.AuditEvent) {
	t.Helper()
	head, err := st.AuditHead(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	last := events[len(events)-1]
	if head.Seq != last.Seq || !bytes.Equal(head.Hash, last.Hash) || head.FirstSeq != 1 || len(head.AnchorHash) != 0 {
		t.Errorf("head %+v does not point at the last event %d", head, last.Seq)
	}
	for i, e := range events {
		if i > 0 && !bytes.Equal(e.PrevHash, events[i-1].Hash) {
			t.Errorf("event %d does not follow event %d", e.Seq, events[i-1].Seq)
		}
		if sum, err := e.ComputeHash(); err != nil || !bytes.Equal(sum, e.Hash) {
			t.Errorf("event %d: stored hash is not its content's (%v)", e.Seq, err)
		}
	}
}

package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/envvault/envvault/postgres"
	"github.com/envvault/envvault/vault"
)

// groupFixture is users with secrets and a profile each, on the store
// connected as the row-level-security service role.
type groupFixture struct {
	d       *rlsDB
	svc     *vault.Service
	users   []string
	profile map[string]string            // user -> profile
	secrets map[string][]*vault.Secret   // user -> secrets, all-scoped
	values  map[string]map[string]string // user -> name -> value written last
}

func newGroupFixture(t *testing.T, users, secrets int) *groupFixture {
	t.Helper()
	f := &groupFixture{d: newRLSDB(t), profile: map[string]string{}, secrets: map[string][]*vault.Secret{},
		values: map[string]map[string]string{}}
	f.svc = newService(t, f.d.service, vault.Options{})
	for range users {
		u := mustUser(t, f.svc)
		f.users = append(f.users, u)
		f.profile[u] = mustProfile(t, f.svc, u, "agent").ID
		f.values[u] = map[string]string{}
		for i := range secrets {
			name := fmt.Sprintf("S%d", i)
			f.secrets[u] = append(f.secrets[u], mustSecret(t, f.svc, u, vault.SecretInput{Name: name, Value: "first", Scope: vault.ScopeAll}))
			f.values[u][name] = "first"
		}
	}
	return f
}

// groupWrite is one value write of a test.
type groupWrite struct {
	user, id, value string
}

// inOneGroup runs writes while the store forms no group, waits until all
// of them are queued, and lets them go: one group takes them all (up to
// its bound). It returns each write's error, in order.
func (f *groupFixture) inOneGroup(t *testing.T, writes []groupWrite) []error {
	t.Helper()
	db := f.d.service
	db.HoldGroups()
	errs := make([]error, len(writes))
	var wg sync.WaitGroup
	for i, w := range writes {
		wg.Go(func() {
			_, errs[i] = f.svc.UpdateSecret(context.Background(), w.user, w.id, vault.SecretPatch{Value: &w.value})
		})
	}
	awaitQueued(t, db, len(writes))
	db.ReleaseGroups()
	wg.Wait()
	return errs
}

// awaitQueued waits until n writes wait for a group.
func awaitQueued(t *testing.T, db *postgres.DB, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for db.QueuedGroupWrites() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes queued for a group after 10 s, want %d", db.QueuedGroupWrites(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// check fails unless every user's profile receives the values f.values
// holds, each secret is at version want[id] (1 if absent), with one
// secret.update event per version after the first, and the audit chain
// verifies.
func (f *groupFixture) check(t *testing.T, want map[string]int) {
	t.Helper()
	ctx := context.Background()
	for _, u := range f.users {
		got, err := f.svc.GetDecryptedForProfile(ctx, u, f.profile[u])
		if err != nil {
			t.Fatal(err)
		}
		for name, v := range f.values[u] {
			if got[name] != v {
				t.Errorf("user %s %s: the profile receives a value of %d bytes, want the %d bytes written last", u, name, len(got[name]), len(v))
			}
		}
		for _, s := range f.secrets[u] {
			cur, err := f.svc.Secret(ctx, u, s.ID)
			if err != nil {
				t.Fatal(err)
			}
			v := max(want[s.ID], 1)
			if cur.Version != v {
				t.Errorf("secret %s at version %d, want %d", s.ID, cur.Version, v)
			}
			page, err := f.svc.AuditEvents(ctx, u, vault.AuditOptions{Action: vault.ActionSecretUpdate, TargetID: s.ID, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Items) != v-1 {
				t.Errorf("secret %s: %d secret.update events, want %d", s.ID, len(page.Items), v-1)
			}
		}
	}
	rep, err := vault.VerifyAudit(ctx, f.d.service)
	if err != nil || rep.Break != nil {
		t.Fatalf("audit verify: %v, break %v", err, rep.Break)
	}
}

// lockRows locks the secrets' rows in a transaction of the superuser,
// which the caller rolls back (at the test's end, at the latest).
func (f *groupFixture) lockRows(t *testing.T, ids ...string) pgx.Tx {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, f.d.Super)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(ctx) })
	if _, err := tx.Exec(ctx, `SELECT FROM secrets WHERE id = ANY($1) FOR UPDATE`, ids); err != nil {
		t.Fatal(err)
	}
	return tx
}

// startWrite starts a write of value to the user's secret id and returns
// where its error comes.
func (f *groupFixture) startWrite(user, id, value string) chan error {
	done := make(chan error, 1)
	go func() {
		_, err := f.svc.UpdateSecret(context.Background(), user, id, vault.SecretPatch{Value: &value})
		done <- err
	}()
	return done
}

// statsSince returns the group counts since before.
func statsSince(db *postgres.DB, before postgres.GroupStats) postgres.GroupStats {
	now := db.GroupStats()
	return postgres.GroupStats{Groups: now.Groups - before.Groups, Members: now.Members - before.Members, Alone: now.Alone - before.Alone}
}

// Writes of several users, and of one user to several secrets, commit in
// one group, each under its own user's row-level security.
func TestGroupCommit(t *testing.T) {
	f := newGroupFixture(t, 3, 2)
	before := f.d.service.GroupStats()
	var writes []groupWrite
	want := map[string]int{}
	for _, u := range f.users {
		for _, s := range f.secrets[u] {
			v := "new value of " + s.Name + " for " + u
			writes = append(writes, groupWrite{u, s.ID, v})
			f.values[u][s.Name] = v
			want[s.ID] = 2
		}
	}
	for i, err := range f.inOneGroup(t, writes) {
		if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
	if got := statsSince(f.d.service, before); got != (postgres.GroupStats{Groups: 1, Members: 6}) {
		t.Errorf("group counts %+v, want one group of 6 writes and none run alone", got)
	}
	f.check(t, want)
}

// A member whose write fails before it wrote anything (its secret is not
// there, or is another user's) gets its error and leaves the group; the
// others commit, and no one runs again.
func TestGroupMemberLeaves(t *testing.T) {
	f := newGroupFixture(t, 2, 1)
	a, b := f.users[0], f.users[1]
	sa, sb := f.secrets[a][0], f.secrets[b][0]
	before := f.d.service.GroupStats()
	errs := f.inOneGroup(t, []groupWrite{
		{a, sa.ID, "alice's new value"},
		{b, sa.ID, "bob writes alice's secret"},
		{b, vault.NewID(vault.PrefixSecret), "a secret that is not there"},
		{b, sb.ID, "bob's new value"},
	})
	if errs[0] != nil || errs[3] != nil {
		t.Fatalf("the good writes: %v, %v", errs[0], errs[3])
	}
	wantCode(t, errs[1], vault.ENOTFOUND)
	wantCode(t, errs[2], vault.ENOTFOUND)
	if got := statsSince(f.d.service, before); got != (postgres.GroupStats{Groups: 1, Members: 4}) {
		t.Errorf("group counts %+v, want one group of 4 writes and none run alone", got)
	}
	f.values[a]["S0"], f.values[b]["S0"] = "alice's new value", "bob's new value"
	f.check(t, map[string]int{sa.ID: 2, sb.ID: 2})
}

// A statement the server refuses aborts the shared transaction: the group
// rolls back and every member runs again alone, where each gets the answer
// it would have had without the group. Refused in the first round (a user
// who does not exist) and in the last (an audit event a trigger refuses,
// sent with COMMIT).
func TestGroupRollsBackAndRunsAlone(t *testing.T) {
	f := newGroupFixture(t, 2, 2)
	a, b := f.users[0], f.users[1]
	refused := f.secrets[b][1]
	superExec(t, f.d.Super, fmt.Sprintf(`CREATE FUNCTION refuse_event() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.target_id = '%s' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$`, refused.ID),
		`CREATE TRIGGER refuse_event BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse_event()`)
	nobody := vault.NewID(vault.PrefixUser)
	want := map[string]int{}
	for _, tc := range []struct {
		what string
		bad  groupWrite
		code string
	}{
		{"a user who does not exist", groupWrite{nobody, f.secrets[a][1].ID, "x"}, vault.ENOTFOUND},
		{"an audit event refused at COMMIT", groupWrite{b, refused.ID, "y"}, vault.EINTERNAL},
	} {
		before := f.d.service.GroupStats()
		good := []groupWrite{{a, f.secrets[a][0].ID, "a: " + tc.what}, {b, f.secrets[b][0].ID, "b: " + tc.what}}
		errs := f.inOneGroup(t, append(good, tc.bad))
		for i, w := range good {
			if errs[i] != nil {
				t.Fatalf("%s: a good write: %v", tc.what, errs[i])
			}
			want[w.id]++
			f.values[w.user]["S0"] = w.value
		}
		wantCode(t, errs[2], tc.code)
		if got := statsSince(f.d.service, before); got != (postgres.GroupStats{Groups: 1, Members: 3, Alone: 3}) {
			t.Errorf("%s: group counts %+v, want one group of 3 writes, all run again alone", tc.what, got)
		}
	}
	want[f.secrets[a][0].ID]++
	want[f.secrets[b][0].ID]++
	f.check(t, want)
}

// Writes from many clients at once, several of them to one secret: every
// write is stored once, in order of its version, and the chain verifies.
func TestGroupConcurrentWriters(t *testing.T) {
	f := newGroupFixture(t, 4, 2)
	const clients, perClient = 12, 15
	hot := f.secrets[f.users[0]][0]
	var mu sync.Mutex
	want := map[string]int{}
	var wg sync.WaitGroup
	for c := range clients {
		// Clients 0-3 write the same secret; the others one of their own
		// user's secrets each.
		u, s := f.users[0], hot
		if c >= 4 {
			u = f.users[c%4]
			s = f.secrets[u][1]
		}
		wg.Go(func() {
			for i := range perClient {
				v := fmt.Sprintf("client %d write %d", c, i)
				if _, err := f.svc.UpdateSecret(context.Background(), u, s.ID, vault.SecretPatch{Value: &v}); err != nil {
					t.Errorf("client %d: %v", c, err)
					return
				}
				mu.Lock()
				want[s.ID] = max(want[s.ID], 1) + 1
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, u := range f.users {
		delete(f.values[u], "S0")
		delete(f.values[u], "S1")
	}
	f.check(t, want)
	kept, err := f.svc.SecretVersions(context.Background(), f.users[0], hot.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(kept) != 1+vault.DefaultKeepVersions {
		t.Errorf("%d versions listed of a secret at version %d, want the current one and %d kept", len(kept), want[hot.ID], vault.DefaultKeepVersions)
	}
	st := f.d.service.GroupStats()
	t.Logf("%d writes in %d groups, %d run again alone", st.Members, st.Groups, st.Alone)
}

// A group's statements are bounded on the server (postgres.GroupTimeout,
// 30 s; shorter here): a group whose statement waits past it for a row
// another transaction holds rolls back, and each member runs again alone,
// the free one at once, the other once the row is free; each is stored
// once.
func TestGroupTimeout(t *testing.T) {
	if postgres.GroupTimeout != 30*time.Second {
		t.Errorf("GroupTimeout = %v, the README says 30 s", postgres.GroupTimeout)
	}
	f := newGroupFixture(t, 1, 2)
	u := f.users[0]
	locked, free := f.secrets[u][0], f.secrets[u][1]
	ctx := context.Background()
	tx := f.lockRows(t, locked.ID)
	db := f.d.service
	db.SetGroupTimeout(300 * time.Millisecond)
	before := db.GroupStats()
	db.HoldGroups()
	done := map[string]chan error{locked.ID: f.startWrite(u, locked.ID, "new S0"), free.ID: f.startWrite(u, free.ID, "new S1")}
	awaitQueued(t, db, 2)
	db.ReleaseGroups()
	if err := <-done[free.ID]; err != nil {
		t.Fatalf("the write of the free secret: %v", err)
	}
	select {
	case err := <-done[locked.ID]:
		t.Fatalf("the write of the locked row ended (%v) while the row is locked", err)
	default:
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done[locked.ID]; err != nil {
		t.Fatalf("the write of the locked row, once free: %v", err)
	}
	if got := statsSince(db, before); got != (postgres.GroupStats{Groups: 1, Members: 2, Alone: 2}) {
		t.Errorf("group counts %+v, want one group of 2 writes, both run again alone", got)
	}
	f.values[u]["S0"], f.values[u]["S1"] = "new S0", "new S1"
	f.check(t, map[string]int{locked.ID: 2, free.ID: 2})
}

// A member whose secret's lock another transaction holds (here a session,
// as another process's write would) leaves its group without making it
// wait, and runs again alone, where it waits for the lock.
func TestGroupLockHeldElsewhere(t *testing.T) {
	f := newGroupFixture(t, 2, 1)
	a, b := f.users[0], f.users[1]
	sa, sb := f.secrets[a][0], f.secrets[b][0]
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, f.d.Super)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtextextended($1, 0))`, a+"/"+sa.ID); err != nil {
		t.Fatal(err)
	}
	db := f.d.service
	before := db.GroupStats()
	db.HoldGroups()
	done := map[string]chan error{a: f.startWrite(a, sa.ID, "written by "+a), b: f.startWrite(b, sb.ID, "written by "+b)}
	awaitQueued(t, db, 2)
	db.ReleaseGroups()
	if err := <-done[b]; err != nil {
		t.Fatalf("the write whose lock is free: %v", err)
	}
	select {
	case err := <-done[a]:
		t.Fatalf("the write whose lock is held ended (%v) while the lock is held", err)
	default:
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock_all()`); err != nil {
		t.Fatal(err)
	}
	if err := <-done[a]; err != nil {
		t.Fatalf("the write whose lock was held, once free: %v", err)
	}
	if got := statsSince(db, before); got != (postgres.GroupStats{Groups: 1, Members: 2, Alone: 1}) {
		t.Errorf("group counts %+v, want one group of 2 writes, 1 run again alone", got)
	}
	f.values[a]["S0"], f.values[b]["S0"] = "written by "+a, "written by "+b
	f.check(t, map[string]int{sa.ID: 2, sb.ID: 2})
}

// A group takes at most postgres.GroupMaxMembers (64) writes; the rest
// wait for the next.
func TestGroupMaxMembers(t *testing.T) {
	if postgres.GroupMaxMembers != 64 {
		t.Errorf("GroupMaxMembers = %d, the README says 64", postgres.GroupMaxMembers)
	}
	n := postgres.GroupMaxMembers + 3
	f := newGroupFixture(t, 1, n)
	u := f.users[0]
	before := f.d.service.GroupStats()
	var writes []groupWrite
	want := map[string]int{}
	for _, s := range f.secrets[u] {
		writes = append(writes, groupWrite{u, s.ID, "v2 of " + s.Name})
		f.values[u][s.Name] = "v2 of " + s.Name
		want[s.ID] = 2
	}
	for i, err := range f.inOneGroup(t, writes) {
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if got := statsSince(f.d.service, before); got != (postgres.GroupStats{Groups: 2, Members: int64(n)}) {
		t.Errorf("group counts %+v, want %d writes in 2 groups", got, n)
	}
	f.check(t, want)
}

// A process runs at most postgres.GroupWorkers (2) groups at once: with
// two groups held up by rows another transaction locks, a third write
// waits in the queue until one of them ends.
func TestGroupWorkers(t *testing.T) {
	if postgres.GroupWorkers != 2 {
		t.Errorf("GroupWorkers = %d, the README says 2", postgres.GroupWorkers)
	}
	f := newGroupFixture(t, 1, 3)
	u := f.users[0]
	secs := f.secrets[u]
	ctx := context.Background()
	tx := f.lockRows(t, secs[0].ID, secs[1].ID)
	db := f.d.service
	before := db.GroupStats()
	done := make([]chan error, len(secs))
	for i, s := range secs {
		// One write at a time, each taken by a group of its own.
		db.HoldGroups()
		done[i] = f.startWrite(u, s.ID, "new "+s.Name)
		awaitQueued(t, db, 1)
		db.ReleaseGroups()
		if i < 2 {
			awaitQueued(t, db, 0)
		}
	}
	// Both workers wait for a locked row: the third write stays queued.
	// Nothing signals that it is not taken; 200 ms bounds the check.
	time.Sleep(200 * time.Millisecond)
	if n := db.QueuedGroupWrites(); n != 1 {
		t.Errorf("%d writes queued while two groups are held up, want 1", n)
	}
	select {
	case err := <-done[2]:
		t.Fatalf("the third write ended (%v) while both groups are held up", err)
	default:
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range secs {
		if err := <-done[i]; err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		f.values[u][secs[i].Name] = "new " + secs[i].Name
	}
	if got := statsSince(db, before); got != (postgres.GroupStats{Groups: 3, Members: 3}) {
		t.Errorf("group counts %+v, want 3 groups of one write", got)
	}
	f.check(t, map[string]int{secs[0].ID: 2, secs[1].ID: 2, secs[2].ID: 2})
}

// A write whose function panics (a bug, which the API's recovery turns
// into a 500) does not hold its group up: the others commit.
func TestGroupMemberPanics(t *testing.T) {
	f := newGroupFixture(t, 2, 1)
	a, b := f.users[0], f.users[1]
	sa, sb := f.secrets[a][0], f.secrets[b][0]
	db := f.d.service
	db.HoldGroups()
	ctx := context.Background()
	panicked := make(chan any, 1)
	go func() {
		defer func() { panicked <- recover() }()
		_ = db.UpdateLocked(ctx, a, sa.ID, func(tx vault.Tx) error {
			if err := tx.Lock(ctx, sa.ID); err != nil {
				return err
			}
			if _, err := tx.Secret(ctx, sa.ID); err != nil {
				return err
			}
			panic("a bug in the write")
		})
	}()
	done := f.startWrite(b, sb.ID, "b's new value")
	awaitQueued(t, db, 2)
	db.ReleaseGroups()
	if p := <-panicked; p != "a bug in the write" {
		t.Errorf("the panic that went up: %v", p)
	}
	if err := <-done; err != nil {
		t.Fatalf("the other write of the group: %v", err)
	}
	f.values[b]["S0"] = "b's new value"
	f.check(t, map[string]int{sb.ID: 2})
}

// When the group's connection is lost (here its backend is terminated
// while a member waits in a later round for the user's row), every member
// gets EUNAVAILABLE, as a lone write would, none hangs, and nothing is
// stored.
func TestGroupConnectionLost(t *testing.T) {
	f := newGroupFixture(t, 1, 2)
	u := f.users[0]
	sa, sb := f.secrets[u][0], f.secrets[u][1]
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, f.d.Super)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT FROM users WHERE id = $1 FOR UPDATE`, u); err != nil {
		t.Fatal(err)
	}
	db := f.d.service
	db.HoldGroups()
	waiting := make(chan error, 1)
	go func() {
		// Its second round waits for the user's row.
		waiting <- db.UpdateLocked(ctx, u, sa.ID, func(tx vault.Tx) error {
			if err := tx.Lock(ctx, sa.ID); err != nil {
				return err
			}
			if _, err := tx.Secret(ctx, sa.ID); err != nil {
				return err
			}
			if err := tx.LockUser(ctx); err != nil {
				return err
			}
			_, err := tx.CountSecrets(ctx)
			return err
		})
	}()
	other := f.startWrite(u, sb.ID, "never stored")
	awaitQueued(t, db, 2)
	db.ReleaseGroups()
	var pid int
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := conn.QueryRow(ctx, `SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`).Scan(&pid)
		if err == nil {
			break
		}
		if !errors.Is(err, pgx.ErrNoRows) || time.Now().After(deadline) {
			t.Fatalf("no backend waits for the user's row: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	for what, done := range map[string]chan error{"the member waiting in its second round": waiting, "the finished member": other} {
		select {
		case err := <-done:
			wantCode(t, err, vault.EUNAVAILABLE)
		case <-time.After(20 * time.Second):
			t.Fatalf("%s hangs after its group's connection was lost", what)
		}
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	f.check(t, nil)
}

// At most postgres.GroupMaxQueued (1,024; 2 here) writes wait for a group
// in one process: the next runs alone at once, and all are stored.
func TestGroupMaxQueued(t *testing.T) {
	if postgres.GroupMaxQueued != 1024 {
		t.Errorf("GroupMaxQueued = %d, the README says 1,024", postgres.GroupMaxQueued)
	}
	f := newGroupFixture(t, 1, 3)
	u := f.users[0]
	secs := f.secrets[u]
	db := f.d.service
	db.SetGroupMaxQueued(2)
	before := db.GroupStats()
	db.HoldGroups()
	queued := []chan error{f.startWrite(u, secs[0].ID, "new S0"), f.startWrite(u, secs[1].ID, "new S1")}
	awaitQueued(t, db, 2)
	if err := <-f.startWrite(u, secs[2].ID, "new S2"); err != nil {
		t.Fatalf("the write past the bound, while groups are held: %v", err)
	}
	if n := db.QueuedGroupWrites(); n != 2 {
		t.Errorf("%d writes queued, want the 2 before", n)
	}
	db.ReleaseGroups()
	for i, done := range queued {
		if err := <-done; err != nil {
			t.Fatalf("queued write %d: %v", i, err)
		}
	}
	if got := statsSince(db, before); got != (postgres.GroupStats{Groups: 1, Members: 2}) {
		t.Errorf("group counts %+v, want one group of the 2 queued writes", got)
	}
	for _, s := range secs {
		f.values[u][s.Name] = "new " + s.Name
	}
	f.check(t, map[string]int{secs[0].ID: 2, secs[1].ID: 2, secs[2].ID: 2})
}

// A write whose caller gives up while it waits for a group leaves the
// queue and stores nothing.
func TestGroupCallerGivesUp(t *testing.T) {
	f := newGroupFixture(t, 1, 1)
	u, s := f.users[0], f.secrets[f.users[0]][0]
	db := f.d.service
	db.HoldGroups()
	defer db.ReleaseGroups()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		v := "never stored"
		_, err := f.svc.UpdateSecret(ctx, u, s.ID, vault.SecretPatch{Value: &v})
		done <- err
	}()
	awaitQueued(t, db, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("a write given up while queued: %v, want context.Canceled", err)
	}
	if n := db.QueuedGroupWrites(); n != 0 {
		t.Errorf("%d writes still queued", n)
	}
	db.ReleaseGroups()
	f.check(t, nil)
}

// A write that runs alone, whose caller gives up while its statements wait
// for a row behind which its COMMIT is already sent, is not committed once
// the row is free: the pool cancels the waiting statement on the server
// when the caller's context ends (without that, pgx only closed the
// socket, and the server ran the COMMIT it had already received once the
// row was free, storing a write whose caller had an error).
func TestLoneWriteCallerGivesUp(t *testing.T) {
	f := newGroupFixture(t, 1, 1)
	u := f.users[0]
	s := f.secrets[u][0]
	tx := f.lockRows(t, s.ID)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	// A patch that names the scope runs alone, never in a group; its new
	// value's statements go with the COMMIT in one round trip.
	value, scope := "written after the caller gave up", vault.ScopeAll
	_, writeErr := f.svc.UpdateSecret(ctx, u, s.ID, vault.SecretPatch{Value: &value, Scope: &scope})
	if writeErr == nil {
		t.Fatal("the rename returned no error while its row was locked past the caller's deadline")
	}
	// Wait until no statement waits for the row (the write's backend has
	// left the lock wait, cancelled or not), then free the row; a COMMIT
	// still queued on the server would now run.
	if err := tx.Rollback(context.Background()); err != nil {
		t.Fatal(err)
	}
	super, err := pgx.Connect(context.Background(), f.d.Super)
	if err != nil {
		t.Fatal(err)
	}
	defer super.Close(context.Background())
	for {
		var busy int
		if err := super.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
			AND (state = 'active' OR (state LIKE 'idle in transaction%'))`).Scan(&busy); err != nil {
			t.Fatal(err)
		}
		if busy == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	got, gerr := f.svc.Secret(context.Background(), u, s.ID)
	if gerr != nil {
		t.Fatal(gerr)
	}
	if got.Version != s.Version {
		t.Errorf("the secret is at version %d after a write whose caller got %q; want %d unchanged", got.Version, writeErr, s.Version)
	}
}

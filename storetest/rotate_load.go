package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envvault/envvault/vault"
)

// rotSecret is what a secret of testRotateUnderLoad should hold. Its name
// and value both carry its index, so a reader can tell a value that
// belongs to another secret.
type rotSecret struct {
	id, name, value string
	byVersion       map[int]string // every value it has had
}

func rotName(i, rename int) string {
	if rename == 0 {
		return fmt.Sprintf("S%03d", i)
	}
	return fmt.Sprintf("S%03d_R%d", i, rename)
}

func rotValue(i, version int) string { return value(fmt.Sprintf("s%03d-v%d", i, version)) }

// rotIndex returns the index a name of rotName carries.
func rotIndex(name string) (int, bool) {
	if len(name) < 4 || name[0] != 'S' {
		return 0, false
	}
	i, err := strconv.Atoi(name[1:4])
	return i, err == nil
}

// rotUsers users of rotPerUser secrets each are the data of
// testRotateUnderLoad.
const rotUsers, rotPerUser = 3, 40

// rotUser is a user of testRotateUnderLoad: its profile and what its
// secrets should hold, by index. mu guards secrets: the user's writer
// changes them while the test reads them.
type rotUser struct {
	id      string
	profile string
	mu      sync.Mutex
	secrets []rotSecret
}

// env is what the user's profile should release.
func (us *rotUser) env() map[string]string {
	us.mu.Lock()
	defer us.mu.Unlock()
	env := map[string]string{}
	for _, s := range us.secrets {
		env[s.name] = s.value
	}
	return env
}

// seedRotUsers makes the users and their secrets: every other one granted
// to the user's profile, every fourth with a kept version under the old
// key too.
func seedRotUsers(f *fixture) []*rotUser {
	state := make([]*rotUser, rotUsers)
	for u := range state {
		us := &rotUser{id: f.mustUser(fmt.Sprintf("user%d", u))}
		p := f.mustProfile(us.id, "p")
		us.profile = p.ID
		for i := range rotPerUser {
			var s *vault.Secret
			if i%2 == 0 {
				s = f.mustSecret(us.id, rotName(i, 0), rotValue(i, 1))
			} else {
				s = f.mustSecret(us.id, rotName(i, 0), rotValue(i, 1), p)
			}
			rs := rotSecret{s.ID, s.Name, rotValue(i, 1), map[int]string{1: rotValue(i, 1)}}
			if i%4 == 0 {
				// A kept version under the old key too.
				s = f.mustUpdateSecret(us.id, s.ID, vault.SecretPatch{Value: ptr(rotValue(i, 2))})
				rs.value, rs.byVersion[s.Version] = rotValue(i, 2), rotValue(i, 2)
			}
			us.secrets = append(us.secrets, rs)
		}
		state[u] = us
	}
	return state
}

func testRotateUnderLoad(t *testing.T, f *fixture) {
	const users, perUser = rotUsers, rotPerUser
	oldID := f.keys.CurrentID()
	state := seedRotUsers(f)
	// Before: every secret opens under the old key alone.
	for _, us := range state {
		f.wantEnv(us.id, us.profile, us.env())
	}
	versionsBefore := users * perUser / 4
	f.wantCounts(map[string]int{oldID: users*perUser + versionsBefore})

	// The service restarted with the new key current and the old one
	// previous, as the operator does before rotating.
	svc, keys, newKey := f.rotated()
	if err := svc.CheckKeys(f.ctx); err != nil {
		t.Fatalf("check keys with the new key and the old one: %v", err)
	}
	load := startRotLoad(t, f, svc, state)
	defer load.stop()
	res, calls := load.rotate(t, f, svc)
	t.Logf("rotation %+v in %d progress calls, beside %d reads and %d writes", res, calls, load.reads.Load(), load.writes.Load())
	if t.Failed() {
		return
	}

	if res.Total+res.AlreadyCurrent < users*perUser+versionsBefore || res.Rotated > res.Total || res.Rotated == 0 ||
		res.CurrentKeyID != keys.CurrentID() || len(res.Remaining) != 0 {
		t.Errorf("rotation result %+v for %d secrets and at least %d kept versions", res, users*perUser, versionsBefore)
	}
	if calls < 5 {
		t.Errorf("%d progress calls for batches of 7 of %d data keys", calls, res.Total)
	}
	if counts := f.mustCounts(); len(counts) != 1 || counts[keys.CurrentID()] < users*perUser+versionsBefore {
		t.Errorf("master key counts after rotation %v; want only %s, with at least %d", counts, keys.CurrentID(), users*perUser+versionsBefore)
	}
	f.wantKeyChecks(keys.CurrentID())

	// The new key alone passes start-up and opens everything: nothing was
	// lost, every write is there.
	newOnly := vault.NewService(f.store, mustKeyring(t, newKey), vault.Options{Now: f.now})
	if err := newOnly.CheckKeys(f.ctx); err != nil {
		t.Fatalf("check keys with the new key alone: %v", err)
	}
	for _, us := range state {
		env, err := newOnly.GetDecryptedForProfile(f.ctx, us.id, us.profile)
		if err != nil {
			noCanary(t, err)
			t.Fatalf("env under the new key alone: %v", err)
		}
		if w := us.env(); !mapsEqual(env, w) {
			t.Errorf("env of %s after rotation:\n got %s\nwant %s", us.id, envString(env), envString(w))
		}
	}
	if rollbacks := rollBackEveryVersion(t, f, newOnly, state); rollbacks < versionsBefore {
		t.Errorf("%d rollbacks, want at least %d", rollbacks, versionsBefore)
	}
}

// rollBackEveryVersion checks that every kept version opens under svc's
// keys: it rolls back to each in turn, the newest last, and the env holds
// its value. It returns how many rollbacks it made.
func rollBackEveryVersion(t *testing.T, f *fixture, svc *vault.Service, state []*rotUser) int {
	t.Helper()
	rollbacks := 0
	for _, us := range state {
		for i, s := range us.secrets {
			versions, err := svc.SecretVersions(f.ctx, us.id, s.id)
			if err != nil {
				t.Fatalf("versions of %s: %v", s.name, err)
			}
			for j := len(versions) - 1; j >= 0; j-- {
				v := versions[j]
				if v.Current {
					continue
				}
				if _, err := svc.RollbackSecret(f.ctx, us.id, s.id, v.Version); err != nil {
					noCanary(t, err)
					t.Fatalf("roll back %s to version %d under the new key alone: %v", s.name, v.Version, err)
				}
				us.secrets[i].value = s.byVersion[v.Version]
				rollbacks++
			}
		}
		env, err := svc.GetDecryptedForProfile(f.ctx, us.id, us.profile)
		if w := us.env(); err != nil || !mapsEqual(env, w) {
			noCanary(t, err)
			t.Errorf("env of %s after rollbacks: %v\n got %s\nwant %s", us.id, err, envString(env), envString(w))
		}
	}
	return rollbacks
}

// rotLoad is a reader and a writer per user that run before, during and
// after a rotation; the rotation waits after every batch for a read and a
// write to have happened since the last one, so they interleave.
type rotLoad struct {
	ctx           context.Context
	cancel        context.CancelFunc
	wg            sync.WaitGroup
	wrote, read   chan struct{}
	reads, writes atomic.Int64
}

func startRotLoad(t *testing.T, f *fixture, svc *vault.Service, state []*rotUser) *rotLoad {
	l := &rotLoad{wrote: make(chan struct{}, 1), read: make(chan struct{}, 1)}
	l.ctx, l.cancel = context.WithCancel(f.ctx)
	for _, us := range state {
		l.wg.Go(func() { l.reader(t, f, svc, us) })
		l.wg.Go(func() { l.writer(t, f, svc, us) })
	}
	return l
}

// stop stops the readers and writers and waits for them to end.
func (l *rotLoad) stop() {
	l.cancel()
	l.wg.Wait()
}

// signal tells a waiter, if none has been told yet, that c's event
// happened.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// reader reads the user's env until stopped: every value must be one its
// name's secret has had.
func (l *rotLoad) reader(t *testing.T, f *fixture, svc *vault.Service, us *rotUser) {
	for l.ctx.Err() == nil {
		env, err := svc.GetDecryptedForProfile(f.ctx, us.id, us.profile)
		if err != nil {
			noCanary(t, err)
			t.Errorf("read during rotation: %v", err)
			return
		}
		if len(env) != rotPerUser {
			t.Errorf("read during rotation: %d names, want %d", len(env), rotPerUser)
		}
		for name, v := range env {
			i, ok := rotIndex(name)
			if !ok || !strings.HasPrefix(v, value(fmt.Sprintf("s%03d-v", i))) {
				t.Errorf("read during rotation: %s holds %s", name, strings.TrimPrefix(v, canary+":"))
			}
		}
		l.reads.Add(1)
		signal(l.read)
	}
}

// writer gives the user's secrets a new value or a new name, in turn,
// until stopped.
func (l *rotLoad) writer(t *testing.T, f *fixture, svc *vault.Service, us *rotUser) {
	for n := 0; l.ctx.Err() == nil; n++ {
		i := n % rotPerUser
		us.mu.Lock()
		cur := us.secrets[i]
		us.mu.Unlock()
		var p vault.SecretPatch
		next := cur
		if n%2 == 0 {
			next.value = rotValue(i, n+2)
			p.Value = &next.value
		} else {
			next.name = rotName(i, n)
			p.Name = &next.name
		}
		sec, err := svc.UpdateSecret(f.ctx, us.id, cur.id, p)
		if err != nil {
			noCanary(t, err)
			t.Errorf("write during rotation: %v", err)
			return
		}
		us.mu.Lock()
		next.byVersion[sec.Version] = next.value
		us.secrets[i] = next
		us.mu.Unlock()
		l.writes.Add(1)
		signal(l.wrote)
	}
}

// await bounds a wait for the other goroutines; it is not a sleep.
func (l *rotLoad) await(t *testing.T, c chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(time.Minute):
		t.Fatalf("no %s for a minute", what)
	}
}

// rotate rotates in batches of 7, a read and a write between batches, lets
// a few more of each happen under the new key and stops the load. It
// returns the result and how many progress calls there were.
func (l *rotLoad) rotate(t *testing.T, f *fixture, svc *vault.Service) (vault.RotateResult, int) {
	t.Helper()
	calls := 0
	res, err := svc.RotateKeys(f.ctx, vault.RotateOptions{BatchSize: 7, Progress: func(done, total int) {
		if done > total {
			t.Errorf("progress %d of %d", done, total)
		}
		calls++
		l.await(t, l.read, "read")
		l.await(t, l.wrote, "write")
	}})
	if err != nil {
		noCanary(t, err)
		t.Fatalf("rotate under load: %v", err)
	}
	// And after: a few more of each under the new key.
	for range 3 {
		l.await(t, l.read, "read")
		l.await(t, l.wrote, "write")
	}
	l.stop()
	return res, calls
}

func testRotateStoppedAndResumed(t *testing.T, f *fixture) {
	// n secrets, of which the first kept have a second value: kept data
	// keys of kept versions (version 1) besides the n of the secrets.
	const n, kept, batch = 50, 5, 10
	const total = n + kept
	oldID := f.keys.CurrentID()
	user := f.mustUser("alice")
	p := f.mustProfile(user, "p")
	wantEnv := map[string]string{}
	var withVersions []*vault.Secret
	for i := range n {
		s := f.mustSecret(user, rotName(i, 0), rotValue(i, 1))
		wantEnv[s.Name] = rotValue(i, 1)
		if i < kept {
			s = f.mustUpdateSecret(user, s.ID, vault.SecretPatch{Value: ptr(rotValue(i, 2))})
			wantEnv[s.Name] = rotValue(i, 2)
			withVersions = append(withVersions, s)
		}
	}
	f.wantCounts(map[string]int{oldID: total})
	svc, keys, newKey := f.rotated()
	newID := keys.CurrentID()

	// Ctrl-C after the first batch: the batch commits, nothing more is
	// done.
	ctx, cancel := context.WithCancel(f.ctx)
	defer cancel()
	res, err := svc.RotateKeys(ctx, vault.RotateOptions{BatchSize: batch, Progress: func(done, _ int) {
		if done > 0 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("rotation canceled after the first batch: %v; want context.Canceled", err)
	}
	if res.Rotated != batch || res.Total != total {
		t.Errorf("stopped rotation: %+v; want %d of %d rotated", res, batch, total)
	}
	f.wantCounts(map[string]int{oldID: total - batch, newID: batch})
	// Half-rotated: the operator's keyring opens everything; start-up
	// without the old key refuses, naming it and how many keys need it.
	if env, err := svc.GetDecryptedForProfile(f.ctx, user, p.ID); err != nil || !mapsEqual(env, wantEnv) {
		t.Errorf("env half-rotated: %s, %v", envString(env), err)
	}
	err = vault.NewService(f.store, mustKeyring(t, newKey), vault.Options{}).CheckKeys(f.ctx)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%d data keys are sealed under master key %s", total-batch, oldID)) {
		t.Errorf("start-up with the new key alone, half-rotated: %v; want it to name %d data keys under %s", err, total-batch, oldID)
	}
	f.wantKeyChecks(oldID, newID)

	// Run again: it picks up where it stopped, kept versions included.
	res = mustRotate(t, svc, f.ctx, vault.RotateOptions{BatchSize: batch})
	if res.Rotated != total-batch || res.Total != total-batch || res.AlreadyCurrent != batch || len(res.Remaining) != 0 {
		t.Errorf("resumed rotation: %+v; want %d rotated, %d already current", res, total-batch, batch)
	}
	if !slices.Equal(res.DroppedChecks, []string{oldID}) {
		t.Errorf("resumed rotation dropped the key checks of %v, want %s", res.DroppedChecks, oldID)
	}
	f.wantCounts(map[string]int{newID: total})
	f.wantKeyChecks(newID)
	newOnly := vault.NewService(f.store, mustKeyring(t, newKey), vault.Options{})
	if err := newOnly.CheckKeys(f.ctx); err != nil {
		t.Fatalf("check keys with the new key alone: %v", err)
	}
	if env, err := newOnly.GetDecryptedForProfile(f.ctx, user, p.ID); err != nil || !mapsEqual(env, wantEnv) {
		t.Errorf("env under the new key alone: %s, %v", envString(env), err)
	}
	rollBackKept(t, f, newOnly, user, p, withVersions, wantEnv)

	// Nothing is left for a third run (the rollbacks sealed under the new
	// key).
	res = mustRotate(t, svc, f.ctx, vault.RotateOptions{BatchSize: batch})
	if res.Rotated != 0 || res.Total != 0 || res.AlreadyCurrent != n+2*kept {
		t.Errorf("rotation of a rotated store: %+v; want %d already current", res, n+2*kept)
	}
}

// rollBackKept checks that the kept versions (version 1 of each of
// withVersions) open under svc's keys: a rollback opens one, and the
// profile's env then holds its value.
func rollBackKept(t *testing.T, f *fixture, svc *vault.Service, user string, p *vault.Profile, withVersions []*vault.Secret, wantEnv map[string]string) {
	t.Helper()
	newOnly := svc
	for i, s := range withVersions {
		if _, err := newOnly.RollbackSecret(f.ctx, user, s.ID, 1); err != nil {
			noCanary(t, err)
			t.Fatalf("roll back %s to version 1 under the new key alone: %v", s.Name, err)
		}
		wantEnv[s.Name] = rotValue(i, 1)
	}
	if env, err := newOnly.GetDecryptedForProfile(f.ctx, user, p.ID); err != nil || !mapsEqual(env, wantEnv) {
		t.Errorf("env after rollbacks under the new key alone: %s, %v", envString(env), err)
	}
}

package storetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/envvault/envvault/vault"
)

// racers is how many goroutines a racing test releases at once.
const racers = 8

// race runs fn in racers goroutines released at once and returns their
// errors.
func race(fn func(i int) error) []error {
	errs := make([]error, racers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// tally checks the racers' errors: ok of them nil, the rest ECONFLICT.
func tally(t *testing.T, errs []error, ok int) {
	t.Helper()
	n := 0
	for _, err := range errs {
		if err == nil {
			n++
			continue
		}
		wantErr(t, err, vault.ECONFLICT, "")
	}
	if n != ok {
		t.Errorf("%d of %d racers succeeded, want %d", n, racers, ok)
	}
}

// racingQuota is the quota of the racing quota test.
const racingQuota = 5

// racingWritesTests race writes that only one (or a quota's worth) may
// win, each on a store of its own.
var racingWritesTests = []test{
	{name: "same all name", fn: func(t *testing.T, f *fixture) {
		user := f.mustUser("alice")
		p := f.mustProfile(user, "p")
		var mu sync.Mutex
		winner := ""
		errs := race(func(i int) error {
			_, err := f.svc.CreateSecret(f.ctx, user, vault.SecretInput{Name: "RACE", Value: value(fmt.Sprint(i))})
			if err == nil {
				mu.Lock()
				winner = value(fmt.Sprint(i))
				mu.Unlock()
			}
			return err
		})
		tally(t, errs, 1)
		if n := f.mustCount(user); n != 1 {
			t.Errorf("%d secrets after the race, want 1", n)
		}
		f.wantEnv(user, p.ID, map[string]string{"RACE": winner})
	}},
	{name: "same agents name on one profile", fn: func(t *testing.T, f *fixture) {
		user := f.mustUser("alice")
		p := f.mustProfile(user, "p")
		errs := race(func(i int) error {
			_, err := f.svc.CreateSecret(f.ctx, user, vault.SecretInput{Name: "RACE", Value: value(fmt.Sprint(i)), Scope: vault.ScopeAgents, ProfileIDs: []string{p.ID}})
			return err
		})
		tally(t, errs, 1)
		if n := f.mustCount(user); n != 1 {
			t.Errorf("%d secrets after the race, want 1", n)
		}
	}},
	// No unique index guards the limit: only serialized writes do.
	{name: "quota", opts: vault.Options{MaxSecrets: racingQuota}, fn: func(t *testing.T, f *fixture) {
		const limit = racingQuota
		user := f.mustUser("alice")
		errs := race(func(i int) error {
			_, err := f.svc.CreateSecret(f.ctx, user, vault.SecretInput{Name: fmt.Sprintf("RACE_%d", i), Value: value(fmt.Sprint(i))})
			return err
		})
		tally(t, errs, limit)
		if n := f.mustCount(user); n != limit {
			t.Errorf("%d secrets after the race, want %d", n, limit)
		}
	}},
	// Creates take turns under the quota; updates of other secrets race
	// them and take no part in the count.
	{name: "quota with updates racing", opts: vault.Options{MaxSecrets: racingQuota}, fn: testRacingQuotaWithUpdates},
	{name: "renames onto one name", fn: func(t *testing.T, f *fixture) {
		user := f.mustUser("alice")
		var secrets []*vault.Secret
		for i := range racers {
			secrets = append(secrets, f.mustSecret(user, fmt.Sprintf("FROM_%d", i), value(fmt.Sprint(i))))
		}
		errs := race(func(i int) error {
			_, err := f.svc.UpdateSecret(f.ctx, user, secrets[i].ID, vault.SecretPatch{Name: ptr("TO")})
			return err
		})
		tally(t, errs, 1)
		err := f.store.View(f.ctx, user, func(tx vault.Tx) error {
			named, err := tx.SecretsNamed(f.ctx, "TO")
			if len(named) != 1 {
				t.Errorf("%d secrets named TO, want 1", len(named))
			}
			return err
		})
		if err != nil {
			t.Fatalf("view: %v", err)
		}
	}},
}

// testRacingQuotaWithUpdates races creates (the even racers), two of which
// fit under the quota, with value updates of the user's other secrets (the
// odd racers), which all succeed; the chain holds each once.
func testRacingQuotaWithUpdates(t *testing.T, f *fixture) {
	user := f.mustUser("alice")
	var old []*vault.Secret
	for i := range racingQuota - 2 {
		old = append(old, f.mustSecret(user, fmt.Sprintf("OLD_%d", i), value("old")))
	}
	before := len(chain(t, f.store))
	errs := race(func(i int) error {
		if i%2 == 0 {
			_, err := f.svc.CreateSecret(f.ctx, user, vault.SecretInput{Name: fmt.Sprintf("NEW_%d", i), Value: value("new")})
			return err
		}
		_, err := f.svc.UpdateSecret(f.ctx, user, old[i/2%len(old)].ID, vault.SecretPatch{Value: ptr(value(fmt.Sprint(i)))})
		return err
	})
	var creates, updates []error
	for i, err := range errs {
		if i%2 == 0 {
			creates = append(creates, err)
		} else {
			updates = append(updates, err)
		}
	}
	created := 0
	for _, err := range creates {
		if err == nil {
			created++
		} else {
			wantErr(t, err, vault.ECONFLICT, "")
		}
	}
	for _, err := range updates {
		if err != nil {
			t.Errorf("an update racing creates: %v", err)
		}
	}
	if created != 2 || f.mustCount(user) != racingQuota {
		t.Errorf("%d creates won, %d secrets; want 2 and %d", created, f.mustCount(user), racingQuota)
	}
	if got, want := mustVerify(t, f.store), int64(before+created+len(updates)); got != want {
		t.Errorf("verified %d events, want %d", got, want)
	}
}

package vault

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// The release of a profile's secrets is the one way a value leaves the
// vault: GetDecryptedForProfile (the product's core contract), its variant
// that also names each value's secret, and ReleaseForTask, which records the
// release in the audit trail first. The override rule lives here, in
// resolve, and nowhere else.

// EnvSecret says which secret supplies a name to a profile.
type EnvSecret struct {
	Name     string
	SecretID string
	Scope    Scope
	Version  int
}

// ReleasedSecret is one name a profile receives from the vault: its
// plaintext value and the secret that supplied it. Formatting it with the
// fmt package never shows the value.
type ReleasedSecret struct {
	EnvSecret
	Value string
}

// String names the secret without its value.
func (r ReleasedSecret) String() string {
	return fmt.Sprintf("%s from %s (v%d, %s)", r.Name, r.SecretID, r.Version, r.Scope)
}

// GoString is String, so that %#v does not print the value either.
func (r ReleasedSecret) GoString() string { return r.String() }

// resolve applies the override rule: for each name, a ScopeAgents secret
// granting the profile wins over the ScopeAll one; between two of one
// scope (which the store's uniqueness rules prevent) the lower id wins, so
// the result never depends on the order rows were read. The result is
// sorted by name.
func resolve(secrets []*Secret, profileID string) []*Secret {
	byName := make(map[string]*Secret, len(secrets))
	for _, sec := range secrets {
		if !sec.grants(profileID) {
			continue
		}
		prev, ok := byName[sec.Name]
		if !ok || (sec.Scope == ScopeAgents && prev.Scope == ScopeAll) ||
			(sec.Scope == prev.Scope && sec.ID < prev.ID) {
			byName[sec.Name] = sec
		}
	}
	out := make([]*Secret, 0, len(byName))
	for _, sec := range byName {
		out = append(out, sec)
	}
	slices.SortFunc(out, func(a, b *Secret) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (sec *Secret) envSecret() EnvSecret {
	return EnvSecret{Name: sec.Name, SecretID: sec.ID, Scope: sec.Scope, Version: sec.Version}
}

// resolvedForProfile reads the profile's secrets and applies the override
// rule. Returns ENOTFOUND if the profile is not the user's.
func (s *Service) resolvedForProfile(ctx context.Context, userID, profileID string) ([]*Secret, error) {
	secrets, err := s.store.SecretsForProfile(ctx, userID, profileID)
	if err != nil {
		return nil, fmt.Errorf("read secrets for profile %s: %w", profileID, err)
	}
	return resolve(secrets, profileID), nil
}

// ProfileSecrets returns which secret supplies each name a task on the
// profile would receive from the vault, sorted by name, without values.
// Returns ENOTFOUND if the profile is not the user's.
func (s *Service) ProfileSecrets(ctx context.Context, userID, profileID string) ([]EnvSecret, error) {
	resolved, err := s.resolvedForProfile(ctx, userID, profileID)
	if err != nil {
		return nil, err
	}
	out := make([]EnvSecret, len(resolved))
	for i, sec := range resolved {
		out[i] = sec.envSecret()
	}
	return out, nil
}

// ErrDecrypt is wrapped by the release functions when a secret in the
// profile's scope cannot be opened; the error names that secret's id.
var ErrDecrypt = errors.New("secret cannot be decrypted")

// GetDecryptedForProfile returns the env a task on the profile receives
// from the vault: NAME -> plaintext value of every secret granted to it,
// an `agents` secret overriding the `all` one of the same name. It returns
// all or nothing: if any secret fails to open, the error names it and wraps
// ErrDecrypt. Returns ENOTFOUND if the profile is not the user's.
func (s *Service) GetDecryptedForProfile(ctx context.Context, userID, profileID string) (map[string]string, error) {
	released, err := s.GetDecryptedForProfileWithSources(ctx, userID, profileID)
	if err != nil {
		return nil, err
	}
	env := make(map[string]string, len(released))
	for _, r := range released {
		env[r.Name] = r.Value
	}
	return env, nil
}

// GetDecryptedForProfileWithSources is GetDecryptedForProfile that also
// says which secret, at which version, supplied each value: one entry per
// name, sorted by name, the override rule already applied.
func (s *Service) GetDecryptedForProfileWithSources(ctx context.Context, userID, profileID string) ([]ReleasedSecret, error) {
	resolved, err := s.resolvedForProfile(ctx, userID, profileID)
	if err != nil {
		return nil, err
	}
	out := make([]ReleasedSecret, len(resolved))
	if err := s.openAll(resolved, out); err != nil {
		return nil, fmt.Errorf("profile %s: %w", profileID, err)
	}
	// An oauth2 secret's opened value is its client secret, which never
	// leaves: it is replaced by an access token (oauth2_refresh.go).
	if err := s.releaseOAuth2(ctx, userID, resolved, out); err != nil {
		return nil, fmt.Errorf("profile %s: %w", profileID, err)
	}
	return out, nil
}

// openPerWorker is the fewest secrets a release opens on a goroutine of
// its own: below it, starting one costs more than it saves.
const openPerWorker = 256

// openAll opens resolved into out, split over up to GOMAXPROCS goroutines
// for a large release (a task start of 10,000 secrets spends most of its
// time here). The error names the first secret, in order, that failed.
func (s *Service) openAll(resolved []*Secret, out []ReleasedSecret) error {
	workers := max(1, min(runtime.GOMAXPROCS(0), len(resolved)/openPerWorker))
	if workers == 1 {
		return s.openRange(resolved, out)
	}
	per := (len(resolved) + workers - 1) / workers
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*per, min((w+1)*per, len(resolved))
		wg.Go(func() { errs[w] = s.openRange(resolved[lo:hi], out[lo:hi]) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// openRange opens resolved into out with one opener.
func (s *Service) openRange(resolved []*Secret, out []ReleasedSecret) error {
	o := s.keys.newSecretOpener()
	defer o.close()
	for i, sec := range resolved {
		v, err := o.open(sec)
		if err != nil {
			return fmt.Errorf("secret %s: %w: %w", sec.ID, ErrDecrypt, err)
		}
		out[i] = ReleasedSecret{EnvSecret: sec.envSecret(), Value: v}
	}
	return nil
}

// TaskRelease says which task a release of secrets is for.
type TaskRelease struct {
	TaskID    string
	ProfileID string
	Attempt   int
}

// ReleaseForTask returns, as GetDecryptedForProfileWithSources does, what a
// task on the profile receives from the vault, once it has recorded the
// release in the audit trail (task.release: see releaseDetails). If the record cannot be written, nothing
// is released. Call it once per container start. Returns ENOTFOUND if the
// profile is not the user's.
func (s *Service) ReleaseForTask(ctx context.Context, userID string, r TaskRelease) ([]ReleasedSecret, error) {
	released, err := s.GetDecryptedForProfileWithSources(ctx, userID, r.ProfileID)
	if err != nil {
		return nil, err
	}
	details := releaseDetails(r, released)
	err = s.store.Update(ctx, userID, func(tx Tx) error {
		return s.audit(ctx, tx, userID, ActionTaskRelease, TargetTask, r.TaskID, details)
	})
	if err != nil {
		return nil, fmt.Errorf("release secrets to task %s: %w", r.TaskID, err)
	}
	return released, nil
}

// releaseDetails are the details of a task.release event: the profile, the
// attempt, and every released secret as "<secret id>@<version>", in the
// order of the names it supplies, separated by spaces, in one string;
// never a value. (The names are in the task's env sources.) One string,
// not a list: the audit trail encodes, hashes and decodes the details of
// every event, and a list of 10,000 elements (let alone objects) costs it
// tens of milliseconds at each step.
func releaseDetails(r TaskRelease, released []ReleasedSecret) map[string]any {
	var b strings.Builder
	b.Grow(len(released) * 32)
	for i, src := range released {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(src.SecretID)
		b.WriteByte('@')
		b.WriteString(strconv.Itoa(src.Version))
	}
	return map[string]any{"profile_id": r.ProfileID, "attempt": r.Attempt, "secrets": b.String()}
}

// ValuesAtVersions returns the values the given secrets of userID had at
// the given versions (the current value or a kept one), in no particular
// order, for masking the logs of a container that was given them: after a
// restart of envvault the vault is the only place left that knows a value
// rotated since the container started, once the engine does not hold the
// container's env (stdin delivery). A secret deleted since, or a version
// no longer kept, is skipped; one that cannot be opened is an error
// wrapping ErrDecrypt and naming its id. The values never leave envvault.
func (s *Service) ValuesAtVersions(ctx context.Context, userID string, refs []EnvSecret) ([]string, error) {
	out := make([]string, 0, len(refs))
	err := s.store.View(ctx, userID, func(tx Tx) error {
		for _, ref := range refs {
			sec, err := tx.Secret(ctx, ref.SecretID)
			if ErrorCode(err) == ENOTFOUND {
				continue
			} else if err != nil {
				return fmt.Errorf("read secret %s: %w", ref.SecretID, err)
			}
			if sec.Kind == KindOAuth2 {
				// The container got an access token, not this value: the
				// one held now (a token refreshed since it started is
				// not kept).
				tok, err := s.currentAccessToken(ctx, tx, sec.ID)
				if err != nil {
					return fmt.Errorf("secret %s: %w", ref.SecretID, err)
				}
				if tok != "" {
					out = append(out, tok)
				}
			}
			if sec.Version != ref.Version {
				kept, err := tx.KeptVersion(ctx, ref.SecretID, ref.Version)
				if ErrorCode(err) == ENOTFOUND {
					continue
				} else if err != nil {
					return fmt.Errorf("read secret %s version %d: %w", ref.SecretID, ref.Version, err)
				}
				sec = kept.sealed()
			}
			v, err := s.keys.openSecret(sec)
			if err != nil {
				return fmt.Errorf("secret %s version %d: %w: %w", ref.SecretID, ref.Version, ErrDecrypt, err)
			}
			out = append(out, v)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

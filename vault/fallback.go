package vault

import (
	"context"
	"fmt"
	"slices"
)

// ProfileSecretsWithout returns which secret would supply each name to the
// profile if secret secretID did not exist: ProfileSecrets with that one
// secret left out, the override rule (resolve) applied to the rest. A
// delete confirmation uses it to say what a profile falls back to. It
// never returns a value. Returns ENOTFOUND if the profile is not the
// user's.
func (s *Service) ProfileSecretsWithout(ctx context.Context, userID, profileID, secretID string) ([]EnvSecret, error) {
	secrets, err := s.store.SecretsForProfile(ctx, userID, profileID)
	if err != nil {
		return nil, fmt.Errorf("read secrets for profile %s: %w", profileID, err)
	}
	secrets = slices.DeleteFunc(secrets, func(sec *Secret) bool { return sec.ID == secretID })
	resolved := resolve(secrets, profileID)
	out := make([]EnvSecret, len(resolved))
	for i, sec := range resolved {
		out[i] = sec.envSecret()
	}
	return out, nil
}

// LockedNames returns the operator's locked names (Options.Names.Locked):
// names no secret may take, which always come from the platform's
// baseline env.
func (s *Service) LockedNames() []string { return slices.Clone(s.names.Locked) }

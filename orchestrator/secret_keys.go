package orchestrator

import (
	"context"
	"slices"
	"strings"

	"github.com/envvault/envvault/vault"
)

// Where a SecretKey's value comes from: a secret of scope all or agents,
// the profile's env, the operator's baseline, or nowhere yet.
const (
	KeySourceAll        = "all"
	KeySourceAgents     = "agents"
	KeySourceProfileEnv = "profile_env"
	KeySourceBaseline   = "baseline"
	KeySourceMissing    = "missing"
)

// SecretKey is one name a profile declares or receives, and whether a task
// on it would get a value for it; never the value.
type SecretKey struct {
	Name        string
	HasValue    bool
	Source      string // one of the KeySource constants
	Required    bool
	Description string // the profile's description of a required name
}

// SecretKeys lists, sorted by name, every name a task on profile p would
// receive (as Preview decides, so the override rule and locked names are
// vault.resolve's and Merge's) and every name p requires, each with where
// its value comes from; a required name no layer supplies is missing.
// TASK_ID and TASK_PROMPT, which every task receives, are left out. It is
// a pure function.
func SecretKeys(b Baseline, p *vault.Profile, secrets []vault.EnvSecret) []SecretKey {
	byName := map[string]*SecretKey{}
	for _, s := range Preview(b, p.Env, secrets) {
		k := &SecretKey{Name: s.Name, HasValue: true}
		switch s.Source {
		case SourceSecret:
			k.Source = s.Scope // vault.ScopeAll or vault.ScopeAgents: the same words
		case SourceProfile:
			k.Source = KeySourceProfileEnv
		case SourceBaseline:
			k.Source = KeySourceBaseline
		default:
			continue
		}
		byName[s.Name] = k
	}
	for _, r := range p.RequiredSecrets {
		k, ok := byName[r.Name]
		if !ok {
			k = &SecretKey{Name: r.Name, Source: KeySourceMissing}
			byName[r.Name] = k
		}
		k.Required, k.Description = true, r.Description
	}
	out := make([]SecretKey, 0, len(byName))
	for _, k := range byName {
		out = append(out, *k)
	}
	slices.SortFunc(out, func(a, b SecretKey) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// MissingRequired returns the names p requires that sources (what Preview
// says a task on p receives) do not give, in p's order: the required names
// of SecretKeys that have no value.
func MissingRequired(p *vault.Profile, sources []EnvSource) []string {
	var out []string
	for _, r := range p.RequiredSecrets {
		if !slices.ContainsFunc(sources, func(s EnvSource) bool { return s.Name == r.Name && s.Source != SourceTask }) {
			out = append(out, r.Name)
		}
	}
	return out
}

// MissingSecrets returns, sorted, the required names of keys that have no
// value.
func MissingSecrets(keys []SecretKey) []string {
	var out []string
	for _, k := range keys {
		if k.Required && !k.HasValue {
			out = append(out, k.Name)
		}
	}
	return out
}

// SecretKeys is SecretKeys for a profile of the user with this process's
// baseline. Returns ENOTFOUND if the profile is not the user's.
func (o *Orchestrator) SecretKeys(ctx context.Context, userID, profileID string) ([]SecretKey, error) {
	p, secrets, err := o.profileSecrets(ctx, userID, profileID)
	if err != nil {
		return nil, err
	}
	return SecretKeys(o.baseline, p, secrets), nil
}

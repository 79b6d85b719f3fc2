package orchestrator

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/envvault/envvault/internal/dotenv"
	"github.com/envvault/envvault/vault"
)

// Env sources, as recorded for every injected name.
const (
	SourceBaseline = "baseline"
	SourceProfile  = "profile"
	SourceSecret   = "secret"
	SourceTask     = "task"
)

// EnvSource says where one injected name came from, never its value.
// SecretID and Version are set for SourceSecret.
type EnvSource struct {
	Name     string `json:"name"`
	Source   string `json:"source"`
	SecretID string `json:"secret_id,omitempty"`
	Scope    string `json:"scope,omitempty"`
	Version  int    `json:"version,omitempty"`
}

// Baseline is the platform's env given by the operator: values every task
// receives unless overridden, and locked names no one can override.
type Baseline struct {
	Env    map[string]string
	Locked []string
}

// MergeInput is everything a task's env is made of.
type MergeInput struct {
	Baseline Baseline
	Profile  map[string]string
	// Secrets is what the vault releases to the profile: one entry per
	// name, the override rule (agents over all) already applied by it.
	Secrets []vault.ReleasedSecret
	TaskID  string
	Prompt  string
	// TaskToken and TaskAPIURL, if not empty, are given as EnvTaskToken
	// and EnvTaskAPIURL (task_credential.go).
	TaskToken  string
	TaskAPIURL string
}

// Merge builds a task's env, lowest to highest precedence: baseline,
// profile env, the vault's secrets, locked baseline names, then TASK_ID and
// TASK_PROMPT (and the task credential and API URL, when given). It returns the env and the
// source of every name, sorted by name. It is a pure function.
func Merge(in MergeInput) (map[string]string, []EnvSource) {
	env := make(map[string]string, len(in.Baseline.Env)+len(in.Profile)+len(in.Secrets)+2)
	src := make(map[string]EnvSource, len(in.Baseline.Env)+len(in.Profile)+len(in.Secrets)+2)
	set := func(name, value string, s EnvSource) {
		s.Name = name
		env[name] = value
		src[name] = s
	}
	for k, v := range in.Baseline.Env {
		set(k, v, EnvSource{Source: SourceBaseline})
	}
	for k, v := range in.Profile {
		set(k, v, EnvSource{Source: SourceProfile})
	}
	for _, s := range in.Secrets {
		set(s.Name, s.Value, EnvSource{Source: SourceSecret, SecretID: s.SecretID, Scope: string(s.Scope), Version: s.Version})
	}
	for _, k := range in.Baseline.Locked {
		if v, ok := in.Baseline.Env[k]; ok {
			set(k, v, EnvSource{Source: SourceBaseline})
		} else {
			delete(env, k) // locked with no baseline value: no one sets it
			delete(src, k)
		}
	}
	set("TASK_ID", in.TaskID, EnvSource{Source: SourceTask})
	set("TASK_PROMPT", in.Prompt, EnvSource{Source: SourceTask})
	if in.TaskToken != "" {
		set(EnvTaskToken, in.TaskToken, EnvSource{Source: SourceTask})
		set(EnvTaskAPIURL, in.TaskAPIURL, EnvSource{Source: SourceTask})
	}
	sources := make([]EnvSource, 0, len(src))
	for _, s := range src {
		sources = append(sources, s)
	}
	sort.Slice(sources, func(i, j int) bool { return sources[i].Name < sources[j].Name })
	return env, sources
}

// Preview returns the names a task on a profile would receive and where
// each comes from, as Merge decides for them, never a value. secrets is
// what vault.Service.ProfileSecrets says the profile gets. TASK_ID and
// TASK_PROMPT are included: every task receives them.
func Preview(b Baseline, profileEnv map[string]string, secrets []vault.EnvSecret) []EnvSource {
	names := make([]vault.ReleasedSecret, len(secrets))
	for i, s := range secrets {
		names[i] = vault.ReleasedSecret{EnvSecret: s}
	}
	_, sources := Merge(MergeInput{Baseline: b, Profile: profileEnv, Secrets: names})
	return sources
}

// PreviewEnv is Preview for a profile of the user with this process's
// baseline. Returns ENOTFOUND if the profile is not the user's.
func (o *Orchestrator) PreviewEnv(ctx context.Context, userID, profileID string) ([]EnvSource, error) {
	p, secrets, err := o.profileSecrets(ctx, userID, profileID)
	if err != nil {
		return nil, err
	}
	return Preview(o.baseline, p.Env, secrets), nil
}

// profileSecrets reads a profile of the user and which secret supplies
// each name it receives (vault.Service.ProfileSecrets). Returns ENOTFOUND
// if the profile is not the user's.
func (o *Orchestrator) profileSecrets(ctx context.Context, userID, profileID string) (*vault.Profile, []vault.EnvSecret, error) {
	p, err := o.vault.Profile(ctx, userID, profileID)
	if err != nil {
		return nil, nil, err
	}
	secrets, err := o.vault.ProfileSecrets(ctx, userID, profileID)
	if err != nil {
		return nil, nil, err
	}
	return p, secrets, nil
}

// LoadBaseline reads the operator's baseline dotenv file and lock list.
// An empty path gives an empty baseline. Errors name the file, the line and
// the reason, never a value.
func LoadBaseline(path string, locked []string) (Baseline, error) {
	b := Baseline{Env: map[string]string{}}
	for _, name := range locked {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if err := vault.ValidateName("locked name", name); err != nil {
			return b, fmt.Errorf("locked names: %q must match %s", name, vault.NamePattern)
		}
		b.Locked = append(b.Locked, name)
	}
	if path == "" {
		return b, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return b, fmt.Errorf("baseline env file: %w", err)
	}
	env, err := dotenv.ParseMap(data)
	if err != nil {
		return b, fmt.Errorf("baseline env file %s: %w", path, err)
	}
	b.Env = env
	return b, nil
}

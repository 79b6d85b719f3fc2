package orchestrator

import (
	"fmt"
	"slices"
	"testing"

	"github.com/envvault/envvault/vault"
)

func TestSecretKeys(t *testing.T) {
	b := Baseline{Env: map[string]string{"REGION": "eu", "PROXY": "p"}, Locked: []string{"PROXY", "LOCKED_NO_VALUE"}}
	p := &vault.Profile{
		Env: map[string]string{"MODE": "ci", "PROXY": "mine"},
		RequiredSecrets: []vault.RequiredSecret{
			{Name: "GITHUB_TOKEN", Description: "repo scope"},
			{Name: "NEEDED", Description: "not given yet"},
			{Name: "MODE"}, {Name: "REGION"}, {Name: "LOCKED_NO_VALUE"},
		},
	}
	// ProfileSecrets has already applied the override rule: one entry per name.
	secrets := []vault.EnvSecret{
		{Name: "GITHUB_TOKEN", SecretID: "sec_a", Scope: vault.ScopeAgents, Version: 2},
		{Name: "SHARED", SecretID: "sec_b", Scope: vault.ScopeAll, Version: 1},
	}
	got := SecretKeys(b, p, secrets)
	want := []SecretKey{
		{Name: "GITHUB_TOKEN", HasValue: true, Source: KeySourceAgents, Required: true, Description: "repo scope"},
		{Name: "LOCKED_NO_VALUE", Source: KeySourceMissing, Required: true},
		{Name: "MODE", HasValue: true, Source: KeySourceProfileEnv, Required: true},
		{Name: "NEEDED", Source: KeySourceMissing, Required: true, Description: "not given yet"},
		{Name: "PROXY", HasValue: true, Source: KeySourceBaseline},
		{Name: "REGION", HasValue: true, Source: KeySourceBaseline, Required: true},
		{Name: "SHARED", HasValue: true, Source: KeySourceAll},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("SecretKeys:\n got %v\nwant %v", got, want)
	}
	if m := MissingSecrets(got); !slices.Equal(m, []string{"LOCKED_NO_VALUE", "NEEDED"}) {
		t.Errorf("MissingSecrets = %v, want [LOCKED_NO_VALUE NEEDED]", m)
	}
	// The dashboard's reading of the same preview agrees.
	if m := MissingRequired(p, Preview(b, p.Env, secrets)); !slices.Equal(slices.Sorted(slices.Values(m)), MissingSecrets(got)) {
		t.Errorf("MissingRequired = %v, want the names of %v", m, MissingSecrets(got))
	}
	if m := MissingSecrets(SecretKeys(Baseline{}, &vault.Profile{}, nil)); len(m) != 0 {
		t.Errorf("a profile requiring nothing misses %v", m)
	}
}

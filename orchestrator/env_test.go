package orchestrator

import (
	"maps"
	"strings"
	"testing"

	"github.com/envvault/envvault/vault"
)

func TestMergePrecedence(t *testing.T) {
	env, sources := Merge(MergeInput{
		Baseline: Baseline{
			Env:    map[string]string{"ANTHROPIC_API_KEY": "base-key", "MCP_URL": "http://mcp", "SHARED": "base", "LOG_LEVEL": "info"},
			Locked: []string{"ANTHROPIC_API_KEY", "NOBODY"},
		},
		Profile: map[string]string{"SHARED": "profile", "LOG_LEVEL": "debug", "ANTHROPIC_API_KEY": "profile-key", "NOBODY": "x", "TASK_ID": "forged"},
		Secrets: []vault.ReleasedSecret{
			{EnvSecret: vault.EnvSecret{Name: "SHARED", SecretID: "sec_a", Scope: vault.ScopeAgents, Version: 3}, Value: "agents-secret"},
			{EnvSecret: vault.EnvSecret{Name: "DB_URL", SecretID: "sec_b", Scope: vault.ScopeAll, Version: 1}, Value: "all-secret"},
		},
		TaskID: "tsk_1",
		Prompt: "do it",
	})
	want := map[string]string{
		"ANTHROPIC_API_KEY": "base-key", // locked: baseline beats profile
		"MCP_URL":           "http://mcp",
		"SHARED":            "agents-secret",
		"LOG_LEVEL":         "debug",
		"DB_URL":            "all-secret",
		"TASK_ID":           "tsk_1",
		"TASK_PROMPT":       "do it",
	}
	if !maps.Equal(env, want) {
		t.Fatalf("env = %v\nwant %v", env, want)
	}
	var names []string
	bySource := map[string]EnvSource{}
	for _, s := range sources {
		names = append(names, s.Name)
		bySource[s.Name] = s
	}
	if strings.Join(names, ",") != "ANTHROPIC_API_KEY,DB_URL,LOG_LEVEL,MCP_URL,SHARED,TASK_ID,TASK_PROMPT" {
		t.Fatalf("sources not sorted or incomplete: %v", names)
	}
	if s := bySource["SHARED"]; s.Source != SourceSecret || s.SecretID != "sec_a" || s.Version != 3 {
		t.Fatalf("SHARED source = %+v", s)
	}
	if bySource["LOG_LEVEL"].Source != SourceProfile || bySource["ANTHROPIC_API_KEY"].Source != SourceBaseline {
		t.Fatalf("sources = %+v", sources)
	}
}

func TestPreview(t *testing.T) {
	got := Preview(
		Baseline{Env: map[string]string{"ANTHROPIC_API_KEY": "k", "SHARED": "b"}, Locked: []string{"ANTHROPIC_API_KEY"}},
		map[string]string{"SHARED": "p", "ANTHROPIC_API_KEY": "mine", "LOG_LEVEL": "info"},
		[]vault.EnvSecret{{Name: "SHARED", SecretID: "sec_a", Scope: vault.ScopeAll, Version: 2}},
	)
	var rows []string
	for _, s := range got {
		rows = append(rows, s.Name+"="+s.Source+s.SecretID)
	}
	want := "ANTHROPIC_API_KEY=baseline LOG_LEVEL=profile SHARED=secretsec_a TASK_ID=task TASK_PROMPT=task"
	if strings.Join(rows, " ") != want {
		t.Fatalf("Preview = %s\nwant      %s", strings.Join(rows, " "), want)
	}
}

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
		Secrets: map[string]string{"SHARED": "agents-secret", "DB_URL": "all-secret"},
		Sources: []vault.EnvSecret{
			{Name: "SHARED", SecretID: "sec_a", Scope: vault.ScopeAgents, Version: 3},
			{Name: "DB_URL", SecretID: "sec_b", Scope: vault.ScopeAll, Version: 1},
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

func TestParseDotenv(t *testing.T) {
	env, err := ParseDotenv([]byte("# platform\nANTHROPIC_API_KEY=sk-ant-123\nexport MCP_URL = http://mcp:8080/x?a=b \n\nQUOTED='a # b'\nESCAPED=\"l1\\nl2\" # note\nEMPTY=\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"ANTHROPIC_API_KEY": "sk-ant-123", "MCP_URL": "http://mcp:8080/x?a=b", "QUOTED": "a # b", "ESCAPED": "l1\nl2", "EMPTY": ""}
	if !maps.Equal(env, want) {
		t.Fatalf("env = %q", env)
	}
	bad := []struct{ in, want string }{
		{"A=1\njust words\n", "line 2: expected NAME=value"},
		{"A=1\nlower=x\n", "line 2: name must match"},
		{"A=1\n\nA=2\n", "line 3: A is set twice"},
		{"A=\"canary-secret\n", "line 1: value of A: missing closing quote"},
		{"A='canary-secret' tail\n", "line 1: value of A: unexpected text"},
		{"A=\"canary\\q\"\n", "line 1: value of A: unknown escape"},
	}
	for _, tt := range bad {
		_, err := ParseDotenv([]byte(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseDotenv(%q) = %v, want %q", tt.in, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "canary") {
			t.Errorf("error leaks the value: %v", err)
		}
	}
}

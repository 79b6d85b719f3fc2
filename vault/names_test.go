package vault

import (
	"strings"
	"testing"
)

func TestNamePolicy(t *testing.T) {
	p := NamePolicy{Locked: []string{"ANTHROPIC_API_KEY"}, Allowed: []string{"NODE_OPTIONS"}}
	tests := []struct {
		name string
		want string // substring of the error; "" when allowed
	}{
		{"GITHUB_TOKEN", ""},
		{"ANTHROPIC_API_KEY", "locked"},
		{"LD_PRELOAD", "load code"},
		{"LD_ANYTHING", "load code"},
		{"DYLD_INSERT_LIBRARIES", "load code"},
		{"BASH_ENV", "load code"},
		{"ENV", "load code"},
		{"ENVIRONMENT", ""},
		{"NODE_OPTIONS", ""}, // allowed by the operator
		{"PYTHONSTARTUP", "load code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.check("name", tt.name)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("check(%s) = %v, want %q", tt.name, err, tt.want)
			}
			if err != nil && (ErrorCode(err) != EINVALID || ErrorField(err) != "name") {
				t.Fatalf("code %s field %s", ErrorCode(err), ErrorField(err))
			}
		})
	}
}

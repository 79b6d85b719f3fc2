package vault

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestValidateScope(t *testing.T) {
	tests := []struct {
		name  string
		scope Scope
		ids   []string
		field string // "" when valid
		want  []string
	}{
		{"all", ScopeAll, nil, "", nil},
		{"all with ids", ScopeAll, []string{"prof_a"}, "profile_ids", nil},
		{"agents sorted", ScopeAgents, []string{"prof_b", "prof_a"}, "", []string{"prof_a", "prof_b"}},
		{"agents empty", ScopeAgents, nil, "profile_ids", nil},
		{"agents duplicate", ScopeAgents, []string{"prof_a", "prof_a"}, "profile_ids", nil},
		{"unknown scope", "some", nil, "scope", nil},
		{"upper-case scope", "ALL", nil, "scope", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := validateScope(tt.scope, tt.ids)
			if ErrorField(err) != tt.field {
				t.Fatalf("err = %v, want field %q", err, tt.field)
			}
			if err != nil && !strings.HasPrefix(ErrorMessage(err), tt.field+": ") {
				t.Fatalf("message %q does not name the field", ErrorMessage(err))
			}
			if err == nil && !slices.Equal(got, tt.want) {
				t.Fatalf("ids = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestResolveOverride(t *testing.T) {
	all := &Secret{ID: "sec_1", Name: "TOKEN", Scope: ScopeAll}
	agents := &Secret{ID: "sec_2", Name: "TOKEN", Scope: ScopeAgents, ProfileIDs: []string{"prof_a"}}
	other := &Secret{ID: "sec_3", Name: "DB_URL", Scope: ScopeAgents, ProfileIDs: []string{"prof_b"}}
	for _, order := range [][]*Secret{{all, agents, other}, {other, agents, all}} {
		got := resolve(order, "prof_a")
		if len(got) != 1 || got[0] != agents {
			t.Fatalf("prof_a resolves to %v, want the agents secret", got)
		}
		got = resolve(order, "prof_b")
		if len(got) != 2 || got[0] != other || got[1] != all {
			t.Fatalf("prof_b resolves to %v", got)
		}
	}
}

func TestConflictsWith(t *testing.T) {
	a := &Secret{ID: "sec_1", Name: "X", Scope: ScopeAgents, ProfileIDs: []string{"prof_a", "prof_b"}}
	tests := []struct {
		name  string
		other *Secret
		want  bool
	}{
		{"overlap", &Secret{ID: "sec_2", Name: "X", Scope: ScopeAgents, ProfileIDs: []string{"prof_b"}}, true},
		{"disjoint", &Secret{ID: "sec_2", Name: "X", Scope: ScopeAgents, ProfileIDs: []string{"prof_c"}}, false},
		{"all overrides", &Secret{ID: "sec_2", Name: "X", Scope: ScopeAll}, false},
		{"other name", &Secret{ID: "sec_2", Name: "Y", Scope: ScopeAgents, ProfileIDs: []string{"prof_a"}}, false},
		{"itself", &Secret{ID: "sec_1", Name: "X", Scope: ScopeAgents, ProfileIDs: []string{"prof_a"}}, false},
		{"no profiles left", &Secret{ID: "sec_2", Name: "X", Scope: ScopeAgents}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := a.conflictsWith(tt.other); got != tt.want {
				t.Fatalf("conflictsWith = %v, want %v", got, tt.want)
			}
		})
	}
	if !(&Secret{ID: "sec_1", Name: "X", Scope: ScopeAll}).conflictsWith(&Secret{ID: "sec_2", Name: "X", Scope: ScopeAll}) {
		t.Fatal("two all secrets of one name do not conflict")
	}
}

func TestTokenSplitAndMatch(t *testing.T) {
	tok, whole := newToken("usr_x", TokenSpec{Name: "t", Scope: TokenFull}, time.Time{})
	id, secret, ok := splitToken(whole)
	if !ok || id != tok.ID || !tok.matches(secret) || tok.matches(secret+"x") {
		t.Fatalf("token %q does not round-trip", whole)
	}
	for _, bad := range []string{"", "tok_", whole[:len(whole)-1] + ".", "x" + whole, strings.Replace(whole, ".", "", 1)} {
		if _, _, ok := splitToken(bad); ok && bad != whole {
			id, s, _ := splitToken(bad)
			if id == tok.ID && tok.matches(s) {
				t.Fatalf("bad token %q accepted", bad)
			}
		}
	}
}

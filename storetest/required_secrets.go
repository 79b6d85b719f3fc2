package storetest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/envvault/envvault/vault"
)

// testRequiredSecrets: a profile's required names round-trip in the
// user's order with their descriptions, are replaced and cleared by a
// patch, and a list that breaks a rule is refused naming required_secrets
// without changing the profile.
func testRequiredSecrets(t *testing.T, f *fixture) {
	user := f.mustUser("alice")
	req := []vault.RequiredSecret{
		{Name: "OPENAI_API_KEY", Description: "  the key of the team's project, ünïcode ✓ <b>  "},
		{Name: "GITHUB_TOKEN", Description: ""},
	}
	created, err := f.svc.CreateProfile(f.ctx, user, vault.ProfileInput{Name: "p", Image: "alpine", RequiredSecrets: req})
	if err != nil {
		t.Fatalf("create profile: %v", err)
	}
	want := []vault.RequiredSecret{
		{Name: "OPENAI_API_KEY", Description: "the key of the team's project, ünïcode ✓ <b>"},
		{Name: "GITHUB_TOKEN", Description: ""},
	}
	got := f.mustGetProfile(user, created.ID)
	sameProfile(t, got, created)
	if fmt.Sprint(got.RequiredSecrets) != fmt.Sprint(want) {
		t.Errorf("read back %v, want %v (the user's order, descriptions trimmed)", got.RequiredSecrets, want)
	}

	bare := f.mustProfile(user, "bare")
	if got := f.mustGetProfile(user, bare.ID); got.RequiredSecrets == nil || len(got.RequiredSecrets) != 0 {
		t.Errorf("a profile without required names reads back %#v, want an empty list", got.RequiredSecrets)
	}

	replaced, err := f.svc.UpdateProfile(f.ctx, user, created.ID, vault.ProfilePatch{RequiredSecrets: &[]vault.RequiredSecret{{Name: "ONLY"}}})
	if err != nil {
		t.Fatalf("replace required names: %v", err)
	}
	sameProfile(t, f.mustGetProfile(user, created.ID), replaced)
	if len(replaced.RequiredSecrets) != 1 || replaced.RequiredSecrets[0].Name != "ONLY" {
		t.Errorf("after the patch: %v, want [ONLY]", replaced.RequiredSecrets)
	}
	renamed, err := f.svc.UpdateProfile(f.ctx, user, created.ID, vault.ProfilePatch{Name: ptr("renamed")})
	if err != nil || len(renamed.RequiredSecrets) != 1 {
		t.Errorf("a patch of the name only: %v, %v; want the required names kept", renamed, err)
	}
	cleared, err := f.svc.UpdateProfile(f.ctx, user, created.ID, vault.ProfilePatch{RequiredSecrets: &[]vault.RequiredSecret{}})
	if err != nil {
		t.Fatalf("clear required names: %v", err)
	}
	sameProfile(t, f.mustGetProfile(user, created.ID), cleared)
	if len(cleared.RequiredSecrets) != 0 {
		t.Errorf("after clearing: %v", cleared.RequiredSecrets)
	}

	tooMany := make([]vault.RequiredSecret, vault.MaxRequiredSecrets+1)
	for i := range tooMany {
		tooMany[i].Name = fmt.Sprintf("NAME_%d", i)
	}
	cases := []struct {
		name string
		list []vault.RequiredSecret
	}{
		{"more than the maximum", tooMany},
		{"a lower-case name", []vault.RequiredSecret{{Name: "lower"}}},
		{"an empty name", []vault.RequiredSecret{{Name: ""}}},
		{"a name given twice", []vault.RequiredSecret{{Name: "A"}, {Name: "A"}}},
		{"a description too long", []vault.RequiredSecret{{Name: "A", Description: strings.Repeat("x", vault.MaxDescriptionLen+1)}}},
		{"a description with NUL", []vault.RequiredSecret{{Name: "A", Description: "a\x00b"}}},
	}
	for _, tc := range cases {
		_, err := f.svc.CreateProfile(f.ctx, user, vault.ProfileInput{Name: "refused", Image: "alpine", RequiredSecrets: tc.list})
		wantErr(t, err, vault.EINVALID, "required_secrets")
		_, err = f.svc.UpdateProfile(f.ctx, user, created.ID, vault.ProfilePatch{RequiredSecrets: &tc.list})
		wantErr(t, err, vault.EINVALID, "required_secrets")
		sameProfile(t, f.mustGetProfile(user, created.ID), cleared)
	}
	atMax := tooMany[:vault.MaxRequiredSecrets]
	if _, err := f.svc.UpdateProfile(f.ctx, user, created.ID, vault.ProfilePatch{RequiredSecrets: &atMax}); err != nil {
		t.Errorf("exactly %d required names: %v", vault.MaxRequiredSecrets, err)
	}
}

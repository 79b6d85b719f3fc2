package storetest

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/envvault/envvault/vault"
)

func testProfileRoundTrip(t *testing.T, f *fixture) {
	user := f.mustUser("alice")

	in := vault.ProfileInput{
		Name:          "  Build bot ünïcode ✓  ",
		Image:         "ghcr.io/acme/agent@sha256:0123456789abcdef",
		Command:       []string{"sh", "-c", `echo "<&>" 'quoted' \ backslash`, ""},
		SetupCommands: []string{"apt-get update", "apt-get install -y git"},
		Env:           map[string]string{"GREETING": "hello <world> & \"friends\"", "EMPTY": "", "UNICODE": "zäöü ✓"},
	}
	created, err := f.svc.CreateProfile(f.ctx, user, in)
	if err != nil {
		t.Fatalf("create profile: %v", err)
	}
	if !strings.HasPrefix(created.ID, vault.PrefixProfile) || created.Name != "Build bot ünïcode ✓" || created.UserID != user {
		t.Errorf("created profile: id %s name %q user %s", created.ID, created.Name, created.UserID)
	}
	sameProfile(t, f.mustGetProfile(user, created.ID), created)

	bare, err := f.svc.CreateProfile(f.ctx, user, vault.ProfileInput{Name: "bare", Image: "alpine"})
	if err != nil {
		t.Fatalf("create bare profile: %v", err)
	}
	got := f.mustGetProfile(user, bare.ID)
	sameProfile(t, got, bare)
	if got.Command == nil || got.SetupCommands == nil || got.Env == nil {
		t.Errorf("empty lists and map read back as nil: command %#v setup %#v env %#v", got.Command, got.SetupCommands, got.Env)
	}

	page, err := f.svc.Profiles(f.ctx, user, vault.ListOptions{})
	if err != nil {
		t.Fatalf("list profiles: %v", err)
	}
	if len(page.Items) != 2 || page.NextCursor != "" {
		t.Fatalf("list: %d profiles, next %q; want 2, none", len(page.Items), page.NextCursor)
	}
	sameProfile(t, page.Items[0], created) // "Build…" < "bare": upper case sorts first, byte by byte
	sameProfile(t, page.Items[1], bare)

	updated, err := f.svc.UpdateProfile(f.ctx, user, created.ID, vault.ProfilePatch{
		Name: ptr("renamed"), Command: ptr([]string{}), Env: ptr(map[string]string{"ONLY": "one"}),
	})
	if err != nil {
		t.Fatalf("update profile: %v", err)
	}
	if len(updated.Command) != 0 || !slices.Equal(updated.SetupCommands, in.SetupCommands) || !updated.UpdatedAt.After(created.UpdatedAt) {
		t.Errorf("updated profile: %+v", updated)
	}
	wantTime(t, "created_at after update", updated.CreatedAt, created.CreatedAt)
	sameProfile(t, f.mustGetProfile(user, created.ID), updated)

	cleared, err := f.svc.UpdateProfile(f.ctx, user, created.ID, vault.ProfilePatch{SetupCommands: ptr([]string(nil)), Env: ptr(map[string]string(nil))})
	if err != nil {
		t.Fatalf("clear profile lists: %v", err)
	}
	sameProfile(t, f.mustGetProfile(user, created.ID), cleared)

	f.wantProfileNameRules(user, created, bare)

}

// wantProfileNameRules checks that profile names are unique per user, byte
// for byte, and that deleting created frees its name; bare is another
// profile of the user.
func (f *fixture) wantProfileNameRules(user string, created, bare *vault.Profile) {
	t := f.t
	t.Helper()
	_, err := f.svc.CreateProfile(f.ctx, user, vault.ProfileInput{Name: "renamed", Image: "alpine"})
	wantErr(t, err, vault.ECONFLICT, "name")
	_, err = f.svc.UpdateProfile(f.ctx, user, bare.ID, vault.ProfilePatch{Name: ptr("renamed")})
	wantErr(t, err, vault.ECONFLICT, "name")
	sameProfile(t, f.mustGetProfile(user, bare.ID), bare)
	if _, err := f.svc.CreateProfile(f.ctx, user, vault.ProfileInput{Name: "Renamed", Image: "alpine"}); err != nil {
		t.Errorf("a name differing only in case was refused: %v", err)
	}
	if _, err := f.svc.CreateProfile(f.ctx, f.mustUser("bob"), vault.ProfileInput{Name: "renamed", Image: "alpine"}); err != nil {
		t.Errorf("another user's profile name was refused: %v", err)
	}

	if err := f.svc.DeleteProfile(f.ctx, user, created.ID); err != nil {
		t.Fatalf("delete profile: %v", err)
	}
	_, err = f.svc.Profile(f.ctx, user, created.ID)
	wantErr(t, err, vault.ENOTFOUND, "")
	wantErr(t, f.svc.DeleteProfile(f.ctx, user, created.ID), vault.ENOTFOUND, "")
	_, err = f.svc.UpdateProfile(f.ctx, user, created.ID, vault.ProfilePatch{Image: ptr("alpine")})
	wantErr(t, err, vault.ENOTFOUND, "")
	// Its name is free again.
	if _, err := f.svc.CreateProfile(f.ctx, user, vault.ProfileInput{Name: "renamed", Image: "alpine"}); err != nil {
		t.Errorf("the name of a deleted profile is not free: %v", err)
	}
}

func testProfileRules(t *testing.T, f *fixture) {
	user := f.mustUser("alice")
	cases := []struct {
		name  string
		in    vault.ProfileInput
		field string
	}{
		{"empty name", vault.ProfileInput{Name: "", Image: "alpine"}, "name"},
		{"blank name", vault.ProfileInput{Name: "   ", Image: "alpine"}, "name"},
		{"name of 101 characters", vault.ProfileInput{Name: strings.Repeat("é", 101), Image: "alpine"}, "name"},
		{"name with a control character", vault.ProfileInput{Name: "a\tb", Image: "alpine"}, "name"},
		{"empty image", vault.ProfileInput{Name: "p", Image: ""}, "image"},
		{"image with a space", vault.ProfileInput{Name: "p", Image: "alpine latest"}, "image"},
		{"command with NUL", vault.ProfileInput{Name: "p", Image: "alpine", Command: []string{"sh", "a\x00b"}}, "command"},
		{"setup command with NUL", vault.ProfileInput{Name: "p", Image: "alpine", SetupCommands: []string{"\x00"}}, "setup_commands"},
		{"lower-case env name", vault.ProfileInput{Name: "p", Image: "alpine", Env: map[string]string{"lower": "x"}}, "env"},
		{"env value with NUL", vault.ProfileInput{Name: "p", Image: "alpine", Env: map[string]string{"OK": "a\x00b"}}, "env"},
	}
	for _, tc := range cases {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			_, err := f.svc.CreateProfile(f.ctx, user, tc.in)
			wantErr(t, err, vault.EINVALID, tc.field)
		})
	}
	page, err := f.svc.Profiles(f.ctx, user, vault.ListOptions{})
	if err != nil || len(page.Items) != 0 {
		t.Errorf("after refused creates: %d profiles, %v; want none", len(page.Items), err)
	}

	p := f.mustProfile(user, "kept")
	_, err = f.svc.UpdateProfile(f.ctx, user, p.ID, vault.ProfilePatch{Name: ptr(""), Image: ptr("alpine:3")})
	wantErr(t, err, vault.EINVALID, "name")
	sameProfile(t, f.mustGetProfile(user, p.ID), p)
}

// walk collects every item of a list, page by page, and checks the pages
// are full but for the last and that only the last has no next cursor.
func walk[T any](t *testing.T, limit int, list func(cursor string) (vault.Page[T], error)) []T {
	t.Helper()
	var out []T
	cursor := ""
	for range 1000 {
		page, err := list(cursor)
		if err != nil {
			t.Fatalf("list after cursor %q: %v", cursor, err)
		}
		out = append(out, page.Items...)
		if page.NextCursor == "" {
			return out
		}
		if len(page.Items) != limit {
			t.Fatalf("a page with a next cursor holds %d items, want %d", len(page.Items), limit)
		}
		cursor = page.NextCursor
	}
	t.Fatalf("list does not end")
	return nil
}

func testPagination(t *testing.T, f *fixture) {
	user := f.mustUser("alice")
	other := f.mustUser("bob")
	var profiles []*vault.Profile
	// Byte order: upper case before lower case, ASCII before the rest.
	for _, name := range []string{"zeta", "Alpha", "alpha", "Beta", "_under", "émile", "0-first", "beta two", "Zed", "ärger", "m"} {
		profiles = append(profiles, f.mustProfile(user, name))
	}
	f.mustProfile(other, "alpha") // another user's rows never show up
	var secrets []*vault.Secret
	for _, i := range []int{7, 3, 11, 0, 9, 1, 5} {
		secrets = append(secrets, f.mustSecret(user, fmt.Sprintf("KEY_%02d", i), value("k")))
	}
	// Three secrets of one name, told apart by id.
	for _, p := range profiles[:3] {
		secrets = append(secrets, f.mustSecret(user, "DUP", value("dup"), p))
	}
	for _, name := range []string{"A", "AA", "A_", "B", "_Z", "Z9"} {
		secrets = append(secrets, f.mustSecret(user, name, value("x")))
	}
	f.mustSecret(other, "A", value("bob's"))

	wantSecrets := slices.Clone(secrets)
	slices.SortFunc(wantSecrets, func(a, b *vault.Secret) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.ID, b.ID))
	})
	wantProfiles := slices.Clone(profiles)
	slices.SortFunc(wantProfiles, func(a, b *vault.Profile) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.ID, b.ID))
	})

	for _, limit := range []int{1, 2, 3, 5, len(secrets) - 1, len(secrets), len(secrets) + 1, vault.MaxPageLimit} {
		t.Run(fmt.Sprintf("secrets by %d", limit), func(t *testing.T) {
			got := walk(t, limit, func(cursor string) (vault.Page[*vault.Secret], error) {
				return f.svc.Secrets(f.ctx, user, vault.ListOptions{Cursor: cursor, Limit: limit})
			})
			if g, w := secretIDs(got), secretIDs(wantSecrets); !slices.Equal(g, w) {
				t.Fatalf("walked %d secrets:\n got %v\nwant %v", len(g), g, w)
			}
			for i := range got {
				sameSecret(t, got[i], wantSecrets[i])
			}
		})
	}
	for _, limit := range []int{1, 4, len(profiles), vault.DefaultPageLimit} {
		t.Run(fmt.Sprintf("profiles by %d", limit), func(t *testing.T) {
			got := walk(t, limit, func(cursor string) (vault.Page[*vault.Profile], error) {
				return f.svc.Profiles(f.ctx, user, vault.ListOptions{Cursor: cursor, Limit: limit})
			})
			if g, w := profileIDs(got), profileIDs(wantProfiles); !slices.Equal(g, w) {
				names := ids(got, func(p *vault.Profile) string { return p.Name })
				wantNames := ids(wantProfiles, func(p *vault.Profile) string { return p.Name })
				t.Fatalf("walked profiles in order %q, want %q", names, wantNames)
			}
			for i := range got {
				sameProfile(t, got[i], wantProfiles[i])
			}
		})
	}

	t.Run("store keyset", func(t *testing.T) { f.sub(t).wantStoreKeyset(user, wantSecrets, wantProfiles) })

	t.Run("bad options", func(t *testing.T) {
		_, err := f.svc.Secrets(f.ctx, user, vault.ListOptions{Cursor: "not a cursor!"})
		wantErr(t, err, vault.EINVALID, "cursor")
		_, err = f.svc.Secrets(f.ctx, user, vault.ListOptions{Limit: vault.MaxPageLimit + 1})
		wantErr(t, err, vault.EINVALID, "limit")
		_, err = f.svc.Profiles(f.ctx, user, vault.ListOptions{Limit: -1})
		wantErr(t, err, vault.EINVALID, "limit")
	})
}

// wantStoreKeyset checks the store's keyset pages of the user's secrets
// and profiles, whose whole lists in order are wantSecrets and
// wantProfiles.
func (f *fixture) wantStoreKeyset(user string, wantSecrets []*vault.Secret, wantProfiles []*vault.Profile) {
	t := f.t
	t.Helper()
	mid := wantSecrets[4]
	err := f.store.View(f.ctx, user, func(tx vault.Tx) error {
		list, err := tx.Secrets(f.ctx, vault.ListFilter{After: &vault.Cursor{Key: mid.Name, ID: mid.ID}, Limit: 3})
		if err != nil {
			return err
		}
		if g, w := secretIDs(list), secretIDs(wantSecrets[5:8]); !slices.Equal(g, w) {
			t.Errorf("3 secrets after %s: got %v, want %v", mid.ID, g, w)
		}
		// A cursor need not name an existing row.
		list, err = tx.Secrets(f.ctx, vault.ListFilter{After: &vault.Cursor{Key: "DUP", ID: "sec_~"}, Limit: 1})
		if err != nil {
			return err
		}
		if len(list) != 1 || list[0].Name <= "DUP" {
			t.Errorf("after (DUP, sec_~): got %v, want the first secret named after DUP", secretIDs(list))
		}
		all, err := tx.Secrets(f.ctx, vault.ListFilter{Limit: 1000})
		if err != nil {
			return err
		}
		if len(all) != len(wantSecrets) {
			t.Errorf("limit over the count: %d secrets, want %d", len(all), len(wantSecrets))
		}
		pl, err := tx.Profiles(f.ctx, vault.ListFilter{After: &vault.Cursor{Key: wantProfiles[0].Name, ID: wantProfiles[0].ID}, Limit: 2})
		if err != nil {
			return err
		}
		if g, w := profileIDs(pl), profileIDs(wantProfiles[1:3]); !slices.Equal(g, w) {
			t.Errorf("2 profiles after the first: got %v, want %v", g, w)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("view: %v", err)
	}
}

func testQueryFilter(t *testing.T, f *fixture) {
	user := f.mustUser("alice")
	for _, name := range []string{"GITHUB_TOKEN", "GH_PAT", "STRIPE_KEY", "DB_URL", "AB", "A_B", "TOKEN"} {
		f.mustSecret(user, name, value("v"))
	}
	for _, name := range []string{"Alpha team", "alphabet", "Beta", "100%", "under_score", "o'brien"} {
		f.mustProfile(user, name)
	}
	f.mustSecret(f.mustUser("bob"), "TOKEN_OF_BOB", value("bob"))

	secretNames := func(q string, limit int) []string {
		got := walk(t, limit, func(cursor string) (vault.Page[*vault.Secret], error) {
			return f.svc.Secrets(f.ctx, user, vault.ListOptions{Query: q, Cursor: cursor, Limit: limit})
		})
		return ids(got, func(s *vault.Secret) string { return s.Name })
	}
	profileNames := func(q string, limit int) []string {
		got := walk(t, limit, func(cursor string) (vault.Page[*vault.Profile], error) {
			return f.svc.Profiles(f.ctx, user, vault.ListOptions{Query: q, Cursor: cursor, Limit: limit})
		})
		return ids(got, func(p *vault.Profile) string { return p.Name })
	}

	for _, tc := range []struct {
		q    string
		want []string
	}{
		{"", []string{"AB", "A_B", "DB_URL", "GH_PAT", "GITHUB_TOKEN", "STRIPE_KEY", "TOKEN"}},
		{"TOKEN", []string{"GITHUB_TOKEN", "TOKEN"}},
		{"token", []string{"GITHUB_TOKEN", "TOKEN"}},
		{"ToKeN", []string{"GITHUB_TOKEN", "TOKEN"}},
		{"_", []string{"A_B", "DB_URL", "GH_PAT", "GITHUB_TOKEN", "STRIPE_KEY"}},
		{"%", nil},
		{"A_B", []string{"A_B"}},
		{"%B", nil},
		{"G", []string{"GH_PAT", "GITHUB_TOKEN"}},
		{"url", []string{"DB_URL"}},
		{"nothing", nil},
		{"'", nil},
	} {
		for _, limit := range []int{1, 2, vault.DefaultPageLimit} {
			if got := secretNames(tc.q, limit); !slices.Equal(got, tc.want) {
				t.Errorf("secrets q=%q limit %d: got %q, want %q", tc.q, limit, got, tc.want)
			}
		}
	}
	for _, tc := range []struct {
		q    string
		want []string
	}{
		{"ALPHA", []string{"Alpha team", "alphabet"}},
		{"a", []string{"Alpha team", "Beta", "alphabet"}},
		{"%", []string{"100%"}},
		{"_", []string{"under_score"}},
		{"'", []string{"o'brien"}},
		{" TEAM", []string{"Alpha team"}},
		{"\\", nil},
	} {
		for _, limit := range []int{1, vault.DefaultPageLimit} {
			if got := profileNames(tc.q, limit); !slices.Equal(got, tc.want) {
				t.Errorf("profiles q=%q limit %d: got %q, want %q", tc.q, limit, got, tc.want)
			}
		}
	}
}

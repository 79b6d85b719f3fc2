package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/envvault/envvault/vault"
)

func TestUserNamesSQLite(t *testing.T) {
	t.Parallel()
	testUserNames(t, migratedSQLite(t))
}

func TestUserNamesPostgres(t *testing.T) {
	t.Parallel()
	testUserNames(t, migratedPostgres(t))
}

// testUserNames: a name is taken once (exit 5, the first user untouched);
// user list shows every user; --user takes a name or an id.
func testUserNames(t *testing.T, ms migratedStore) {
	createUser(t, ms.env, "alice", ms.args...)
	createUser(t, ms.env, "bob", ms.args...)
	in := mustFail(t, ms.env, `name: a user named "alice" already exists`, append([]string{"user", "create", "alice"}, ms.args...)...)
	if in.stdout.String() != "" {
		t.Fatalf("a refused user create printed %q", in.stdout.String())
	}
	_, err := start(t, ms.env, append([]string{"user", "create", " alice "}, ms.args...)...)
	if got := exitCode(err, exitFailure); got != exitConflict {
		t.Fatalf("user create of a taken name (spaces around it): exit %d (%v), want %d", got, err, exitConflict)
	}

	list := mustStart(t, ms.env, append([]string{"user", "list", "--json"}, ms.args...)...)
	var users []struct{ ID, Name string }
	if err := json.Unmarshal([]byte(list.stdout.String()), &users); err != nil {
		t.Fatalf("user list --json printed %q: %v", list.stdout.String(), err)
	}
	if len(users) != 2 || users[0].Name != "alice" || users[1].Name != "bob" || !strings.HasPrefix(users[0].ID, vault.PrefixUser) {
		t.Fatalf("user list: %+v", users)
	}
	table := mustStart(t, ms.env, append([]string{"user", "list"}, ms.args...)...)
	if !strings.HasPrefix(table.stdout.String(), "NAME") || !strings.Contains(table.stdout.String(), users[1].ID) {
		t.Fatalf("user list table: %q", table.stdout.String())
	}

	// --user by name and by id: the same user; an unknown one named.
	file := writeTemp(t, "app.env", "API_KEY="+canary+"\n")
	mustStart(t, ms.env, append([]string{"admin", "secrets", "import", file, "--user", "bob", "--scope", "all"}, ms.args...)...)
	for _, ref := range []string{"bob", users[1].ID} {
		out := mustStart(t, ms.env, append([]string{"admin", "secrets", "list", "--user", ref}, ms.args...)...)
		if !strings.Contains(out.stdout.String(), "API_KEY") {
			t.Errorf("admin secrets list --user %s: %q", ref, out.stdout.String())
		}
	}
	out := mustStart(t, ms.env, append([]string{"admin", "secrets", "list", "--user", "alice"}, ms.args...)...)
	if strings.Contains(out.stdout.String(), "API_KEY") {
		t.Errorf("alice sees bob's secret: %q", out.stdout.String())
	}
	_, err = start(t, ms.env, append([]string{"admin", "secrets", "list", "--user", "carol"}, ms.args...)...)
	var ve *vault.Error
	if !errors.As(err, &ve) || ve.Code != vault.ENOTFOUND || !strings.Contains(err.Error(), `no user has the name or id "carol"`) || exitCode(err, exitFailure) != exitNotFound {
		t.Fatalf("--user carol: %v", err)
	}
	mustFail(t, ms.env, "needs --user, the name or id", append([]string{"admin", "secrets", "list"}, ms.args...)...)
}

package vault_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/envvault/envvault/internal/testvault"
	"github.com/envvault/envvault/vault"
)

func TestCheckToken(t *testing.T) {
	ctx := context.Background()
	svc := testvault.MustService(t, testvault.MustSQLite(t, filepath.Join(t.TempDir(), "vault.db")), vault.Options{})
	signIn := func(name string) (userID, tokenID string) {
		t.Helper()
		_, token, err := svc.CreateUser(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		userID, tokenID, err = svc.Authenticate(ctx, token)
		if err != nil {
			t.Fatal(err)
		}
		return userID, tokenID
	}
	alice, aliceToken := signIn("alice")
	bob, bobToken := signIn("bob")
	if err := svc.CheckToken(ctx, alice, aliceToken); err != nil {
		t.Fatalf("alice's own token: %v", err)
	}
	for _, c := range []struct{ what, userID, tokenID string }{
		{"another user's token", alice, bobToken},
		{"a token for another user", bob, aliceToken},
		{"a token that does not exist", alice, vault.NewID(vault.PrefixToken)},
		{"no token", alice, ""},
	} {
		if err := svc.CheckToken(ctx, c.userID, c.tokenID); vault.ErrorCode(err) != vault.EUNAUTHORIZED {
			t.Errorf("%s: %v, want %s", c.what, err, vault.EUNAUTHORIZED)
		}
	}
}

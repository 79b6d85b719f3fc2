package vault_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// tokenStore counts the token lookups that reach the store, and can
// pretend a token was deleted.
type tokenStore struct {
	vault.Store
	lookups int
	deleted string
}

func (s *tokenStore) Token(ctx context.Context, id string) (*vault.Token, error) {
	s.lookups++
	if id == s.deleted {
		return nil, vault.Errorf(vault.ENOTFOUND, "token not found")
	}
	return s.Store.Token(ctx, id)
}

// TestAuthenticateCache checks the token cache: a token the store
// confirmed is accepted again without the store until its TTL ends or
// ForgetToken drops it; a wrong secret for a cached token, and an unknown
// token, always go to the store and fail as before; a negative TTL turns
// the cache off.
func TestAuthenticateCache(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	newSvc := func(ttl time.Duration) (*vault.Service, *tokenStore, string, string) {
		t.Helper()
		st := &tokenStore{Store: testvault.MustSQLite(t, filepath.Join(t.TempDir(), "vault.db"))}
		svc := testvault.MustService(t, st, vault.Options{Now: clock, TokenCacheTTL: ttl})
		u, token, err := svc.CreateUser(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		return svc, st, u.ID, token
	}
	auth := func(svc *vault.Service, st *tokenStore, token, wantUser string, wantLookups int) {
		t.Helper()
		user, _, err := svc.Authenticate(ctx, token)
		if wantUser == "" && vault.ErrorCode(err) != vault.EUNAUTHORIZED {
			t.Fatalf("Authenticate = %q, %v; want %s", user, err, vault.EUNAUTHORIZED)
		}
		if wantUser != "" && (err != nil || user != wantUser) {
			t.Fatalf("Authenticate = %q, %v; want %s", user, err, wantUser)
		}
		if st.lookups != wantLookups {
			t.Fatalf("%d store lookups, want %d", st.lookups, wantLookups)
		}
	}

	svc, st, alice, token := newSvc(0)
	id, _, _ := strings.Cut(token, ".")
	auth(svc, st, token, alice, 1)
	auth(svc, st, token, alice, 1) // cached
	auth(svc, st, token+"x", "", 2)
	auth(svc, st, id+".wrong", "", 3)
	auth(svc, st, vault.NewID(vault.PrefixToken)+".secret", "", 4)
	auth(svc, st, token, alice, 4) // still cached: failures do not evict
	now = now.Add(vault.DefaultTokenCacheTTL)
	auth(svc, st, token, alice, 5) // expired, confirmed again
	svc.ForgetToken(id)
	st.deleted = id
	auth(svc, st, token, "", 6) // forgotten: the store says it is gone
	auth(svc, st, token, "", 7) // and a refusal is not cached

	svc, st, alice, token = newSvc(-1)
	auth(svc, st, token, alice, 1)
	auth(svc, st, token, alice, 2)
}

package postgres_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/envvault/envvault/internal/testenv"
	"github.com/envvault/envvault/postgres"
	"github.com/envvault/envvault/seal"
	"github.com/envvault/envvault/vault"
)

// oauth2Pair is two services on one PostgreSQL database, each with a pool
// of its own (as two envvault processes), sharing a keyring and a clock
// that a test can move (tokens expire by the real clock, which x/oauth2
// reads), and a user with a profile given an oauth2 secret of a Hydra
// client (client credentials).
type oauth2Pair struct {
	svcs    [2]*vault.Service
	user    string
	profile string
	client  string // Hydra client id
	hydra   *testenv.Hydra
	skew    *atomic.Int64
}

func newOAuth2Pair(t testing.TB) *oauth2Pair {
	h := testenv.RequireHydra(t)
	db, url := openDB(t)
	other, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("open a second pool: %v", err)
	}
	t.Cleanup(func() { other.Close() })
	key, err := seal.ParseKey(seal.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := seal.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	p := &oauth2Pair{hydra: h, skew: new(atomic.Int64)}
	opts := vault.Options{Now: func() time.Time { return time.Now().Add(time.Duration(p.skew.Load())) }, OAuth2AllowNetworks: testenv.Loopback}
	p.svcs = [2]*vault.Service{vault.NewService(db, keys, opts), vault.NewService(other, keys, opts)}
	if err := p.svcs[0].CheckKeys(context.Background()); err != nil {
		t.Fatal(err)
	}
	client := h.CreateClient(t, testenv.HydraClientOptions{Scopes: []string{"read"}})
	p.client = client.ID
	p.user = mustUser(t, p.svcs[0])
	p.profile = mustProfile(t, p.svcs[0], p.user, "agent").ID
	mustSecret(t, p.svcs[0], p.user, vault.SecretInput{Name: "API_TOKEN", Kind: vault.KindOAuth2, Value: client.Secret,
		OAuth2: &vault.OAuth2Settings{Flow: vault.FlowClientCredentials, TokenURL: h.TokenURL, ClientID: client.ID, Scopes: []string{"read"}}})
	return p
}

func (p *oauth2Pair) release(t testing.TB, i int) string {
	env, err := p.svcs[i%2].GetDecryptedForProfile(context.Background(), p.user, p.profile)
	if err != nil {
		t.Errorf("release on service %d: %v", i%2, err)
		return ""
	}
	return env["API_TOKEN"]
}

// TestOAuth2OneRefreshAcrossProcesses: 20 releases at once, from two
// services on one database, of a token valid for less than the margin,
// make exactly one refresh at Ory Hydra's token endpoint (counted by the
// proxy in front of it), and all 20 get the refreshed token.
func TestOAuth2OneRefreshAcrossProcesses(t *testing.T) {
	p := newOAuth2Pair(t)
	first := p.release(t, 0)
	if n := p.hydra.TokenRequests("client_credentials"); n != 1 || first == "" {
		t.Fatalf("first release: %d token requests", n)
	}
	if in := p.hydra.Introspect(t, first); !in.Active {
		t.Fatalf("Hydra says the released token is not active: %+v", in)
	}
	// 55 minutes on, the hour-long token is valid for less than 10 minutes;
	// the next lives two hours, so that it is valid for the margin on the
	// moved clock: a release that reads the secret only once it has been
	// refreshed (on a loaded machine, one of the 20 may) uses it as it is.
	p.skew.Store(int64(55 * time.Minute))
	p.hydra.SetClientCredentialsLifespan(t, p.client, 2*time.Hour)
	const n = 20
	got := make([]string, n)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range n {
		done.Go(func() {
			start.Wait()
			got[i] = p.release(t, i)
		})
	}
	start.Done()
	done.Wait()
	if reqs := p.hydra.TokenRequests("client_credentials"); reqs != 2 {
		t.Errorf("%d releases at once from two services made %d refreshes, want 1", n, reqs-1)
	}
	for i, tok := range got {
		if tok == "" || tok == first || tok != got[0] {
			t.Errorf("release %d got the first token %v, the same as release 0 %v", i, tok == first, tok == got[0])
		}
	}
	if in := p.hydra.Introspect(t, got[0]); !in.Active || time.Until(time.Unix(in.ExpiresAt, 0)) < 90*time.Minute {
		t.Errorf("the refreshed token is not active for two hours: %+v", in)
	}
}

// BenchmarkOAuth2Release: a release whose token is valid for the margin
// (read and open, no call) against one that refreshes at Hydra every time
// (the clock 55 minutes on: each new hour-long token is again too old).
func BenchmarkOAuth2Release(b *testing.B) {
	p := newOAuth2Pair(b)
	p.release(b, 0)
	b.Run("valid", func(b *testing.B) {
		for b.Loop() {
			p.release(b, 0)
		}
	})
	p.skew.Store(int64(55 * time.Minute))
	b.Run("refresh", func(b *testing.B) {
		before := p.hydra.TokenRequests("client_credentials")
		for b.Loop() {
			p.release(b, 0)
		}
		b.ReportMetric(float64(p.hydra.TokenRequests("client_credentials")-before)/float64(b.N), "refreshes/op")
	})
}

// TestOAuth2RefreshTokenAtHydra: an authorization code secret connected
// with tokens Hydra issued (the code flow driven over HTTP, PKCE, the
// test's consent app accepting) is refreshed with its refresh token when
// its access token ages past the margin, and Hydra's rotated refresh token
// is the one the next refresh sends; a consent revoked at Hydra fails the
// next release naming the secret (invalid_grant) and flags it.
func TestOAuth2RefreshTokenAtHydra(t *testing.T) {
	h := testenv.RequireHydra(t)
	db, _ := openDB(t)
	skew := new(atomic.Int64)
	svc := newService(t, db, vault.Options{Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }, OAuth2AllowNetworks: testenv.Loopback})
	got := make(chan string, 1)
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.Query().Get("code")
	}))
	t.Cleanup(cb.Close)
	client := h.CreateClient(t, testenv.HydraClientOptions{GrantTypes: []string{"authorization_code", "refresh_token"},
		Scopes: []string{"offline_access", "read"}, RedirectURIs: []string{cb.URL + "/cb"}})
	user := mustUser(t, svc)
	profile := mustProfile(t, svc, user, "agent").ID
	sec := mustSecret(t, svc, user, vault.SecretInput{Name: "GH_TOKEN", Kind: vault.KindOAuth2, Value: client.Secret,
		OAuth2: &vault.OAuth2Settings{Flow: vault.FlowAuthorizationCode, AuthURL: h.AuthURL, TokenURL: h.TokenURL,
			ClientID: client.ID, Scopes: []string{"offline_access", "read"}}})
	ctx := context.Background()
	cfg, err := svc.OAuth2Config(ctx, user, sec.ID)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RedirectURL = cb.URL + "/cb"
	cfg.Endpoint.AuthStyle = oauth2.AuthStyleInHeader // the client is client_secret_basic
	verifier := oauth2.GenerateVerifier()
	jar, err := cookiejar.New(nil) // Hydra's login and consent need its CSRF cookies
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{Jar: jar}
	res, err := browser.Get(cfg.AuthCodeURL("state-0123456789abcdef", oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		t.Fatalf("authorization request: %v", err)
	}
	res.Body.Close()
	code := <-got
	if code == "" {
		t.Fatalf("Hydra redirected without a code: %s", res.Request.URL)
	}
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("exchange: %v (refresh token %v)", err, tok != nil && tok.RefreshToken != "")
	}
	if err := svc.ConnectOAuth2(ctx, user, sec.ID, tok); err != nil {
		t.Fatal(err)
	}
	release := func() (string, error) {
		env, err := svc.GetDecryptedForProfile(ctx, user, profile)
		return env["GH_TOKEN"], err
	}
	if v, err := release(); err != nil || v != tok.AccessToken {
		t.Fatalf("connected token not released as it is: %v", err)
	}
	// Each release 55 minutes on refreshes; the second sends the refresh
	// token the first got (Hydra rotates them and refuses a used one).
	prev := tok.AccessToken
	skew.Store(int64(55 * time.Minute)) // every hour-long token is then too old
	for i := 1; i <= 2; i++ {
		v, err := release()
		if err != nil || v == prev || h.TokenRequests("refresh_token") != i {
			t.Fatalf("refresh %d: %v, new token %v, %d refresh requests", i, err, v != prev, h.TokenRequests("refresh_token"))
		}
		if in := h.Introspect(t, v); !in.Active {
			t.Errorf("refresh %d: Hydra says the token is not active", i)
		}
		prev = v
	}
	if in := h.Introspect(t, tok.RefreshToken); in.Active {
		t.Error("the first refresh token is still active: it was not rotated")
	}
	h.RevokeConsent(t, client.ID)
	if _, err := release(); !errors.Is(err, vault.ErrOAuth2) || !strings.Contains(err.Error(), "GH_TOKEN") || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("release after the consent was revoked: %v", err)
	}
	read, err := svc.Secret(ctx, user, sec.ID)
	if err != nil || read.OAuth2Status.State != vault.OAuth2NeedsReconnect || !strings.Contains(read.OAuth2Status.Reason, "invalid_grant") {
		t.Errorf("status after a revoked grant: %v %+v", err, read.OAuth2Status)
	}
}

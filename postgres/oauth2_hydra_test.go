package postgres_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
	opts := vault.Options{Now: func() time.Time { return time.Now().Add(time.Duration(p.skew.Load())) }}
	p.svcs = [2]*vault.Service{vault.NewService(db, keys, opts), vault.NewService(other, keys, opts)}
	if err := p.svcs[0].CheckKeys(context.Background()); err != nil {
		t.Fatal(err)
	}
	client := h.CreateClient(t, testenv.HydraClientOptions{Scopes: []string{"read"}})
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
	// 55 minutes on, the hour-long token is valid for less than 10 minutes.
	p.skew.Store(int64(55 * time.Minute))
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
	if in := p.hydra.Introspect(t, got[0]); !in.Active {
		t.Errorf("the refreshed token is not active: %+v", in)
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

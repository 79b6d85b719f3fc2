package api

import (
	"context"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envvault/envvault/vault"
)

// The load test of failed authentication (issue 11). Bounded in count and
// time, on loopback only (httptest's 127.0.0.1 listener): floodRounds
// rounds, each floodPhase of another user's reads unloaded then as long
// under a flood of bad tokens sent at floodRate a second by floodWorkers
// goroutines (the rate of the incident behind issue 11), at most
// floodRequests bad requests in all.
const (
	floodRounds   = 10
	floodPhase    = 400 * time.Millisecond
	floodRate     = 1250
	floodWorkers  = 4
	floodRequests = 40_000
)

// floodStats counts the answers to the flood.
type floodStats struct{ sent, unauthorized, limited, other atomic.Int64 }

// TestFailedAuthFlood floods the API with bad tokens (a fresh token id
// each, every tenth malformed) while another user reads a secret, and
// reports the 429s, the audit events the flood added, and the other
// user's p99 unloaded and loaded (measured in alternating rounds, so that
// both see the same load of the machine), which must be within 2x.
func TestFailedAuthFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	e := newTestEnv(t, envOptions{limits: true})
	_, bob := e.newUser("bob")
	sid := e.mustCreate("/v1/secrets", bob, `{"name":"BOBS","value":"value-of-bob"}`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * floodWorkers}}
	t.Cleanup(client.CloseIdleConnections)
	get := func(token string) int {
		req, _ := http.NewRequest("GET", e.srv.URL+"/v1/secrets/"+sid, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := client.Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		return res.StatusCode
	}
	var unloaded, loaded []time.Duration
	reads := func(into *[]time.Duration) {
		for end := time.Now().Add(floodPhase); time.Now().Before(end); {
			start := time.Now()
			if code := get(bob); code != http.StatusOK {
				t.Fatalf("bob's read: %d", code)
			}
			*into = append(*into, time.Since(start))
		}
	}
	for range 50 { // warm up
		get(bob)
	}
	headBefore, err := e.store.AuditHead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var st floodStats
	start := time.Now()
	for range floodRounds {
		reads(&unloaded)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range floodWorkers {
			wg.Go(func() { flood(get, &st, stop) })
		}
		reads(&loaded)
		close(stop)
		wg.Wait()
	}
	took := time.Since(start)
	if err := e.svc.FlushAuthFailures(context.Background()); err != nil {
		t.Fatal(err)
	}
	headAfter, err := e.store.AuditHead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p99 := func(l []time.Duration) time.Duration { slices.Sort(l); return l[len(l)*99/100] }
	pu, pl := p99(unloaded), p99(loaded)
	total := st.unauthorized.Load() + st.limited.Load() + st.other.Load()
	rows := headAfter.Seq - headBefore.Seq
	t.Logf("flood: %d bad-token requests (%.0f a second sent, %d asked; %d rounds of %v, in %v): %d answered 401, %d answered 429, %d other; "+
		"audit events added: %d; bob's reads: %d unloaded, p99 %v; %d loaded, p99 %v (%.2fx)",
		total, float64(total)/(floodRounds*floodPhase).Seconds(), floodRate, floodRounds, floodPhase, took.Round(time.Millisecond),
		st.unauthorized.Load(), st.limited.Load(), st.other.Load(), rows, len(unloaded), pu, len(loaded), pl, float64(pl)/float64(pu))
	if st.other.Load() != 0 {
		t.Errorf("%d flood requests answered neither 401 nor 429", st.other.Load())
	}
	// The limiters are checked before the store is asked and taken from
	// after it answered: requests in flight at once may each pass the
	// check on the last event (vault/abuse.go).
	if max := int64(vault.DefaultAuthFailureBurst) + int64(took.Seconds()*vault.DefaultAuthFailuresPerSecond) + floodWorkers; st.unauthorized.Load() > max {
		t.Errorf("%d failures reached the check, want at most %d: the address's burst, %g a second and %d in flight",
			st.unauthorized.Load(), max, vault.DefaultAuthFailuresPerSecond, floodWorkers)
	}
	if st.limited.Load() == 0 {
		t.Error("no 429: the flood was not limited")
	}
	if rows > vault.MaxAuthFailureRows+1 {
		t.Errorf("the flood added %d audit events, want at most %d", rows, vault.MaxAuthFailureRows+1)
	}
	if pl > 2*pu {
		t.Errorf("bob's p99 under the flood %v, over 2x the unloaded %v", pl, pu)
	}
}

// flood sends bad tokens at floodRate/floodWorkers a second until stop
// closes or floodRequests are sent, counting the answers.
func flood(get func(string) int, st *floodStats, stop <-chan struct{}) {
	tick := time.NewTicker(time.Second * floodWorkers / floodRate)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		n := st.sent.Add(1)
		if n > floodRequests {
			return
		}
		token := vault.NewID(vault.PrefixToken) + ".bad-secret"
		if n%10 == 0 {
			token = "malformed"
		}
		switch get(token) {
		case http.StatusUnauthorized:
			st.unauthorized.Add(1)
		case http.StatusTooManyRequests:
			st.limited.Add(1)
		default:
			st.other.Add(1)
		}
	}
}

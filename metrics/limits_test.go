package metrics_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envvault/envvault/metrics"
)

// stuckStore is a store whose reads hang until their context ends, as a
// database that stopped answering does, and says when each begins.
type stuckStore struct{ entered chan struct{} }

func (s stuckStore) LiveTaskCounts(ctx context.Context) (map[string]int, error) {
	select {
	case s.entered <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func (s stuckStore) MasterKeyCounts(ctx context.Context) (map[string]int, error) {
	return nil, errors.New("not reached in this test")
}

// A scrape's store reads give up after 5 s (the scrape answers with
// envvault_store_reachable 0), and at most 4 scrapes run at once: a fifth
// is refused with 503 at once rather than queue more reads.
func TestScrapeLimits(t *testing.T) {
	st := stuckStore{entered: make(chan struct{})}
	m := metrics.New()
	m.WatchStore(st, "key1", slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(m.Handler(nil))
	defer srv.Close()

	const inFlight = 4
	type answer struct {
		status int
		body   string
		took   time.Duration
	}
	answers := make(chan answer, inFlight)
	var wg sync.WaitGroup
	for range inFlight {
		wg.Go(func() {
			start := time.Now()
			resp, err := http.Get(srv.URL)
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			answers <- answer{resp.StatusCode, string(b), time.Since(start)}
		})
	}
	for range inFlight {
		<-st.entered
	}
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a fifth scrape while four wait on the store: %d, want 503", resp.StatusCode)
	}
	wg.Wait()
	close(answers)
	for a := range answers {
		if a.status != http.StatusOK || !strings.Contains(a.body, "envvault_store_reachable 0") {
			t.Errorf("a scrape whose store reads hung: %d, envvault_store_reachable 0 in it: %v", a.status, strings.Contains(a.body, "envvault_store_reachable 0"))
		}
		if a.took < 5*time.Second || a.took >= 10*time.Second {
			t.Errorf("a scrape whose store reads hung took %v, want the 5 s read timeout (under the 10 s scrape timeout)", a.took)
		}
	}
}

package metrics_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/envvault/envvault/metrics"
	"github.com/envvault/envvault/sqlite"
)

// scrape serves m's metrics over real HTTP and parses them with the
// Prometheus text parser.
func scrape(t *testing.T, m *metrics.Metrics) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	srv := httptest.NewServer(m.Handler(nil))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %d %v: %s", resp.StatusCode, err, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, body)
	}
	return string(body), fams
}

// value returns the counter or gauge of family name whose labels are
// exactly want, and whether there is one.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	for _, m := range fams[name].GetMetric() {
		if len(m.GetLabel()) != len(want) {
			continue
		}
		match := true
		for _, l := range m.GetLabel() {
			match = match && want[l.GetName()] == l.GetValue()
		}
		if !match {
			continue
		}
		if m.Counter != nil {
			return m.GetCounter().GetValue(), true
		}
		return m.GetGauge().GetValue(), true
	}
	return 0, false
}

func wantValue(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string, want float64) {
	t.Helper()
	got, ok := value(fams, name, labels)
	if !ok || got != want {
		t.Errorf("%s%v = %v (found: %v), want %v", name, labels, got, ok, want)
	}
}

// Labels come only from fixed sets: a handler that names no route, an
// over-long route, an odd method and reasons outside their sets are
// counted under "unmatched" and "other"; a ServeMux pattern loses its
// method; reasons told by the handler win over the status.
func TestInstrumentLabels(t *testing.T) {
	m := metrics.New()
	mux := http.NewServeMux()
	mux.HandleFunc("/expired", func(w http.ResponseWriter, r *http.Request) {
		metrics.SetRoute(r.Context(), "/v1/things/:id")
		metrics.AuthFailure(r.Context(), metrics.ReasonExpired)
		w.WriteHeader(http.StatusUnauthorized)
	})
	mux.HandleFunc("/limited", func(w http.ResponseWriter, r *http.Request) {
		metrics.SetRoute(r.Context(), "GET /limited")
		metrics.RateLimited(r.Context(), "per-user-"+r.URL.Query().Get("user"))
		w.WriteHeader(http.StatusTooManyRequests)
	})
	mux.HandleFunc("/long", func(w http.ResponseWriter, r *http.Request) {
		metrics.SetRoute(r.Context(), "/"+strings.Repeat("x", 200))
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("/nothing", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	})
	srv := httptest.NewServer(m.Instrument(mux))
	defer srv.Close()
	for _, r := range []struct{ method, path string }{
		{"GET", "/expired"}, {"GET", "/limited?user=usr_CANARY"}, {"GET", "/long"}, {"BREW", "/nothing"},
	} {
		req, _ := http.NewRequest(r.method, srv.URL+r.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	body, fams := scrape(t, m)
	wantValue(t, fams, "envvault_http_requests_total", map[string]string{"route": "/v1/things/:id", "method": "GET", "code": "401"}, 1)
	wantValue(t, fams, "envvault_http_requests_total", map[string]string{"route": "/limited", "method": "GET", "code": "429"}, 1)
	wantValue(t, fams, "envvault_http_requests_total", map[string]string{"route": "unmatched", "method": "GET", "code": "200"}, 1)
	wantValue(t, fams, "envvault_http_requests_total", map[string]string{"route": "unmatched", "method": "other", "code": "401"}, 1)
	wantValue(t, fams, "envvault_auth_failures_total", map[string]string{"reason": metrics.ReasonExpired}, 1)
	wantValue(t, fams, "envvault_auth_failures_total", map[string]string{"reason": metrics.ReasonOther}, 1)
	wantValue(t, fams, "envvault_rate_limited_total", map[string]string{"reason": metrics.LimitOther}, 1)
	wantValue(t, fams, "envvault_rate_limited_total", map[string]string{"reason": metrics.LimitWrites}, 0)
	for _, s := range []string{"CANARY", "xxxx", "BREW", "per-user"} {
		if strings.Contains(body, s) {
			t.Errorf("the scrape holds %q", s)
		}
	}
}

// A nil *Metrics measures nothing and gets in nobody's way.
func TestNilMetrics(t *testing.T) {
	var m *metrics.Metrics
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	if got := m.Instrument(h); got == nil {
		t.Fatal("Instrument on nil returned nil")
	}
	m.TaskStarted(1)
	m.TaskFinished("succeeded")
	m.LogsMasked(1, 1)
	m.WatchStore(nil, "", nil)
}

// A store that cannot be read leaves its families out, says so in
// envvault_store_reachable, and the rest of the scrape is served.
func TestStoreUnreachable(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "v.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	m.WatchStore(db, "key1", slog.New(slog.DiscardHandler))
	_, fams := scrape(t, m)
	wantValue(t, fams, "envvault_store_reachable", map[string]string{}, 1)
	wantValue(t, fams, "envvault_tasks", map[string]string{"state": "queued"}, 0)
	wantValue(t, fams, "envvault_data_keys", map[string]string{"master_key": "other"}, 0)

	db.Close()
	_, fams = scrape(t, m)
	wantValue(t, fams, "envvault_store_reachable", map[string]string{}, 0)
	if fams["envvault_tasks"] != nil || fams["envvault_data_keys"] != nil {
		t.Error("a scrape of a closed store still has task or data key counts")
	}
	if fams["go_goroutines"] == nil {
		t.Error("the rest of the scrape is missing")
	}
}

// The group commit counts are read at each scrape.
func TestGroupCommitCounts(t *testing.T) {
	m := metrics.New()
	c := metrics.GroupCounts{Groups: 3, Writes: 10, Alone: 2}
	m.WatchGroupCommits(func() metrics.GroupCounts { return c })
	_, fams := scrape(t, m)
	wantValue(t, fams, "envvault_store_groups_total", nil, 3)
	wantValue(t, fams, "envvault_store_group_writes_total", nil, 10)
	wantValue(t, fams, "envvault_store_group_writes_alone_total", nil, 2)
	c = metrics.GroupCounts{Groups: 4, Writes: 12, Alone: 2}
	_, fams = scrape(t, m)
	wantValue(t, fams, "envvault_store_groups_total", nil, 4)
	wantValue(t, fams, "envvault_store_group_writes_total", nil, 12)
}

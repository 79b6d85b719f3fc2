package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/envvault/envvault/internal/testenv"
	"github.com/envvault/envvault/internal/testimage"
	"github.com/envvault/envvault/metrics"
	"github.com/envvault/envvault/seal"
)

// scrape GETs url over real HTTP and returns the body and its families,
// parsed by the Prometheus text parser.
func scrape(t *testing.T, url string) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d: %s", url, resp.StatusCode, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse the scrape of %s: %v\n%s", url, err, body)
	}
	return string(body), fams
}

// wantStatus GETs url and fails unless the answer has status want.
func wantStatus(t *testing.T, url string, want int) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("GET %s: status %d, want %d", url, resp.StatusCode, want)
	}
}

// sample returns the value of family name's sample whose labels include
// want (a counter, gauge, or a histogram's count), and whether there is
// one.
func sample(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			match = match && labels[k] == v
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// wantSample fails unless family name has a sample with labels whose value
// is at least min.
func wantSample(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string, min float64) float64 {
	t.Helper()
	v, ok := sample(fams, name, labels)
	if !ok {
		t.Fatalf("no sample of %s with %v", name, labels)
	}
	if v < min {
		t.Fatalf("%s%v = %v, want at least %v", name, labels, v, min)
	}
	return v
}

// labelValues returns every value label takes in family name.
func labelValues(fams map[string]*dto.MetricFamily, name, label string) []string {
	var out []string
	for _, m := range fams[name].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label {
				out = append(out, l.GetValue())
			}
		}
	}
	return out
}

// serve --metrics-addr: requests, an auth failure, a queued task and the
// data keys show in a scrape of its own address, parsed by the Prometheus
// text parser; no label holds an id, a name, a value or a token.
func TestMetricsScrape(t *testing.T) {
	testMetricsScrape(t, map[string]string{"ENCRYPTION_KEY": seal.GenerateKey()}, "--data-dir", t.TempDir())
}

// The same on PostgreSQL, served as the row-level-security service role:
// the counts read at each scrape are every user's all the same.
func TestMetricsScrapePostgresRLS(t *testing.T) {
	roles := testenv.RequirePostgresRoles(t)
	testMetricsScrape(t, map[string]string{"ENCRYPTION_KEY": seal.GenerateKey(), "DATABASE_URL": roles.Service, "DATABASE_MIGRATE_URL": roles.Owner})
}

func testMetricsScrape(t *testing.T, env map[string]string, storeArgs ...string) {
	token := createUser(t, env, "alice", storeArgs...)
	srv := mustStart(t, env, append([]string{"serve", "--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--no-worker", "--max-queued-per-user", "1"}, storeArgs...)...)
	if srv.m.MetricsAddr() == "" || srv.m.MetricsAddr() == srv.m.Addr() {
		t.Fatalf("metrics address %q, API address %q", srv.m.MetricsAddr(), srv.m.Addr())
	}
	c := &client{t: t, base: srv.url(), token: token}

	const secretName = "CANARY_NAME_7D1E0B"
	var prof, secret, task struct {
		ID string `json:"id"`
	}
	c.expect(http.StatusCreated, "POST", "/v1/profiles", map[string]any{"name": "canary-profile-5a1c", "image": "alpine:3"}, &prof)
	c.expect(http.StatusCreated, "POST", "/v1/secrets", map[string]any{"name": secretName, "value": canary}, &secret)
	c.expect(http.StatusOK, "GET", "/v1/secrets/"+secret.ID, nil, nil)
	c.expect(http.StatusOK, "GET", "/v1/secrets/"+secret.ID, nil, nil)
	c.expect(http.StatusOK, "PATCH", "/v1/secrets/"+secret.ID, map[string]any{"value": canary + "2"}, nil)
	c.expect(http.StatusNotFound, "GET", "/v1/secrets/sec_doesnotexist1", nil, nil)
	c.expect(http.StatusAccepted, "POST", "/v1/tasks", map[string]any{"profile_id": prof.ID, "prompt": "canary-prompt-7c3f"}, &task)
	c.expect(http.StatusTooManyRequests, "POST", "/v1/tasks", map[string]any{"profile_id": prof.ID, "prompt": "canary-prompt-7c3f"}, nil)
	badToken := "evt_canarybadtokenid.c4n4ry5ecretp4rt"
	(&client{t: t, base: srv.url(), token: badToken}).expect(http.StatusUnauthorized, "GET", "/v1/secrets", nil, nil)
	wantStatus(t, srv.url()+"/login", http.StatusOK)
	wantStatus(t, srv.url()+"/v1/no-such-route/CANARYPATH1", http.StatusNotFound)
	wantStatus(t, srv.url()+"/settings/no-such-page/CANARYPATH2", http.StatusNotFound)

	body, fams := scrape(t, "http://"+srv.m.MetricsAddr()+"/metrics")

	// Presence first: what the absence checks below scan is the scrape.
	wantSample(t, fams, "envvault_http_requests_total", map[string]string{"route": "/v1/secrets/:id", "method": "GET", "code": "200"}, 2)
	wantSample(t, fams, "envvault_http_requests_total", map[string]string{"route": "/v1/secrets/:id", "method": "GET", "code": "404"}, 1)
	wantSample(t, fams, "envvault_http_requests_total", map[string]string{"route": "/v1/secrets", "method": "POST", "code": "201"}, 1)
	wantSample(t, fams, "envvault_http_requests_total", map[string]string{"route": "/v1/secrets", "method": "GET", "code": "401"}, 1)
	wantSample(t, fams, "envvault_http_requests_total", map[string]string{"route": "/login", "method": "GET", "code": "200"}, 1)
	wantSample(t, fams, "envvault_http_request_duration_seconds", map[string]string{"route": "/v1/tasks", "method": "POST", "code": "202"}, 1)
	// The bad token's refusal is counted under the reason the auth code
	// names (or "other"); every reason is one of the fixed set.
	failures := 0.0
	for _, m := range fams["envvault_auth_failures_total"].GetMetric() {
		failures += m.GetCounter().GetValue()
	}
	if failures < 1 {
		t.Errorf("envvault_auth_failures_total sums to %v after a 401, want at least 1", failures)
	}
	reasons := map[string]bool{metrics.ReasonMissing: true, metrics.ReasonMalformed: true, metrics.ReasonUnknown: true, metrics.ReasonMismatch: true,
		metrics.ReasonExpired: true, metrics.ReasonRevoked: true, metrics.ReasonScope: true, metrics.ReasonSignIn: true, metrics.ReasonOther: true}
	for _, r := range labelValues(fams, "envvault_auth_failures_total", "reason") {
		if !reasons[r] {
			t.Errorf("auth failure reason %q is not of the fixed set", r)
		}
	}
	if v := wantSample(t, fams, "envvault_rate_limited_total", map[string]string{"reason": "queued_tasks"}, 1); v != 1 {
		t.Errorf("envvault_rate_limited_total{reason=queued_tasks} = %v, want 1", v)
	}
	if v, _ := sample(fams, "envvault_rate_limited_total", map[string]string{"reason": "other"}); v != 0 {
		t.Errorf("envvault_rate_limited_total{reason=other} = %v, want 0: the queued-task limit names its reason", v)
	}
	if v := wantSample(t, fams, "envvault_tasks", map[string]string{"state": "queued"}, 1); v != 1 {
		t.Errorf("envvault_tasks{state=queued} = %v, want 1", v)
	}
	if v := wantSample(t, fams, "envvault_task_queue_depth", nil, 1); v != 1 {
		t.Errorf("envvault_task_queue_depth = %v, want 1", v)
	}
	wantSample(t, fams, "envvault_tasks", map[string]string{"state": "running"}, 0)
	wantSample(t, fams, "envvault_data_keys", map[string]string{"master_key": "current"}, 1)
	if v, _ := sample(fams, "envvault_data_keys", map[string]string{"master_key": "other"}); v != 0 {
		t.Errorf("envvault_data_keys{master_key=other} = %v, want 0", v)
	}
	wantSample(t, fams, "envvault_store_reachable", nil, 1)
	// A new value on PostgreSQL goes through the group commit; SQLite has
	// none.
	if env["DATABASE_URL"] != "" {
		if v := wantSample(t, fams, "envvault_store_group_writes_total", nil, 1); v != 1 {
			t.Errorf("envvault_store_group_writes_total = %v after one PATCH of a value, want 1", v)
		}
		wantSample(t, fams, "envvault_store_groups_total", nil, 1)
		wantSample(t, fams, "envvault_store_group_writes_alone_total", nil, 0)
	} else if fams["envvault_store_group_writes_total"] != nil {
		t.Error("SQLite has no group commit, but the scrape counts its writes")
	}
	for _, name := range []string{"envvault_task_start_latency_seconds", "envvault_tasks_finished_total", "envvault_logs_masked_bytes_total", "envvault_logs_mask_seconds_total", "go_goroutines"} {
		if fams[name] == nil {
			t.Errorf("no family %s in the scrape", name)
		}
	}

	// Labels only from fixed sets: every route is a template.
	for _, route := range labelValues(fams, "envvault_http_requests_total", "route") {
		if route != "unmatched" && (!strings.HasPrefix(route, "/") || strings.ContainsAny(route, "?#_")) {
			t.Errorf("route label %q is not a template", route)
		}
	}
	for _, secretPart := range []string{canary, secretName, token, badToken, "c4n4ry5ecretp4rt", "canarybadtokenid", secret.ID, prof.ID, task.ID, "canary-profile-5a1c", "canary-prompt-7c3f", "doesnotexist", "CANARYPATH"} {
		if strings.Contains(body, secretPart) {
			t.Errorf("the scrape holds %q", secretPart)
		}
	}

	// Each listener serves only its own: no metrics on --addr, no API on
	// --metrics-addr.
	wantStatus(t, srv.url()+"/metrics", http.StatusNotFound)
	wantStatus(t, "http://"+srv.m.MetricsAddr()+"/v1/secrets", http.StatusNotFound)
	wantStatus(t, "http://"+srv.m.MetricsAddr()+"/", http.StatusNotFound)
}

// runner --metrics-addr serves the worker's metrics; without the flag
// there is no metrics listener.
func TestMetricsRunner(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"ENCRYPTION_KEY": seal.GenerateKey()}
	createUser(t, env, "alice", "--data-dir", dir)
	run := mustStart(t, env, "runner", "--metrics-addr", "127.0.0.1:0", "--data-dir", dir)
	_, fams := scrape(t, "http://"+run.m.MetricsAddr()+"/metrics")
	wantSample(t, fams, "envvault_tasks", map[string]string{"state": "queued"}, 0)
	wantSample(t, fams, "envvault_store_reachable", nil, 1)
	if fams["envvault_task_start_latency_seconds"] == nil {
		t.Error("no envvault_task_start_latency_seconds in the runner's scrape")
	}

	off := mustStart(t, env, "serve", "--addr", "127.0.0.1:0", "--no-worker", "--data-dir", dir)
	if a := off.m.MetricsAddr(); a != "" {
		t.Errorf("without --metrics-addr the metrics listen on %s", a)
	}
}

// A task run on the real Docker Engine shows in the worker's metrics: its
// start latency, its end, and the bytes of its output the masker went
// through; the secret it was given does not.
func TestMetricsTask(t *testing.T) {
	t.Parallel()
	_, envImage, _ := dockerImages(t)
	env := map[string]string{"ENCRYPTION_KEY": seal.GenerateKey()}
	dir := t.TempDir()
	token := createUser(t, env, "ops", "--data-dir", dir)
	// Env delivery env needs no envvault-init program: the metrics do not
	// depend on how the env gets in.
	srv := mustStart(t, env, "serve", "--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--env-deliveries", "env", "--data-dir", dir)
	c := &client{t: t, base: srv.url(), token: token}
	var prof struct {
		ID string `json:"id"`
	}
	c.expect(http.StatusCreated, "POST", "/v1/profiles", map[string]any{
		"name": "probe", "image": envImage, "command": []string{testimage.EnvProbe, "env"},
	}, &prof)
	c.expect(http.StatusCreated, "POST", "/v1/secrets", map[string]any{"name": "GITHUB_TOKEN", "value": canary}, nil)
	id := c.startTask(prof.ID, "metrics")
	task, logs := c.awaitEnd(id)
	if task.Status != "succeeded" || !strings.Contains(logs, "GITHUB_TOKEN=***") {
		t.Fatalf("task ended %+v with logs:\n%s", task, logs)
	}

	body, fams := scrape(t, "http://"+srv.m.MetricsAddr()+"/metrics")
	if v := wantSample(t, fams, "envvault_task_start_latency_seconds", nil, 1); v != 1 {
		t.Errorf("%v task starts observed, want 1", v)
	}
	if v := wantSample(t, fams, "envvault_tasks_finished_total", map[string]string{"state": "succeeded"}, 1); v != 1 {
		t.Errorf("%v tasks finished succeeded, want 1", v)
	}
	if v := wantSample(t, fams, "envvault_logs_masked_bytes_total", nil, 1); v < float64(len(logs)) {
		t.Errorf("%v bytes masked, but the task printed %d", v, len(logs))
	}
	wantSample(t, fams, "envvault_logs_mask_seconds_total", nil, 0)
	if v, _ := sample(fams, "envvault_logs_mask_seconds_total", nil); v <= 0 {
		t.Errorf("masking took %v seconds", v)
	}
	for _, secretPart := range []string{canary, token, id, prof.ID} {
		if strings.Contains(body, secretPart) {
			t.Errorf("the scrape holds %q", secretPart)
		}
	}
}

// keys rotate --metrics-addr shows its progress, done of total, and the
// data keys per master key read from the store.
func TestMetricsKeyRotation(t *testing.T) {
	dir := t.TempDir()
	oldKey, newKey := seal.GenerateKey(), seal.GenerateKey()
	token := createUser(t, map[string]string{"ENCRYPTION_KEY": oldKey}, "alice", "--data-dir", dir)
	srv := mustStart(t, map[string]string{"ENCRYPTION_KEY": oldKey}, "serve", "--addr", "127.0.0.1:0", "--no-worker", "--data-dir", dir)
	c := &client{t: t, base: srv.url(), token: token}
	const secrets = 3
	for i := range secrets {
		c.expect(http.StatusCreated, "POST", "/v1/secrets", map[string]any{"name": fmt.Sprintf("S%d", i), "value": canary}, nil)
	}
	if err := srv.m.Close(); err != nil {
		t.Fatal(err)
	}
	rot := mustStart(t, map[string]string{"ENCRYPTION_KEY": newKey, "ENCRYPTION_KEY_PREVIOUS": oldKey},
		"keys", "rotate", "--metrics-addr", "127.0.0.1:0", "--data-dir", dir)
	body, fams := scrape(t, "http://"+rot.m.MetricsAddr()+"/metrics")
	for name, want := range map[string]float64{"envvault_key_rotation_done": secrets, "envvault_key_rotation_total": secrets} {
		if v := wantSample(t, fams, name, nil, 0); v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
	if v := wantSample(t, fams, "envvault_data_keys", map[string]string{"master_key": "current"}, secrets); v != secrets {
		t.Errorf("envvault_data_keys{master_key=current} = %v, want %d", v, secrets)
	}
	if v, _ := sample(fams, "envvault_data_keys", map[string]string{"master_key": "other"}); v != 0 {
		t.Errorf("envvault_data_keys{master_key=other} = %v after the rotation", v)
	}
	for _, s := range []string{canary, oldKey, newKey, token} {
		if strings.Contains(body, s) {
			t.Errorf("the scrape holds %q", s)
		}
	}
}

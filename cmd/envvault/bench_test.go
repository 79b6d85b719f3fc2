package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// kvDouble is a Vault-compatible KV v2 server reduced to what envvault
// bench sends (write, read, delete of all versions under the mount
// "secret"), so that the bench's peer protocol is tested without OpenBao;
// it keeps every value it was sent, to check none is printed.
type kvDouble struct {
	mu     sync.Mutex
	data   map[string]map[string]string
	values []string
	writes int
}

const kvDoubleToken = "kv-double-token"

func newKVDouble(t *testing.T) (*kvDouble, string) {
	t.Helper()
	kv := &kvDouble{data: map[string]map[string]string{}}
	srv := httptest.NewServer(http.HandlerFunc(kv.serve))
	t.Cleanup(srv.Close)
	return kv, srv.URL
}

func (kv *kvDouble) serve(w http.ResponseWriter, r *http.Request) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if r.Header.Get("X-Vault-Token") != kvDoubleToken {
		http.Error(w, `{"errors":["permission denied"]}`, http.StatusForbidden)
		return
	}
	path, isData := strings.CutPrefix(r.URL.Path, "/v1/secret/data/")
	switch {
	case isData && (r.Method == http.MethodPost || r.Method == http.MethodPut):
		var body struct{ Data map[string]string }
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || len(body.Data) == 0 {
			http.Error(w, `{"errors":["no data provided"]}`, http.StatusBadRequest)
			return
		}
		kv.data[path] = body.Data
		for _, v := range body.Data {
			kv.values = append(kv.values, v)
		}
		kv.writes++
		fmt.Fprint(w, `{"data":{"version":1}}`)
	case isData && r.Method == http.MethodGet && kv.data[path] != nil:
		_ = json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"data": kv.data[path]}})
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/v1/secret/metadata/"):
		delete(kv.data, strings.TrimPrefix(r.URL.Path, "/v1/secret/metadata/"))
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, `{"errors":[]}`, http.StatusNotFound)
	}
}

// A run against a real envvault server (SQLite, in process) and the KV
// double: every measurement printed, interleaved round by round, the
// summary and ratios, the writes recorded, no value printed, and nothing
// the run created left behind on either.
func TestBench(t *testing.T) {
	ms := migratedSQLite(t)
	token := createUser(t, ms.env, "bench", ms.args...)
	srv := mustStart(t, ms.env, append([]string{"serve", "--addr", "127.0.0.1:0", "--no-worker"}, ms.args...)...)
	kv, kvURL := newKVDouble(t)

	in := mustStart(t, map[string]string{"ENVVAULT_TOKEN": token, "KV_TOKEN": kvDoubleToken},
		"bench", "--envvault", "ev="+srv.url(), "--kv-addr", kvURL, "--kv-name", "peer",
		"--rounds", "2", "--duration", "10s", "--requests", "6", "--clients", "1,2", "--env-secrets", "3")
	out := in.stdout.String()

	// ... req/s, p50, p99, then the machine's CPU ms per request and busy
	// share: "-" for measurements this short (TestBenchMeasuresCPU).
	row := regexp.MustCompile(`(?m)^(\d+)\s+(ev|peer)\s+(write|read|task-env)\s+([12])\s+(\d+)\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+([\d.]+|-)\s+(\d+%|-)$`)
	rows := row.FindAllStringSubmatch(out, -1)
	if len(rows) != 2*2*3*2 { // rounds x targets x ops x client counts
		t.Fatalf("%d measurement rows, want 24:\n%s", len(rows), out)
	}
	for i, r := range rows {
		// Round by round, each measurement on both targets in turn, the
		// first target rotating: ev first in round 1, peer in round 2.
		round, first := i/12+1, []string{"ev", "peer"}[i/12]
		if r[1] != fmt.Sprint(round) || (i%2 == 0) != (r[2] == first) {
			t.Errorf("row %d is round %s on %s, want round %d with %s first:\n%s", i, r[1], r[2], round, first, out)
		}
		if r[5] != "6" {
			t.Errorf("row %d answered %s requests, want the --requests bound 6: %s", i, r[5], r[0])
		}
	}
	wantLines(t, out, `(?m)^(ev|peer)\s+(write|read|task-env)\s+[12]\s+[\d.]+\s+\([\d.]+-[\d.]+\)\s+[\d.]+\s+[\d.]+\s+([\d.]+|-)\s+(\d+%|-)$`, 2*3*2)
	wantLines(t, out, `(?m)^ev\s+(write|read|task-env)\s+[12]\s+[\d.]+x\s+[\d.]+x\s+([\d.]+x|-)$`, 3*2)

	kv.mu.Lock()
	defer kv.mu.Unlock()
	if want := 2 + 1 + 2*(6+6); kv.writes != want { // setup: a path per client and the env; 2 rounds of 6 writes at 1 and 2 clients
		t.Errorf("the peer got %d writes, want %d", kv.writes, want)
	}
	if len(kv.data) != 0 {
		t.Errorf("the run left %d paths on the peer: %v", len(kv.data), kv.data)
	}
	for _, v := range kv.values {
		if strings.Contains(in.output(), v) {
			t.Fatalf("a value written appears in the output:\n%s", in.output())
		}
	}
	c := &client{t: t, base: srv.url(), token: token}
	var list struct{ Data []json.RawMessage }
	for _, p := range []string{"/v1/secrets", "/v1/profiles"} {
		c.expect(http.StatusOK, "GET", p, nil, &list)
		if len(list.Data) != 0 {
			t.Errorf("GET %s after the run: %d left, want none", p, len(list.Data))
		}
	}
	for action, want := range map[string]int{"secret.update": 24, "secret.create": 5, "secret.delete": 5, "profile.delete": 2} {
		c.expect(http.StatusOK, "GET", "/v1/audit?limit=100&action="+action, nil, &list)
		if len(list.Data) != want {
			t.Errorf("envvault recorded %d %s events, want %d", len(list.Data), action, want)
		}
	}
}

func wantLines(t *testing.T, out, pattern string, n int) {
	t.Helper()
	if got := len(regexp.MustCompile(pattern).FindAllString(out, -1)); got != n {
		t.Errorf("%d lines match %s, want %d:\n%s", got, pattern, n, out)
	}
}

// Every limit, a URL off loopback and a missing token are refused before
// a request is sent.
func TestBenchRefuses(t *testing.T) {
	ok := "http://127.0.0.1:1"
	env := map[string]string{"ENVVAULT_TOKEN": "tok_x"}
	for _, tc := range []struct {
		want string
		env  map[string]string
		args []string
	}{
		{"needs --envvault", env, nil},
		{"10.1.2.3 is not a loopback address", env, []string{"--envvault", "http://10.1.2.3:8080"}},
		{"example.com is not a loopback address", env, []string{"--envvault", ok, "--kv-addr", "http://example.com:8200"}},
		{"is not a base URL", env, []string{"--envvault", "ftp://127.0.0.1/"}},
		{"--rounds 0: must be 1-20", env, []string{"--envvault", ok, "--rounds", "0"}},
		{"--rounds 21: must be 1-20", env, []string{"--envvault", ok, "--rounds", "21"}},
		{"--duration 5ms: must be 10ms-1m0s", env, []string{"--envvault", ok, "--duration", "5ms"}},
		{"--duration 1m1s: must be 10ms-1m0s", env, []string{"--envvault", ok, "--duration", "61s"}},
		{"--requests 0: must be 1-1000000", env, []string{"--envvault", ok, "--requests", "0"}},
		{"--requests 1000001: must be 1-1000000", env, []string{"--envvault", ok, "--requests", "1000001"}},
		{"--clients 65: must be 1-64", env, []string{"--envvault", ok, "--clients", "4,65"}},
		{"--clients: 5 counts, must be 1-4", env, []string{"--envvault", ok, "--clients", "1,2,3,4,5"}},
		{"--env-secrets 201: must be 1-200", env, []string{"--envvault", ok, "--env-secrets", "201"}},
		{`--ops "delete": each must be one of write, read, task-env, named once`, env, []string{"--envvault", ok, "--ops", "write,delete"}},
		{`--ops "read": each must be one of write, read, task-env, named once`, env, []string{"--envvault", ok, "--ops", "read,read"}},
		{"5 targets, at most 4", env, []string{"--envvault", ok + "," + ok + "," + ok + "," + ok + "," + ok}},
		{`target name "envvault": must be unique`, env, []string{"--envvault", ok, "--envvault", "envvault=" + ok}},
		// 20 rounds x 1 target x 6 measurements x 1m.
		{"is 2h0m0s, at most 30m0s", env, []string{"--envvault", ok, "--rounds", "20", "--duration", "1m"}},
		{"ENVVAULT_TOKEN holds 0 tokens for 1 --envvault targets", nil, []string{"--envvault", ok}},
		{"ENVVAULT_TOKEN holds 1 tokens for 2 --envvault targets", env, []string{"--envvault", ok + ",b=" + ok}},
		{"--kv-addr is set but KV_TOKEN is not", env, []string{"--envvault", ok, "--kv-addr", ok}},
		{"takes no arguments", env, []string{"--envvault", ok, "extra"}},
	} {
		t.Run(tc.want, func(t *testing.T) {
			in := mustFail(t, tc.env, tc.want, append([]string{"bench"}, tc.args...)...)
			if out := in.stdout.String(); out != "" {
				t.Errorf("a refused run printed %q", out)
			}
		})
	}
}

// The connection itself is refused off loopback, whatever a name
// resolved to: the check runs on the address dialled, before connecting.
func TestBenchDialsOnlyLoopback(t *testing.T) {
	_, err := newBenchClient().Get("http://192.0.2.1:9/") // TEST-NET-1: never reached
	if err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Fatalf("GET off loopback: %v, want it refused as not a loopback address", err)
	}
}

// A measurement stops sending at --duration, whatever --requests allows,
// and a request that gets no answer fails it after the client's timeout
// (benchRequestTimeout, shortened here).
func TestBenchMeasurementBounds(t *testing.T) {
	if got := newBenchClient().Timeout; got != benchRequestTimeout || benchRequestTimeout != 10*time.Second {
		t.Fatalf("request timeout %s (benchRequestTimeout %s), want the documented 10s", got, benchRequestTimeout)
	}
	_, kvURL := newKVDouble(t)
	b := &benchConfig{Rounds: 1, Duration: 50 * time.Millisecond, Requests: benchMaxRequests, Clients: []int{2}, EnvSecrets: 1}
	kv := newKVTarget(benchServer{Name: "kv", URL: kvURL}, kvDoubleToken, "secret")
	if err := kv.setup(t.Context(), "T", b); err != nil {
		t.Fatal(err)
	}
	r, err := kv.measure(t.Context(), "read", 2, b)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(r.lat); n == 0 || n >= benchMaxRequests || r.elapsed < b.Duration {
		t.Errorf("%d requests in %s, want some, stopped by the 50ms duration", n, r.elapsed)
	}

	hung := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	t.Cleanup(hung.Close)
	slow := newKVTarget(benchServer{Name: "hung", URL: hung.URL}, kvDoubleToken, "secret")
	slow.client.Timeout = 50 * time.Millisecond
	slow.readPaths = []string{"/v1/secret/data/x"}
	if _, err := slow.measure(t.Context(), "read", 1, b); err == nil || !strings.Contains(err.Error(), "Client.Timeout") {
		t.Fatalf("measure against a server that never answers: %v, want the client's timeout", err)
	}
}

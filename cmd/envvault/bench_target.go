package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// benchTarget is one server envvault bench measures: how to authenticate,
// which request each operation sends for each client, and how to undo
// what its setup created.
type benchTarget struct {
	name   string
	peer   bool   // the KV v2 server the ratios divide by
	base   string // URL without a trailing slash
	header string // the token's header
	token  string // its value; never printed
	mount  string // the peer's KV v2 mount: /v1/secret
	client *http.Client

	setupFn     func(ctx context.Context, t *benchTarget, run string, b *benchConfig) error
	writeMethod string
	writePaths  []string // per client; reads read the same paths
	readPaths   []string
	envPath     string
	writeBody   func(value string) []byte

	mu   sync.Mutex
	undo []string // DELETE paths, in the order they were created
}

// newBenchClient is an HTTP client that connects only to loopback
// addresses (checked on the address actually dialled, after name
// resolution), through no proxy, keeping enough idle connections for
// every client.
func newBenchClient() *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("refusing to connect to %s: not a loopback address", address)
		}
		return nil
	}}
	return &http.Client{
		Timeout: benchRequestTimeout,
		Transport: &http.Transport{
			Proxy: nil, DialContext: d.DialContext, DisableCompression: true,
			MaxIdleConns: 2 * benchMaxClients, MaxIdleConnsPerHost: 2 * benchMaxClients,
			IdleConnTimeout: time.Minute,
		},
	}
}

// loopbackURL parses a target's base URL and refuses one that is not
// plain http(s) on a loopback host.
func loopbackURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%q is not a base URL such as http://127.0.0.1:8080", raw)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("%s is not a loopback address: envvault bench only measures servers on this machine (127.0.0.0/8, ::1 or localhost)", host)
	}
	return u, nil
}

// newEnvvaultTarget is an envvault server: writes PATCH a secret per
// client, reads GET it, task-env GETs the env of a profile.
func newEnvvaultTarget(s benchServer, token string) *benchTarget {
	return &benchTarget{
		name: s.Name, base: strings.TrimRight(s.URL, "/"), header: "Authorization", token: "Bearer " + token,
		client: newBenchClient(), setupFn: setupEnvvault, writeMethod: http.MethodPatch,
		writeBody: func(v string) []byte { return []byte(`{"value":"` + v + `"}`) },
	}
}

// newKVTarget is a Vault-compatible KV v2 server: writes POST a path per
// client, reads GET it, task-env GETs one path holding the env's values.
func newKVTarget(s benchServer, token, mount string) *benchTarget {
	return &benchTarget{
		name: s.Name, peer: true, base: strings.TrimRight(s.URL, "/"), header: "X-Vault-Token", token: token,
		client: newBenchClient(), setupFn: setupKV, writeMethod: http.MethodPost,
		writeBody: func(v string) []byte { return []byte(`{"data":{"value":"` + v + `"}}`) },
		mount:     "/v1/" + mount,
	}
}

// setup creates what the measurements use.
func (t *benchTarget) setup(ctx context.Context, run string, b *benchConfig) error {
	if err := t.setupFn(ctx, t, run, b); err != nil {
		return fmt.Errorf("bench %s: set up: %w", t.name, err)
	}
	return nil
}

// setupEnvvault creates two profiles, a secret per client granted to one
// and the task-env secrets granted to the other.
func setupEnvvault(ctx context.Context, t *benchTarget, run string, b *benchConfig) error {
	profile := func(name string) (string, error) {
		var prof struct {
			ID string `json:"id"`
		}
		body, _ := json.Marshal(map[string]any{"name": name, "image": "envvault-bench", "command": []string{"true"}})
		if err := t.call(ctx, http.MethodPost, "/v1/profiles", body, &prof); err != nil {
			return "", err
		}
		t.created("/v1/profiles/" + prof.ID)
		return prof.ID, nil
	}
	// Two profiles: the written secrets must be granted to one (scope
	// agents needs a grant; scope all would reach the user's other
	// profiles), and task-env resolves exactly --env-secrets.
	envProf, err := profile("bench-" + strings.ToLower(run))
	if err != nil {
		return err
	}
	writeProf, err := profile("bench-" + strings.ToLower(run) + "-w")
	if err != nil {
		return err
	}
	t.envPath = "/v1/profiles/" + envProf + "/env"
	create := func(name string, grants []string) (string, error) {
		v, err := benchValue()
		if err != nil {
			return "", err
		}
		body, _ := json.Marshal(map[string]any{"name": name, "value": v, "scope": "agents", "profile_ids": grants})
		var sec struct {
			ID string `json:"id"`
		}
		if err := t.call(ctx, http.MethodPost, "/v1/secrets", body, &sec); err != nil {
			return "", err
		}
		t.created("/v1/secrets/" + sec.ID)
		return "/v1/secrets/" + sec.ID, nil
	}
	for i := range b.maxClients() {
		p, err := create(fmt.Sprintf("BENCH_%s_W%02d", run, i), []string{writeProf})
		if err != nil {
			return err
		}
		t.writePaths = append(t.writePaths, p)
	}
	t.readPaths = t.writePaths
	for i := range b.EnvSecrets {
		if _, err := create(fmt.Sprintf("BENCH_%s_E%03d", run, i), []string{envProf}); err != nil {
			return err
		}
	}
	return nil
}

// setupKV writes a path per client and one path holding the env's
// values.
func setupKV(ctx context.Context, t *benchTarget, run string, b *benchConfig) error {
	mount := t.mount
	dir := "bench-" + strings.ToLower(run)
	put := func(path string, data map[string]string) error {
		body, _ := json.Marshal(map[string]any{"data": data})
		// Undo first: a write that fails half-way may still have made it.
		t.created(mount + "/metadata/" + path)
		return t.call(ctx, http.MethodPost, mount+"/data/"+path, body, nil)
	}
	for i := range b.maxClients() {
		v, err := benchValue()
		if err != nil {
			return err
		}
		p := fmt.Sprintf("%s/w%02d", dir, i)
		if err := put(p, map[string]string{"value": v}); err != nil {
			return err
		}
		t.writePaths = append(t.writePaths, mount+"/data/"+p)
	}
	t.readPaths = t.writePaths
	env := map[string]string{}
	for i := range b.EnvSecrets {
		v, err := benchValue()
		if err != nil {
			return err
		}
		env[fmt.Sprintf("BENCH_%s_E%03d", run, i)] = v
	}
	t.envPath = mount + "/data/" + dir + "/env"
	return put(dir+"/env", env)
}

// created records a path to DELETE at cleanup.
func (t *benchTarget) created(path string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.undo = append(t.undo, path)
}

// cleanup deletes what setup created, newest first, and says which it
// could not delete.
func (t *benchTarget) cleanup(ctx context.Context) error {
	var errs []error
	for i := len(t.undo) - 1; i >= 0; i-- {
		if err := t.call(ctx, http.MethodDelete, t.undo[i], nil, nil); err != nil {
			errs = append(errs, err)
		}
	}
	t.undo = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bench %s: clean up: %w", t.name, err)
	}
	return nil
}

// call sends one request and decodes a JSON answer into out (if not
// nil). An answer other than 2xx is an error naming the method, the path
// (ids and names only) and the status, with the server's error message:
// neither server puts a value in one.
func (t *benchTarget) call(ctx context.Context, method, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, t.base+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set(t.header, t.token)
	resp, err := t.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: status %d%s", method, path, resp.StatusCode, errorMessage(resp.Body))
	}
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
	} else {
		err = json.NewDecoder(resp.Body).Decode(out)
	}
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	return nil
}

// errorMessage is ": message" from an envvault or Vault error answer, or
// "" when it is neither; at most 200 bytes of it.
func errorMessage(r io.Reader) string {
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
		Errors []string `json:"errors"`
	}
	if json.NewDecoder(io.LimitReader(r, 64<<10)).Decode(&e) != nil {
		return ""
	}
	msg := strings.Join(append([]string{e.Error.Message}, e.Errors...), " ")
	if msg = strings.TrimSpace(msg); msg == "" {
		return ""
	}
	return ": " + msg[:min(len(msg), 200)]
}

// benchResult is one measurement of one target.
type benchResult struct {
	target  string
	peer    bool
	kind    string
	clients int
	round   int
	elapsed time.Duration
	lat     []time.Duration // one per answered request
	cpu     cpuUse          // the machine's, while it ran
	cpuOK   bool            // cpu was measured
}

// measure runs one measurement: clients send kind's request back to
// back until the duration has passed or the requests are used up. The
// first failed request ends it with an error.
func (t *benchTarget) measure(ctx context.Context, kind string, clients int, b *benchConfig) (*benchResult, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var issued atomic.Int64
	lats := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	cpu0, cpuOK := readMachineCPU()
	start := time.Now()
	stop := start.Add(b.Duration)
	for c := range clients {
		wg.Go(func() {
			prefix, err := benchValue()
			if err != nil {
				cancel(err)
				return
			}
			for seq := 0; time.Now().Before(stop) && issued.Add(1) <= int64(b.Requests) && ctx.Err() == nil; seq++ {
				method, path, body := t.request(kind, c, prefix, seq)
				t0 := time.Now()
				if err := t.call(ctx, method, path, body, nil); err != nil {
					cancel(err)
					return
				}
				lats[c] = append(lats[c], time.Since(t0))
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, fmt.Errorf("bench %s: %s with %d clients: %w", t.name, kind, clients, err)
	}
	r := &benchResult{target: t.name, peer: t.peer, kind: kind, clients: clients, elapsed: time.Since(start)}
	if cpu1, ok := readMachineCPU(); ok && cpuOK {
		r.cpu, r.cpuOK = cpu1.since(cpu0, r.elapsed)
	}
	for _, l := range lats {
		r.lat = append(r.lat, l...)
	}
	return r, nil
}

// request is the request of client c's seq-th operation of kind: a write
// sends a value no earlier write of the run sent (prefix and sequence).
func (t *benchTarget) request(kind string, c int, prefix string, seq int) (method, path string, body []byte) {
	switch kind {
	case "write":
		v := fmt.Sprintf("%s%08x", prefix[:benchValueLen-8], seq)
		return t.writeMethod, t.writePaths[c], t.writeBody(v)
	case "read":
		return http.MethodGet, t.readPaths[c], nil
	default:
		return http.MethodGet, t.envPath, nil
	}
}

// benchValue is a random value of benchValueLen hex characters.
func benchValue() (string, error) {
	b := make([]byte, benchValueLen/2)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random value: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// newRunID is a random id naming what one run creates: 8 upper-case
// letters and digits, so that runs never collide.
func newRunID() (string, error) {
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random run id: %w", err)
	}
	return base32.StdEncoding.EncodeToString(b), nil
}

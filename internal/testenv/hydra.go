package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// HydraEnv names the variable holding the path of an Ory Hydra v2.3.0
// binary, the real OAuth2 authorization server of the tests. scripts/test
// builds it from tools/hydra (a module of its own, so Hydra's dependencies
// stay out of envvault's go.mod) with the sqlite tag (cgo), which its
// in-memory store needs, and sets it; by hand:
//
//	go build -C tools/hydra -tags sqlite,sqlite_omit_load_extension -o /tmp/hydra github.com/ory/hydra/v2
//	export ENVVAULT_TEST_HYDRA=/tmp/hydra
const HydraEnv = "ENVVAULT_TEST_HYDRA"

// HydraSubject is the user the login acceptor signs in as: every grant a
// test obtains through the browser flow belongs to it.
const HydraSubject = "envvault-test-subject"

// hydraStartTimeout bounds how long Hydra may take to answer its health
// checks (it migrates its in-memory SQLite first: about a second here).
const hydraStartTimeout = 60 * time.Second

// Hydra is a running Ory Hydra (`hydra serve all --dev`, in-memory store)
// on loopback ports, with a login and consent app that accepts every
// request as HydraSubject (or refuses, see RefuseConsent). Every URL is
// http://127.0.0.1:PORT.
//
// PKCE is enforced for every client (oauth2.pkce.enforced): an
// authorization code flow without a code_challenge is refused, so a test
// that completes one proves the client sent it.
type Hydra struct {
	// PublicURL is Hydra's public side and its issuer (no trailing slash).
	PublicURL string
	// AdminURL is Hydra's admin API (no trailing slash).
	AdminURL string
	// AuthURL is the authorization endpoint (PublicURL + /oauth2/auth).
	AuthURL string
	// TokenURL is the token endpoint behind a pass-through proxy that
	// counts requests by grant type (TokenRequests); Hydra answers them.
	TokenURL string
	// AppURL is the login and consent app's base URL.
	AppURL string

	log    *SyncBuffer
	client *http.Client

	mu      sync.Mutex
	refusal string
	ask     bool
	counts  map[string]int

	logins   atomic.Int64
	consents atomic.Int64
}

// RequireHydra starts Ory Hydra from the binary HydraEnv names, waits until
// its public and admin health checks answer, and stops it when the test
// ends. Each call starts a Hydra of its own (about a second).
//
// If HydraEnv is unset the test skips with a message saying how to get the
// binary, or fails with CI=true. A HydraEnv that names no executable, or a
// Hydra that does not start, always fails.
func RequireHydra(t testing.TB) *Hydra {
	t.Helper()
	bin := hydraBinary(t)
	h := &Hydra{
		log:    &SyncBuffer{},
		client: &http.Client{Timeout: 30 * time.Second},
		counts: map[string]int{},
	}
	app := httptest.NewServer(h.consentApp())
	t.Cleanup(app.Close)
	h.AppURL = app.URL

	var err error
	for range 3 {
		// A free port picked here can be taken before Hydra binds it:
		// try again with others.
		if err = h.start(t, bin); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("Ory Hydra (%s=%s) did not start: %v\n--- its output ---\n%s", HydraEnv, bin, err, h.log.String())
	}
	proxy := httptest.NewServer(h.countingProxy())
	t.Cleanup(proxy.Close)
	h.AuthURL = h.PublicURL + "/oauth2/auth"
	h.TokenURL = proxy.URL + "/oauth2/token"
	return h
}

func hydraBinary(t testing.TB) string {
	t.Helper()
	v := os.Getenv(HydraEnv)
	if v == "" {
		if CI() {
			t.Fatalf("Ory Hydra is required in CI (CI=true) but %s is unset: run ./scripts/test, which builds it from tools/hydra", HydraEnv)
		}
		t.Skipf("OAuth2 tests skipped: %s is unset. Run ./scripts/test, which builds Ory Hydra from tools/hydra and sets it, "+
			"or: go build -C tools/hydra -tags sqlite,sqlite_omit_load_extension -o /tmp/hydra github.com/ory/hydra/v2 && export %s=/tmp/hydra; "+
			"with CI=true this is a failure instead of a skip", HydraEnv, HydraEnv)
	}
	path, err := exec.LookPath(v)
	if err != nil {
		t.Fatalf("%s=%q is not an executable Hydra: %v", HydraEnv, v, err)
	}
	return path
}

// start runs Hydra on two fresh ports and waits for its health checks. An
// error means it exited or never answered; the process is gone then.
func (h *Hydra) start(t testing.TB, bin string) error {
	t.Helper()
	public, admin, err := freePorts()
	if err != nil {
		return err
	}
	h.PublicURL = "http://127.0.0.1:" + public
	h.AdminURL = "http://127.0.0.1:" + admin
	config, err := h.writeConfig(t.TempDir(), public, admin)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, "serve", "all", "--dev", "--sqa-opt-out", "--config", config)
	// Only what Hydra needs: a DSN or URLS_* variable of the caller's
	// environment would override the config file.
	cmd.Env = []string{"HOME=" + filepath.Dir(config), "PATH=" + os.Getenv("PATH")}
	cmd.Stdout, cmd.Stderr = h.log, h.log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if err := h.awaitHealthy(exited); err != nil {
		if !errors.Is(err, errHydraExited) {
			_ = cmd.Process.Kill()
			<-exited
		}
		return err
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	return nil
}

func freePorts() (string, string, error) {
	var ports []string
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", "", fmt.Errorf("find a free port: %w", err)
		}
		defer l.Close()
		_, port, _ := net.SplitHostPort(l.Addr().String())
		ports = append(ports, port)
	}
	return ports[0], ports[1], nil
}

// writeConfig writes Hydra's configuration (JSON, which Hydra reads by the
// file's extension) and returns its path.
func (h *Hydra) writeConfig(dir, public, admin string) (string, error) {
	var secret [24]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", fmt.Errorf("hydra system secret: %w", err)
	}
	config := map[string]any{
		"dsn": "memory",
		"serve": map[string]any{
			"public": map[string]any{"host": "127.0.0.1", "port": atoi(public)},
			"admin":  map[string]any{"host": "127.0.0.1", "port": atoi(admin)},
		},
		"urls": map[string]any{
			"self":    map[string]any{"issuer": h.PublicURL + "/", "public": h.PublicURL + "/"},
			"login":   h.AppURL + "/login",
			"consent": h.AppURL + "/consent",
			"error":   h.AppURL + "/error",
		},
		"secrets":    map[string]any{"system": []string{hex.EncodeToString(secret[:])}},
		"oauth2":     map[string]any{"pkce": map[string]any{"enforced": true}},
		"strategies": map[string]any{"access_token": "opaque"},
		"log":        map[string]any{"level": "info", "format": "text", "leak_sensitive_values": false},
	}
	raw, err := json.MarshalIndent(config, "", "  ")
	if err != nil {
		return "", fmt.Errorf("hydra config: %w", err)
	}
	path := filepath.Join(dir, "hydra.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return "", fmt.Errorf("write hydra config: %w", err)
	}
	return path, nil
}

func atoi(port string) int {
	var n int
	_, _ = fmt.Sscan(port, &n)
	return n
}

var errHydraExited = errors.New("hydra exited before it was ready")

// awaitHealthy polls both health checks until they answer 200, Hydra exits
// (errHydraExited: exited has been read) or hydraStartTimeout passes.
func (h *Hydra) awaitHealthy(exited <-chan error) error {
	deadline := time.After(hydraStartTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if h.healthy(h.PublicURL) && h.healthy(h.AdminURL) {
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("%w: %v", errHydraExited, err)
		case <-deadline:
			return fmt.Errorf("hydra did not answer /health/ready within %s", hydraStartTimeout)
		case <-tick.C:
		}
	}
}

func (h *Hydra) healthy(base string) bool {
	resp, err := h.client.Get(base + "/health/ready")
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Log returns everything Hydra has written so far (its request log and
// errors; Hydra is told not to log sensitive values).
func (h *Hydra) Log() string { return h.log.String() }

// Logins and Consents count the login and consent requests the app has
// answered (accepted or refused).
func (h *Hydra) Logins() int   { return int(h.logins.Load()) }
func (h *Hydra) Consents() int { return int(h.consents.Load()) }

// RefuseConsent makes the consent app refuse every consent request from now
// on with the OAuth2 error code (e.g. "access_denied"), or accept again
// with "". Hydra then sends the browser back to the client's redirect URI
// with ?error=CODE.
func (h *Hydra) RefuseConsent(code string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.refusal = code
}

// AskConsent makes the consent app show a page with an Allow button
// (#hydra-allow, a form posted to the app) instead of accepting at once, as
// a real provider's consent page does: the navigation back to the client
// then starts on the provider's site.
func (h *Hydra) AskConsent(ask bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ask = ask
}

// TokenRequests counts the requests the token endpoint (TokenURL) received
// with the grant type (e.g. "refresh_token", "client_credentials",
// "authorization_code"), answered or not.
func (h *Hydra) TokenRequests(grantType string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.counts[grantType]
}

// HydraClientOptions is an OAuth2 client to register. Zero lifespans keep
// Hydra's defaults (access tokens 1h, refresh tokens 720h).
type HydraClientOptions struct {
	// GrantTypes default to ["client_credentials"]. Add "refresh_token"
	// for refresh tokens (the grant must also request scope "offline_access").
	GrantTypes []string
	// Scopes the client may request, e.g. "offline_access", "read".
	Scopes []string
	// RedirectURIs the authorization code flow may return to.
	RedirectURIs []string
	// Secret is the client secret; Hydra generates one when empty.
	Secret string
	// AccessTokenLifespan applies to the access tokens of every grant
	// (authorization code, refresh, client credentials).
	AccessTokenLifespan time.Duration
	// RefreshTokenLifespan applies to refresh tokens of both grants
	// that issue them.
	RefreshTokenLifespan time.Duration
}

// HydraClient is a registered client.
type HydraClient struct {
	ID     string
	Secret string
}

// CreateClient registers a client through the admin API (client secret
// sent as HTTP Basic to the token endpoint: client_secret_basic). The
// client is deleted when the test ends if it still exists.
func (h *Hydra) CreateClient(t testing.TB, o HydraClientOptions) HydraClient {
	t.Helper()
	if len(o.GrantTypes) == 0 {
		o.GrantTypes = []string{"client_credentials"}
	}
	body := map[string]any{
		"client_name":                "envvault-test",
		"grant_types":                o.GrantTypes,
		"response_types":             []string{"code"},
		"scope":                      strings.Join(o.Scopes, " "),
		"redirect_uris":              o.RedirectURIs,
		"token_endpoint_auth_method": "client_secret_basic",
	}
	if o.Secret != "" {
		body["client_secret"] = o.Secret
	}
	if d := o.AccessTokenLifespan; d > 0 {
		for _, k := range []string{"authorization_code", "refresh_token", "client_credentials"} {
			body[k+"_grant_access_token_lifespan"] = d.String()
		}
	}
	if d := o.RefreshTokenLifespan; d > 0 {
		for _, k := range []string{"authorization_code", "refresh_token"} {
			body[k+"_grant_refresh_token_lifespan"] = d.String()
		}
	}
	var got struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	h.admin(t, http.MethodPost, "/admin/clients", body, http.StatusCreated, &got)
	if got.ID == "" || got.Secret == "" {
		t.Fatalf("hydra created a client without an id or secret")
	}
	t.Cleanup(func() { h.deleteClient(t, got.ID, true) })
	return HydraClient(got)
}

// DeleteClient removes a client: its tokens stop working and a refresh
// with them is refused (invalid_client).
func (h *Hydra) DeleteClient(t testing.TB, id string) {
	t.Helper()
	h.deleteClient(t, id, false)
}

func (h *Hydra) deleteClient(t testing.TB, id string, gone bool) {
	t.Helper()
	want := http.StatusNoContent
	if gone {
		want = 0 // at cleanup: 404 when the test deleted it already
	}
	h.admin(t, http.MethodDelete, "/admin/clients/"+url.PathEscape(id), nil, want, nil)
}

// SetClientCredentialsLifespan makes the access tokens Hydra issues to the
// client by client credentials from now on live d (Hydra's default is an
// hour).
func (h *Hydra) SetClientCredentialsLifespan(t testing.TB, id string, d time.Duration) {
	t.Helper()
	body := map[string]string{"client_credentials_grant_access_token_lifespan": d.String()}
	h.admin(t, http.MethodPut, "/admin/clients/"+url.PathEscape(id)+"/lifespans", body, http.StatusOK, nil)
}

// RevokeConsent revokes every consent HydraSubject gave the client, and with
// it every access and refresh token issued under it: the next refresh is
// refused with invalid_grant, as when a user revokes an app's access.
func (h *Hydra) RevokeConsent(t testing.TB, clientID string) {
	t.Helper()
	q := url.Values{"subject": {HydraSubject}, "client": {clientID}}
	h.admin(t, http.MethodDelete, "/admin/oauth2/auth/sessions/consent?"+q.Encode(), nil, http.StatusNoContent, nil)
}

// HydraIntrospection is what the admin API says of a token.
type HydraIntrospection struct {
	Active    bool   `json:"active"`
	ClientID  string `json:"client_id"`
	Subject   string `json:"sub"`
	Scope     string `json:"scope"`
	ExpiresAt int64  `json:"exp"`
	TokenUse  string `json:"token_use"`
}

// Introspect asks Hydra whether an access or refresh token is active, and
// for whom.
func (h *Hydra) Introspect(t testing.TB, token string) HydraIntrospection {
	t.Helper()
	form := url.Values{"token": {token}}
	req, err := http.NewRequest(http.MethodPost, h.AdminURL+"/admin/oauth2/introspect", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatalf("introspect: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var got HydraIntrospection
	h.do(t, req, http.StatusOK, &got)
	return got
}

// admin sends a JSON request to the admin API and decodes the answer into
// out (if not nil). want 0 accepts any status below 500.
func (h *Hydra) admin(t testing.TB, method, path string, body any, want int, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatalf("hydra %s %s: %v", method, path, err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, h.AdminURL+path, rd)
	if err != nil {
		t.Fatalf("hydra %s %s: %v", method, path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	h.do(t, req, want, out)
}

func (h *Hydra) do(t testing.TB, req *http.Request, want int, out any) {
	t.Helper()
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatalf("hydra %s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if (want != 0 && resp.StatusCode != want) || (want == 0 && resp.StatusCode >= 500) {
		t.Fatalf("hydra %s %s: status %d, want %d: %s", req.Method, req.URL.Path, resp.StatusCode, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("hydra %s %s: decode %s: %v", req.Method, req.URL.Path, raw, err)
		}
	}
}

// consentApp is the login and consent app Hydra sends browsers to: it
// accepts (or refuses) each challenge through the admin API and sends the
// browser on to where Hydra says.
func (h *Hydra) consentApp() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		h.logins.Add(1)
		q := url.Values{"login_challenge": {r.URL.Query().Get("login_challenge")}}
		body := map[string]any{"subject": HydraSubject, "remember": false}
		h.answer(w, r, "/admin/oauth2/auth/requests/login/accept?"+q.Encode(), body)
	})
	mux.HandleFunc("GET /consent", func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		ask := h.ask
		h.mu.Unlock()
		if ask {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, `<!doctype html><title>Consent</title><form method="post" action="/consent">`+
				`<input type="hidden" name="consent_challenge" value="%s"><button id="hydra-allow">Allow</button></form>`,
				html.EscapeString(r.URL.Query().Get("consent_challenge")))
			return
		}
		h.consent(w, r, r.URL.Query().Get("consent_challenge"))
	})
	mux.HandleFunc("POST /consent", func(w http.ResponseWriter, r *http.Request) {
		h.consent(w, r, r.PostFormValue("consent_challenge"))
	})
	mux.HandleFunc("GET /error", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "hydra error: %s: %s\n", r.URL.Query().Get("error"), r.URL.Query().Get("error_description"))
	})
	return mux
}

// consent accepts (or refuses, see RefuseConsent) a consent challenge,
// granting every scope and audience asked.
func (h *Hydra) consent(w http.ResponseWriter, r *http.Request, challenge string) {
	h.consents.Add(1)
	q := url.Values{"consent_challenge": {challenge}}
	h.mu.Lock()
	refusal := h.refusal
	h.mu.Unlock()
	if refusal != "" {
		body := map[string]any{"error": refusal, "error_description": "the test's consent app refused"}
		h.answer(w, r, "/admin/oauth2/auth/requests/consent/reject?"+q.Encode(), body)
		return
	}
	var req struct {
		Scope    []string `json:"requested_scope"`
		Audience []string `json:"requested_access_token_audience"`
	}
	if err := h.adminJSON(r.Context(), http.MethodGet, "/admin/oauth2/auth/requests/consent?"+q.Encode(), nil, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	body := map[string]any{"grant_scope": req.Scope, "grant_access_token_audience": req.Audience, "remember": false}
	h.answer(w, r, "/admin/oauth2/auth/requests/consent/accept?"+q.Encode(), body)
}

// answer PUTs an accept or reject and redirects the browser to Hydra's
// redirect_to.
func (h *Hydra) answer(w http.ResponseWriter, r *http.Request, path string, body any) {
	var got struct {
		RedirectTo string `json:"redirect_to"`
	}
	if err := h.adminJSON(r.Context(), http.MethodPut, path, body, &got); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	http.Redirect(w, r, got.RedirectTo, http.StatusFound)
}

// adminJSON is admin for handlers (no testing.TB): errors are returned.
func (h *Hydra) adminJSON(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.AdminURL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("hydra %s %s: status %d: %s", method, req.URL.Path, resp.StatusCode, raw)
	}
	return json.Unmarshal(raw, out)
}

// countingProxy passes every request to Hydra's public side, counting token
// requests by grant type.
func (h *Hydra) countingProxy() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if form, err := url.ParseQuery(string(body)); err == nil {
			h.mu.Lock()
			h.counts[form.Get("grant_type")]++
			h.mu.Unlock()
		}
		req, err := http.NewRequestWithContext(r.Context(), r.Method, h.PublicURL+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		req.Header = r.Header.Clone()
		resp, err := h.client.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})
}

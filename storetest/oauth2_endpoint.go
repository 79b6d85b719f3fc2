package storetest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
)

// tokenEndpoint is a token endpoint over real HTTP on loopback for the
// OAuth2 suite: it answers client_credentials and refresh_token grants for
// one client, counts the calls, rotates refresh tokens if told, and fails
// with an OAuth2 error if told. Every token it gives carries the canary.
// (The end-to-end tests run against Ory Hydra; this one lets the suite
// see what the vault sends, on every store.)
type tokenEndpoint struct {
	t            *testing.T
	srv          *httptest.Server
	clientID     string
	clientSecret string
	calls        atomic.Int64
	seq          atomic.Int64

	mu        sync.Mutex
	expiresIn int    // seconds; 0 gives no expires_in
	fail      string // an OAuth2 error code to answer, "" to give tokens
	rotate    bool   // give a new refresh token at each refresh
	refresh   string // the refresh token it accepts now
	grants    []string
	scopes    []string
	audiences []string
	gate      chan struct{} // if not nil, each call waits for it to close

	// The device flow (RFC 8628): the device code it gave, and what the
	// user did at the provider: "" (not yet), "approve" or "deny".
	deviceCode string
	device     string
	polls      int // device code token requests answered
}

// deviceGrant is RFC 8628's grant type.
const deviceGrant = "urn:ietf:params:oauth:grant-type:device_code"

func newTokenEndpoint(t *testing.T) *tokenEndpoint {
	e := &tokenEndpoint{t: t, clientID: "client-" + t.Name(), clientSecret: value("client-secret"), expiresIn: 3600}
	e.srv = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *tokenEndpoint) url() string { return e.srv.URL + "/oauth2/token" }

func (e *tokenEndpoint) set(fn func(e *tokenEndpoint)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fn(e)
}

// issue returns a new access token (and refresh token) carrying the canary.
func (e *tokenEndpoint) issue(kind string) string {
	return value(fmt.Sprintf("%s-%d", kind, e.seq.Add(1)))
}

func (e *tokenEndpoint) serve(w http.ResponseWriter, r *http.Request) {
	e.calls.Add(1)
	e.mu.Lock()
	gate := e.gate
	e.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	if r.URL.Path == "/oauth2/device/auth" {
		e.deviceAuth(w, r)
		return
	}
	id, secret, ok := r.BasicAuth()
	if ok {
		// RFC 6749 2.3.1: form-encoded before basic auth.
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	grant := r.PostForm.Get("grant_type")
	e.grants = append(e.grants, grant)
	e.scopes = append(e.scopes, r.PostForm.Get("scope"))
	e.audiences = append(e.audiences, r.PostForm.Get("audience"))
	switch {
	case id != e.clientID || secret != e.clientSecret:
		oauthError(w, http.StatusUnauthorized, "invalid_client")
	case e.fail != "":
		oauthError(w, http.StatusBadRequest, e.fail)
	case grant == "refresh_token" && r.PostForm.Get("refresh_token") != e.refresh:
		oauthError(w, http.StatusBadRequest, "invalid_grant")
	case grant == deviceGrant && (e.deviceCode == "" || r.PostForm.Get("device_code") != e.deviceCode):
		oauthError(w, http.StatusBadRequest, "invalid_grant")
	case grant == deviceGrant && e.device != "approve":
		e.polls++
		code := map[string]string{"": "authorization_pending", "deny": "access_denied"}[e.device]
		oauthError(w, http.StatusBadRequest, code)
	case grant == "client_credentials" || grant == "refresh_token" || grant == deviceGrant:
		body := map[string]any{"access_token": e.issue("access"), "token_type": "bearer"}
		if e.expiresIn > 0 {
			body["expires_in"] = e.expiresIn
		}
		if grant == deviceGrant {
			e.polls++
			e.refresh = e.issue("refresh")
			body["refresh_token"] = e.refresh
		}
		if grant == "refresh_token" && e.rotate {
			e.refresh = e.issue("refresh")
			body["refresh_token"] = e.refresh
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(body)
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type")
	}
}

// deviceAuth answers a device authorization request of its client with a
// new device code, a user code and a poll interval of one second.
func (e *tokenEndpoint) deviceAuth(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r.PostForm.Get("client_id") != e.clientID {
		oauthError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	e.deviceCode, e.device = e.issue("device-code"), ""
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"device_code": e.deviceCode, "user_code": "WDJB-MJHT",
		"verification_uri": e.srv.URL + "/device", "expires_in": 600, "interval": 1})
}

func oauthError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// The description echoes the canary: a store or service that showed
	// the endpoint's whole answer would show it.
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": "refused", "debug": canary})
}

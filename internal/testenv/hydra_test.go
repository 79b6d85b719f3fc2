package testenv

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestHydraClientCredentials starts Hydra, registers a client and obtains a
// token with the client credentials grant at TokenURL (through the counting
// proxy): Hydra says the token is active for that client, the grant was
// counted, a wrong secret is refused, and a deleted client's token is no
// longer active.
func TestHydraClientCredentials(t *testing.T) {
	h := RequireHydra(t)
	const secret = "hydra-helper-canary-secret-7f3a"
	c := h.CreateClient(t, HydraClientOptions{Scopes: []string{"read"}, Secret: secret, AccessTokenLifespan: 90 * time.Second})
	if c.Secret != secret {
		t.Fatalf("client secret = %q, want the one asked for", c.Secret)
	}

	status, tok := clientCredentials(t, h.TokenURL, c.ID, c.Secret)
	if status != http.StatusOK || tok.AccessToken == "" || tok.TokenType != "bearer" {
		t.Fatalf("token request: status %d, token %+v", status, tok)
	}
	if tok.ExpiresIn < 80 || tok.ExpiresIn > 90 {
		t.Errorf("expires_in = %d, want about the 90 s lifespan asked for", tok.ExpiresIn)
	}
	got := h.Introspect(t, tok.AccessToken)
	if !got.Active || got.ClientID != c.ID || got.Scope != "read" {
		t.Errorf("introspection = %+v, want active for client %s with scope read", got, c.ID)
	}
	if n := h.TokenRequests("client_credentials"); n != 1 {
		t.Errorf("TokenRequests(client_credentials) = %d, want 1", n)
	}

	if status, _ := clientCredentials(t, h.TokenURL, c.ID, "wrong"); status != http.StatusUnauthorized {
		t.Errorf("wrong client secret: status %d, want 401", status)
	}
	h.DeleteClient(t, c.ID)
	if got := h.Introspect(t, tok.AccessToken); got.Active {
		t.Errorf("token of a deleted client still active: %+v", got)
	}
	if strings.Contains(h.Log(), secret) || strings.Contains(h.Log(), tok.AccessToken) {
		t.Errorf("hydra's log holds the client secret or the access token")
	}
	if !strings.Contains(h.Log(), "/oauth2/token") {
		t.Errorf("hydra's log does not show the token request; is it its log?\n%s", h.Log())
	}
}

type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
}

func clientCredentials(t *testing.T, tokenURL, id, secret string) (int, tokenAnswer) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}
	req, err := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("token request: %v", err)
	}
	defer resp.Body.Close()
	var tok tokenAnswer
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
			t.Fatalf("decode token: %v", err)
		}
	}
	return resp.StatusCode, tok
}

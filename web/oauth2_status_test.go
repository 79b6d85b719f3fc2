package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/envvault/envvault/vault"
)

// TestSecretListShowsNeedsReconnect: the secrets page marks an oauth2
// secret whose refresh failed as needing reconnecting, with the reason,
// and shows neither its client secret nor a token.
func TestSecretListShowsNeedsReconnect(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	const clientSecret = "CANARY-web-client-secret-91c2"
	// A token endpoint that refuses every request.
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_client","error_description":"client authentication failed"}`))
	}))
	t.Cleanup(idp.Close)
	sec, err := s.svc.CreateSecret(ctx, s.userID, vault.SecretInput{Name: "API_TOKEN", Kind: vault.KindOAuth2, Value: clientSecret,
		OAuth2: &vault.OAuth2Settings{Flow: vault.FlowClientCredentials, TokenURL: idp.URL + "/token", ClientID: "envvault"}})
	if err != nil {
		t.Fatal(err)
	}
	p := s.mustProfile(t, "agent")
	c := s.client(t)
	c.signIn()
	if page := c.get("/settings/secrets"); !strings.Contains(page.Body, `id="secret-`+sec.ID+`"`) || !strings.Contains(page.Body, "not connected yet") {
		t.Fatalf("the secrets page does not show the new oauth2 secret as not connected: %d", page.StatusCode)
	}
	if _, err := s.svc.GetDecryptedForProfile(ctx, s.userID, p.ID); err == nil {
		t.Fatal("a release with a refused client succeeded")
	}
	page := c.get("/settings/secrets")
	if page.StatusCode != http.StatusOK || !strings.Contains(page.Body, "needs reconnecting") || !strings.Contains(page.Body, "invalid_client") {
		t.Errorf("the secrets page does not say the secret needs reconnecting: %d", page.StatusCode)
	}
	if strings.Contains(c.seen.String(), clientSecret) {
		t.Error("a page holds the client secret")
	}
}

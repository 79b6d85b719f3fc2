package api

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// POST /v1/secrets/:id/oauth2/authorize starts an authorization bound to
// the user: the provider's URL with a state, an S256 code challenge, the
// scopes and the dashboard's callback as redirect_uri (from the request's
// host, no --public-url here); every refusal names its field; a read token
// may not start one; no answer holds the client secret.
func TestOAuth2AuthorizeRoute(t *testing.T) {
	e := newTestEnv(t)
	_, tok := e.newUser("alice")
	_, bob := e.newUser("bob")
	const clientSecret = "CANARY-authorize-client-secret-71c0"
	settings := `{"flow":"authorization_code","auth_url":"https://idp.example/authorize","token_url":"https://idp.example/token","client_id":"envvault","scopes":["repo","offline_access"]}`
	id := e.mustCreate("/v1/secrets", tok, `{"name":"GITHUB","kind":"oauth2","oauth2":`+settings+`,"client_secret":"`+clientSecret+`"}`)
	var bodies []string

	r := e.call("POST", "/v1/secrets/"+id+"/oauth2/authorize", tok, "")
	bodies = append(bodies, string(r.body))
	want(t, r, http.StatusOK, "")
	got := r.json(t)
	redirect, _ := got["redirect_url"].(string)
	if !strings.HasPrefix(redirect, "http://127.0.0.1:") || !strings.HasSuffix(redirect, "/oauth2/callback") {
		t.Errorf("redirect_url %q: want this server's /oauth2/callback", redirect)
	}
	u, err := url.Parse(got["authorization_url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Host != "idp.example" || q.Get("redirect_uri") != redirect || q.Get("code_challenge_method") != "S256" ||
		q.Get("client_id") != "envvault" || q.Get("scope") != "repo offline_access" || len(q.Get("state")) < 43 {
		t.Errorf("authorization_url %s", u)
	}

	value := e.mustCreate("/v1/secrets", tok, `{"name":"PLAIN","value":"v"}`)
	cc := e.mustCreate("/v1/secrets", tok, `{"name":"MACHINE","kind":"oauth2","oauth2":{"flow":"client_credentials","token_url":"https://idp.example/token","client_id":"c"},"client_secret":"s"}`)
	for _, c := range []struct {
		id, token string
		status    int
		field     string
	}{
		{value, tok, http.StatusUnprocessableEntity, "kind"},
		{cc, tok, http.StatusUnprocessableEntity, "flow"},
		{"sec_missing", tok, http.StatusNotFound, ""},
		{id, bob, http.StatusNotFound, ""},
	} {
		r := e.call("POST", "/v1/secrets/"+c.id+"/oauth2/authorize", c.token, "")
		bodies = append(bodies, string(r.body))
		want(t, r, c.status, c.field)
	}
	r = e.call("POST", "/v1/tokens", tok, `{"name":"reader","scope":"read"}`)
	want(t, r, http.StatusCreated, "")
	readTok, _ := r.json(t)["token"].(string)
	r = e.call("POST", "/v1/secrets/"+id+"/oauth2/authorize", readTok, "")
	want(t, r, http.StatusForbidden, "")
	for _, b := range bodies {
		if strings.Contains(b, clientSecret) {
			t.Errorf("an answer holds the client secret: %s", b)
		}
	}
}

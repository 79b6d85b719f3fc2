package api

import (
	"net/http"
	"strings"
	"testing"
)

// An oauth2 secret through the API: created with its settings and client
// secret, read back with its settings and status, patched; every refusal
// names its field; no response holds the client secret.
func TestOAuth2SecretRoutes(t *testing.T) {
	e := newTestEnv(t)
	_, tok := e.newUser("alice")
	const clientSecret = "CANARY-client-secret-5d1e"
	var bodies []string
	call := func(method, path, body string) *response {
		t.Helper()
		r := e.call(method, path, tok, body)
		bodies = append(bodies, string(r.body))
		return r
	}
	settings := `{"flow":"client_credentials","token_url":"https://idp.example/oauth2/token","client_id":"envvault","scopes":["read","write"],"audience":"api"}`
	r := call("POST", "/v1/secrets", `{"name":"API_TOKEN","kind":"oauth2","oauth2":`+settings+`,"client_secret":"`+clientSecret+`"}`)
	want(t, r, http.StatusCreated, "")
	sec := r.json(t)
	id, _ := sec["id"].(string)
	o, _ := sec["oauth2"].(map[string]any)
	if sec["kind"] != "oauth2" || o == nil || o["client_id"] != "envvault" || o["audience"] != "api" {
		t.Fatalf("created: %s", r.body)
	}
	if st, _ := o["status"].(map[string]any); st == nil || st["state"] != "pending" || st["expires_at"] != nil {
		t.Errorf("status of a new secret: %s", r.body)
	}
	if w, _ := sec["warnings"].([]any); len(w) != 0 {
		t.Errorf("warnings for an oauth2 secret: %s", r.body)
	}
	r = call("GET", "/v1/secrets/"+id, "")
	want(t, r, http.StatusOK, "")
	if got := r.json(t); got["kind"] != "oauth2" || got["oauth2"] == nil {
		t.Errorf("read back: %s", r.body)
	}
	r = call("GET", "/v1/secrets", "")
	want(t, r, http.StatusOK, "")
	plain := e.mustCreate("/v1/secrets", tok, `{"name":"PLAIN","value":"plain-value"}`)
	r = call("GET", "/v1/secrets/"+plain, "")
	if got := r.json(t); got["kind"] != "value" || got["oauth2"] != nil {
		t.Errorf("a value secret reads back as %s", r.body)
	}
	r = call("PATCH", "/v1/secrets/"+id, `{"client_secret":"`+clientSecret+`-2"}`)
	want(t, r, http.StatusOK, "")
	if got := r.json(t); got["version"] != 2.0 {
		t.Errorf("new client secret: %s", r.body)
	}
	r = call("PATCH", "/v1/secrets/"+id, `{"oauth2":{"flow":"authorization_code","token_url":"https://idp.example/t","auth_url":"https://idp.example/a","client_id":"x"}}`)
	want(t, r, http.StatusOK, "")
	if got := r.json(t)["oauth2"].(map[string]any); got["flow"] != "authorization_code" || got["auth_url"] != "https://idp.example/a" {
		t.Errorf("new settings: %s", r.body)
	}
	for _, c := range []struct{ method, path, body, field string }{
		{"POST", "/v1/secrets", `{"name":"B","kind":"oauth2","client_secret":"s"}`, "oauth2"},
		{"POST", "/v1/secrets", `{"name":"B","kind":"token","value":"v"}`, "kind"},
		{"POST", "/v1/secrets", `{"name":"B","kind":"oauth2","value":"v","oauth2":` + settings + `}`, "value"},
		{"POST", "/v1/secrets", `{"name":"B","value":"vvvv","client_secret":"s"}`, "client_secret"},
		{"POST", "/v1/secrets", `{"name":"B","kind":"oauth2","oauth2":` + settings + `}`, "client_secret"},
		{"POST", "/v1/secrets", `{"name":"B","kind":"oauth2","client_secret":"s","oauth2":{"flow":"client_credentials","token_url":"ftp://x/y","client_id":"c"}}`, "oauth2.token_url"},
		{"POST", "/v1/secrets", `{"name":"B","kind":"oauth2","client_secret":"s","oauth2":{"flow":"device_code","token_url":"https://x/y","client_id":"c"}}`, "oauth2.device_auth_url"},
		{"POST", "/v1/secrets", `{"name":"B","kind":"oauth2","client_secret":"s","oauth2":{"flow":"client_credentials","token_url":"https://x/y"}}`, "oauth2.client_id"},
		{"POST", "/v1/secrets", `{"name":"B","kind":"oauth2","client_secret":"s","oauth2":{"flow":"client_credentials","token_url":"https://x/y","client_id":"c","secret":"s"}}`, "oauth2"},
		{"PATCH", "/v1/secrets/" + id, `{"value":"vvvv"}`, "value"},
		{"PATCH", "/v1/secrets/" + plain, `{"client_secret":"s"}`, "client_secret"},
		{"PATCH", "/v1/secrets/" + plain, `{"oauth2":` + settings + `}`, "oauth2"},
	} {
		r := call(c.method, c.path, c.body)
		want(t, r, http.StatusUnprocessableEntity, c.field)
	}
	for _, b := range bodies {
		if strings.Contains(b, clientSecret) {
			t.Fatalf("a response holds the client secret: %s", b)
		}
	}
}

package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestRequiredSecretsAndSecretKeys: required_secrets round-trip through
// create, GET and PATCH; GET /v1/profiles/:id/secret-keys says for every
// name where its value comes from, marks required ones and the missing
// ones, and never holds a value.
func TestRequiredSecretsAndSecretKeys(t *testing.T) {
	e := newTestEnv(t)
	_, tok := e.newUser("alice")
	const canary = "canary-value-7f3a91"
	r := e.call("POST", "/v1/profiles", tok, `{"name":"p","image":"img","env":{"MODE":"`+canary+`-env"},
		"required_secrets":[{"name":"OPENAI_API_KEY","description":" the team's key "},{"name":"GITHUB_TOKEN"},{"name":"MODE","description":"from env"}]}`)
	want(t, r, http.StatusCreated, "")
	p := r.json(t)
	id := p["id"].(string)
	// Re-encoded from a map: keys sorted.
	wantReq := `[{"description":"the team's key","name":"OPENAI_API_KEY"},{"description":"","name":"GITHUB_TOKEN"},{"description":"from env","name":"MODE"}]`
	if got, _ := json.Marshal(p["required_secrets"]); string(got) != wantReq {
		t.Errorf("required_secrets: %s, want %s", got, wantReq)
	}
	other := e.mustCreate("/v1/profiles", tok, `{"name":"other","image":"img"}`)
	if r := e.call("GET", "/v1/profiles/"+other, tok, ""); !strings.Contains(string(r.body), `"required_secrets":[]`) {
		t.Errorf("a profile without required names: %s", r.body)
	}

	e.mustCreate("/v1/secrets", tok, `{"name":"GITHUB_TOKEN","value":"`+canary+`-all"}`)
	e.mustCreate("/v1/secrets", tok, `{"name":"GITHUB_TOKEN","value":"`+canary+`-agents","scope":"agents","profile_ids":["`+id+`"]}`)
	e.mustCreate("/v1/secrets", tok, `{"name":"SHARED","value":"`+canary+`-shared"}`)
	r = e.call("GET", "/v1/profiles/"+id+"/secret-keys", tok, "")
	want(t, r, 200, "")
	wantKeys := `{"data":[` +
		`{"name":"GITHUB_TOKEN","has_value":true,"source":"agents","required":true,"description":""},` +
		`{"name":"MODE","has_value":true,"source":"profile_env","required":true,"description":"from env"},` +
		`{"name":"OPENAI_API_KEY","has_value":false,"source":"missing","required":true,"description":"the team's key"},` +
		`{"name":"SHARED","has_value":true,"source":"all","required":false,"description":""}]}`
	if strings.TrimSpace(string(r.body)) != wantKeys {
		t.Errorf("secret-keys:\n got %s\nwant %s", r.body, wantKeys)
	}
	if strings.Contains(string(r.body), canary) {
		t.Errorf("secret-keys holds a value: %s", r.body)
	}
	r = e.call("GET", "/v1/profiles/"+other+"/secret-keys", tok, "")
	want(t, r, 200, "")
	if !strings.Contains(string(r.body), `{"name":"GITHUB_TOKEN","has_value":true,"source":"all","required":false,"description":""}`) {
		t.Errorf("another profile gets the all secret: %s", r.body)
	}

	// PATCH: omitted keeps, a list replaces, null clears.
	r = e.call("PATCH", "/v1/profiles/"+id, tok, `{"name":"renamed"}`)
	want(t, r, 200, "")
	if got, _ := json.Marshal(r.json(t)["required_secrets"]); string(got) != wantReq {
		t.Errorf("after a PATCH of the name: %s", got)
	}
	r = e.call("PATCH", "/v1/profiles/"+id, tok, `{"required_secrets":[{"name":"ONLY"}]}`)
	want(t, r, 200, "")
	if !strings.Contains(string(r.body), `"required_secrets":[{"name":"ONLY","description":""}]`) {
		t.Errorf("after replacing: %s", r.body)
	}
	r = e.call("PATCH", "/v1/profiles/"+id, tok, `{"required_secrets":null}`)
	want(t, r, 200, "")
	if !strings.Contains(string(r.body), `"required_secrets":[]`) {
		t.Errorf("after null: %s", r.body)
	}

	// Refused: each names the field and changes nothing.
	var many []string
	for i := range 101 {
		many = append(many, fmt.Sprintf(`{"name":"N_%d"}`, i))
	}
	for _, body := range []string{
		`{"required_secrets":[{"name":"lower"}]}`,
		`{"required_secrets":[{"name":"A"},{"name":"A"}]}`,
		`{"required_secrets":[{"name":"A","description":"` + strings.Repeat("d", 1001) + `"}]}`,
		`{"required_secrets":[` + strings.Join(many, ",") + `]}`,
		`{"required_secrets":[{"name":"A","extra":1}]}`,
		`{"required_secrets":["A"]}`,
	} {
		want(t, e.call("PATCH", "/v1/profiles/"+id, tok, body), 422, "required_secrets")
		want(t, e.call("POST", "/v1/profiles", tok, `{"name":"refused","image":"img",`+body[1:]), 422, "required_secrets")
	}
	if r := e.call("GET", "/v1/profiles/"+id, tok, ""); !strings.Contains(string(r.body), `"required_secrets":[]`) {
		t.Errorf("a refused PATCH changed the profile: %s", r.body)
	}
	want(t, e.call("GET", "/v1/profiles/prof_nope/secret-keys", tok, ""), 404, "")
	_, bob := e.newUser("bob")
	want(t, e.call("GET", "/v1/profiles/"+id+"/secret-keys", bob, ""), 404, "")
}

// TestOnSecretChangeField: on_secret_change is keep by default, takes
// restart on create and PATCH, and any other word is 422 naming it.
func TestOnSecretChangeField(t *testing.T) {
	e := newTestEnv(t)
	_, tok := e.newUser("alice")
	r := e.call("POST", "/v1/profiles", tok, `{"name":"p","image":"img"}`)
	want(t, r, http.StatusCreated, "")
	id := r.json(t)["id"].(string)
	if got := r.json(t)["on_secret_change"]; got != "keep" {
		t.Errorf("default: %v", got)
	}
	r = e.call("POST", "/v1/profiles", tok, `{"name":"q","image":"img","on_secret_change":"restart"}`)
	want(t, r, http.StatusCreated, "")
	if got := r.json(t)["on_secret_change"]; got != "restart" {
		t.Errorf("created with restart: %v", got)
	}
	r = e.call("PATCH", "/v1/profiles/"+id, tok, `{"on_secret_change":"restart"}`)
	want(t, r, 200, "")
	if got := r.json(t)["on_secret_change"]; got != "restart" {
		t.Errorf("patched: %v", got)
	}
	want(t, e.call("PATCH", "/v1/profiles/"+id, tok, `{"on_secret_change":"reboot"}`), 422, "on_secret_change")
	want(t, e.call("PATCH", "/v1/profiles/"+id, tok, `{"on_secret_change":null}`), 422, "on_secret_change")
	want(t, e.call("POST", "/v1/profiles", tok, `{"name":"x","image":"img","on_secret_change":"Restart"}`), 422, "on_secret_change")
	if got := e.call("GET", "/v1/profiles/"+id, tok, "").json(t)["on_secret_change"]; got != "restart" {
		t.Errorf("after refusals: %v", got)
	}
}

package api

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestProfileLifecycle(t *testing.T) {
	e := newTestEnv(t)
	_, tok := e.newUser("alice")
	r := e.call("POST", "/v1/profiles", tok, `{"name":" reviewer ","image":"ghcr.io/acme/agent:1","command":["run","--fast"],"setup_commands":["apt-get update"],"env":{"MODE":"review"}}`)
	want(t, r, http.StatusCreated, "")
	p := r.json(t)
	id := p["id"].(string)
	if !strings.HasPrefix(id, "prof_") || p["name"] != "reviewer" || p["image"] != "ghcr.io/acme/agent:1" {
		t.Errorf("created: %s", r.body)
	}
	r = e.call("POST", "/v1/profiles", tok, `{"name":"bare","image":"img"}`)
	want(t, r, http.StatusCreated, "")
	if !strings.Contains(string(r.body), `"command":[],"setup_commands":[],"env":{}`) {
		t.Errorf("empty lists and env must be [] and {}: %s", r.body)
	}
	want(t, e.call("POST", "/v1/profiles", tok, `{"name":"reviewer","image":"img"}`), http.StatusConflict, "")
	want(t, e.call("POST", "/v1/profiles", tok, `{"image":"img"}`), 422, "name")
	want(t, e.call("POST", "/v1/profiles", tok, `{"name":"x"}`), 422, "image")
	want(t, e.call("POST", "/v1/profiles", tok, `{"name":"x","image":"has space"}`), 422, "image")
	want(t, e.call("POST", "/v1/profiles", tok, `{"name":"x","image":"i","env":{"lower":"v"}}`), 422, "env")
	want(t, e.call("POST", "/v1/profiles", tok, `{"name":"x","image":"i","command":["a\u0000b"]}`), 422, "command")
	want(t, e.call("POST", "/v1/profiles", tok, `{"name":"`+strings.Repeat("n", 101)+`","image":"i"}`), 422, "name")

	r = e.call("GET", "/v1/profiles/"+id, tok, "")
	want(t, r, 200, "")
	if got := r.json(t); !reflect.DeepEqual(got, p) {
		t.Errorf("GET %s, POST said %v", r.body, p)
	}
	r = e.call("GET", "/v1/profiles/"+id+"/env", tok, "")
	want(t, r, 200, "")
	if string(r.body) != `{"data":[]}` {
		t.Errorf("env of a profile without secrets: %s", r.body)
	}
	sec := e.mustCreate("/v1/secrets", tok, `{"name":"TOKEN","value":"s3cr3t-value"}`)
	r = e.call("GET", "/v1/profiles/"+id+"/env", tok, "")
	want(t, r, 200, "")
	var env struct {
		Data []map[string]any `json:"data"`
	}
	if err := json.Unmarshal(r.body, &env); err != nil {
		t.Fatal(err)
	}
	wantEntry := map[string]any{"name": "TOKEN", "secret_id": sec, "scope": "all", "version": 1.0}
	if len(env.Data) != 1 || !reflect.DeepEqual(env.Data[0], wantEntry) {
		t.Errorf("env: %s", r.body)
	}

	want(t, e.call("DELETE", "/v1/profiles/"+id, tok, ""), 204, "")
	want(t, e.call("GET", "/v1/profiles/"+id, tok, ""), 404, "")
	want(t, e.call("GET", "/v1/profiles/"+id+"/env", tok, ""), 404, "")
}

// TestPatchSemantics checks omitted, null and "" of every PATCH field as
// the OpenAPI document describes them.
func TestPatchSemantics(t *testing.T) {
	e := newTestEnv(t)
	_, tok := e.newUser("alice")
	p1 := e.mustCreate("/v1/profiles", tok, `{"name":"p1","image":"img"}`)
	p2 := e.mustCreate("/v1/profiles", tok, `{"name":"p2","image":"img"}`)

	type step struct {
		body   string
		status int
		field  string
		check  map[string]any // fields of the secret afterwards
	}
	secretCases := []struct {
		name   string
		create string
		steps  []step
	}{
		{"omitted leaves every field", `{"name":"A","value":"v1234","description":"d"}`, []step{
			{`{}`, 200, "", map[string]any{"name": "A", "description": "d", "scope": "all", "version": 1.0}},
		}},
		{"name", `{"name":"A","value":"v1234"}`, []step{
			{`{"name":null}`, 422, "name", map[string]any{"name": "A"}},
			{`{"name":""}`, 422, "name", map[string]any{"name": "A"}},
			{`{"name":"a"}`, 422, "name", map[string]any{"name": "A"}},
			{`{"name":"B"}`, 200, "", map[string]any{"name": "B", "version": 1.0}},
		}},
		{"value", `{"name":"A","value":"v1234"}`, []step{
			{`{"value":null}`, 422, "value", map[string]any{"version": 1.0}},
			{`{"value":""}`, 422, "value", map[string]any{"version": 1.0}},
			{`{"value":"v5678"}`, 200, "", map[string]any{"version": 2.0}},
		}},
		{"description", `{"name":"A","value":"v1234","description":"d"}`, []step{
			{`{"description":null}`, 200, "", map[string]any{"description": ""}},
			{`{"description":"e"}`, 200, "", map[string]any{"description": "e"}},
			{`{"description":""}`, 200, "", map[string]any{"description": ""}},
			{`{"description":5}`, 422, "description", map[string]any{"description": ""}},
		}},
		{"scope", `{"name":"A","value":"v1234"}`, []step{
			{`{"scope":null}`, 422, "scope", map[string]any{"scope": "all"}},
			{`{"scope":""}`, 422, "scope", map[string]any{"scope": "all"}},
			{`{"scope":"agents"}`, 422, "profile_ids", map[string]any{"scope": "all"}},
			{`{"scope":"agents","profile_ids":["` + p1 + `"]}`, 200, "", map[string]any{"scope": "agents", "profile_ids": []any{p1}}},
			{`{"scope":"agents"}`, 200, "", map[string]any{"scope": "agents", "profile_ids": []any{p1}}},
			{`{"scope":"all"}`, 200, "", map[string]any{"scope": "all", "profile_ids": []any{}}},
		}},
		{"profile_ids", `{"name":"A","value":"v1234","scope":"agents","profile_ids":["` + p1 + `"]}`, []step{
			{`{"description":"x"}`, 200, "", map[string]any{"profile_ids": []any{p1}}},
			{`{"profile_ids":["` + p2 + `","` + p1 + `"]}`, 200, "", map[string]any{"profile_ids": sorted(p1, p2)}},
			{`{"profile_ids":null}`, 422, "profile_ids", map[string]any{"profile_ids": sorted(p1, p2)}},
			{`{"profile_ids":[]}`, 422, "profile_ids", map[string]any{"profile_ids": sorted(p1, p2)}},
			{`{"profile_ids":""}`, 422, "profile_ids", map[string]any{"profile_ids": sorted(p1, p2)}},
			{`{"scope":"all","profile_ids":["` + p1 + `"]}`, 422, "profile_ids", map[string]any{"scope": "agents"}},
			{`{"scope":"all","profile_ids":null}`, 200, "", map[string]any{"scope": "all", "profile_ids": []any{}}},
			{`{"profile_ids":null}`, 200, "", map[string]any{"scope": "all", "profile_ids": []any{}}},
			{`{"profile_ids":[]}`, 200, "", map[string]any{"scope": "all", "profile_ids": []any{}}},
			{`{"profile_ids":["` + p1 + `"]}`, 422, "profile_ids", map[string]any{"scope": "all"}},
		}},
	}
	for _, tc := range secretCases {
		t.Run("secret "+tc.name, func(t *testing.T) {
			e.t = t
			r := e.call("POST", "/v1/secrets", tok, tc.create)
			want(t, r, 201, "")
			id := r.json(t)["id"].(string)
			// Each case uses its own name space: delete afterwards.
			defer func() { e.call("DELETE", "/v1/secrets/"+id, tok, "") }()
			for _, s := range tc.steps {
				before := e.call("GET", "/v1/secrets/"+id, tok, "")
				r := e.call("PATCH", "/v1/secrets/"+id, tok, s.body)
				if r.status != s.status {
					t.Fatalf("PATCH %s: got %s, want %d", s.body, r, s.status)
				}
				want(t, r, s.status, s.field)
				after := e.call("GET", "/v1/secrets/"+id, tok, "")
				got := after.json(t)
				for k, v := range s.check {
					if !reflect.DeepEqual(got[k], v) {
						t.Errorf("after PATCH %s: %s = %v, want %v", s.body, k, got[k], v)
					}
				}
				if s.status != 200 && string(before.body) != string(after.body) {
					t.Errorf("refused PATCH %s changed the secret:\n%s\n%s", s.body, before.body, after.body)
				}
				if s.body == `{}` && string(before.body) != string(after.body) {
					t.Errorf("empty PATCH changed the secret (updated_at too must stay):\n%s\n%s", before.body, after.body)
				}
			}
		})
	}
	e.t = t

	profileSteps := []step{
		{`{}`, 200, "", map[string]any{"name": "prof", "image": "img", "command": []any{"run"}}},
		{`{"name":null}`, 422, "name", map[string]any{"name": "prof"}},
		{`{"name":""}`, 422, "name", map[string]any{"name": "prof"}},
		{`{"name":"   "}`, 422, "name", map[string]any{"name": "prof"}},
		{`{"name":"p1"}`, 409, "", map[string]any{"name": "prof"}},
		{`{"name":"prof2"}`, 200, "", map[string]any{"name": "prof2"}},
		{`{"image":null}`, 422, "image", map[string]any{"image": "img"}},
		{`{"image":""}`, 422, "image", map[string]any{"image": "img"}},
		{`{"image":"img2"}`, 200, "", map[string]any{"image": "img2"}},
		{`{"command":null}`, 200, "", map[string]any{"command": []any{}, "setup_commands": []any{"s"}}},
		{`{"command":["a","b"]}`, 200, "", map[string]any{"command": []any{"a", "b"}}},
		{`{"command":[]}`, 200, "", map[string]any{"command": []any{}}},
		{`{"command":"a b"}`, 422, "command", map[string]any{"command": []any{}}},
		{`{"setup_commands":null}`, 200, "", map[string]any{"setup_commands": []any{}}},
		{`{"setup_commands":["x"]}`, 200, "", map[string]any{"setup_commands": []any{"x"}}},
		{`{"setup_commands":[]}`, 200, "", map[string]any{"setup_commands": []any{}}},
		{`{"env":{"B":"2"}}`, 200, "", map[string]any{"env": map[string]any{"B": "2"}}},
		{`{"env":null}`, 200, "", map[string]any{"env": map[string]any{}}},
		{`{"env":{"C":"3"}}`, 200, "", map[string]any{"env": map[string]any{"C": "3"}}},
		{`{"env":{}}`, 200, "", map[string]any{"env": map[string]any{}}},
		{`{"env":{"c":"3"}}`, 422, "env", map[string]any{"env": map[string]any{}}},
	}
	t.Run("profile", func(t *testing.T) {
		e.t = t
		id := e.mustCreate("/v1/profiles", tok, `{"name":"prof","image":"img","command":["run"],"setup_commands":["s"],"env":{"A":"1"}}`)
		for _, s := range profileSteps {
			before := e.call("GET", "/v1/profiles/"+id, tok, "")
			r := e.call("PATCH", "/v1/profiles/"+id, tok, s.body)
			if r.status != s.status {
				t.Fatalf("PATCH %s: got %s, want %d", s.body, r, s.status)
			}
			want(t, r, s.status, s.field)
			after := e.call("GET", "/v1/profiles/"+id, tok, "")
			got := after.json(t)
			for k, v := range s.check {
				if !reflect.DeepEqual(got[k], v) {
					t.Errorf("after PATCH %s: %s = %v, want %v", s.body, k, got[k], v)
				}
			}
			if (s.status != 200 || s.body == `{}`) && string(before.body) != string(after.body) {
				t.Errorf("PATCH %s changed the profile:\n%s\n%s", s.body, before.body, after.body)
			}
			if s.status == 200 && string(r.body) != string(after.body) {
				t.Errorf("PATCH answered %s, GET %s", r.body, after.body)
			}
		}
	})
}

func sorted(ids ...string) []any {
	if ids[0] > ids[1] {
		ids[0], ids[1] = ids[1], ids[0]
	}
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}

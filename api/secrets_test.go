package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envvault/envvault/vault"
)

func TestSecretLifecycle(t *testing.T) {
	e := newTestEnv(t)
	_, tok := e.newUser("alice")

	r := e.call("POST", "/v1/secrets", tok, `{"name":"GITHUB_TOKEN","value":"ghp_abcdef","description":"ci"}`)
	want(t, r, http.StatusCreated, "")
	sec := r.json(t)
	id := sec["id"].(string)
	if !strings.HasPrefix(id, "sec_") || sec["scope"] != "all" || sec["version"] != 1.0 || sec["description"] != "ci" {
		t.Errorf("created: %s", r.body)
	}
	if ids, ok := sec["profile_ids"].([]any); !ok || len(ids) != 0 {
		t.Errorf("profile_ids must be an empty array: %s", r.body)
	}
	if w, ok := sec["warnings"].([]any); !ok || len(w) != 0 {
		t.Errorf("warnings must be an empty array: %s", r.body)
	}
	for _, k := range []string{"created_at", "updated_at"} {
		ts, err := time.Parse(time.RFC3339Nano, sec[k].(string))
		if err != nil || ts.Location() != time.UTC || !strings.HasSuffix(sec[k].(string), "Z") {
			t.Errorf("%s %q is not RFC 3339 UTC: %v", k, sec[k], err)
		}
	}

	r = e.call("GET", "/v1/secrets/"+id, tok, "")
	want(t, r, http.StatusOK, "")
	got := r.json(t)
	if _, ok := got["warnings"]; ok {
		t.Errorf("GET has warnings: %s", r.body)
	}
	for _, k := range []string{"id", "name", "scope", "description", "version", "created_at", "updated_at"} {
		if got[k] != sec[k] {
			t.Errorf("GET %s = %v, POST said %v", k, got[k], sec[k])
		}
	}

	r = e.call("GET", "/v1/secrets", tok, "")
	want(t, r, http.StatusOK, "")
	list := r.json(t)
	if data := list["data"].([]any); len(data) != 1 || list["next_cursor"] != nil {
		t.Errorf("list: %s", r.body)
	}

	r = e.call("PATCH", "/v1/secrets/"+id, tok, `{"value":"ghp_new_value"}`)
	want(t, r, http.StatusOK, "")
	if p := r.json(t); p["version"] != 2.0 || p["name"] != "GITHUB_TOKEN" || p["description"] != "ci" {
		t.Errorf("patched value: %s", r.body)
	}

	r = e.call("DELETE", "/v1/secrets/"+id, tok, "")
	want(t, r, http.StatusNoContent, "")
	if len(r.body) != 0 {
		t.Errorf("204 with a body: %q", r.body)
	}
	want(t, e.call("GET", "/v1/secrets/"+id, tok, ""), http.StatusNotFound, "")
	want(t, e.call("DELETE", "/v1/secrets/"+id, tok, ""), http.StatusNotFound, "")
	want(t, e.call("PATCH", "/v1/secrets/"+id, tok, `{"description":"x"}`), http.StatusNotFound, "")
}

func TestSecretShortValueWarning(t *testing.T) {
	e := newTestEnv(t)
	_, tok := e.newUser("alice")
	warned := func(r *response) bool {
		t.Helper()
		w, ok := r.json(t)["warnings"].([]any)
		if !ok {
			t.Fatalf("no warnings array: %s", r.body)
		}
		return slices.Contains(w, any("value: shorter than 4 characters, so it cannot be masked in task logs"))
	}
	r := e.call("POST", "/v1/secrets", tok, `{"name":"PIN","value":"123"}`)
	want(t, r, http.StatusCreated, "")
	if !warned(r) {
		t.Errorf("3-character value saved without warning: %s", r.body)
	}
	id := r.json(t)["id"].(string)
	if r := e.call("PATCH", "/v1/secrets/"+id, tok, `{"description":"only"}`); !strings.Contains(string(r.body), `"warnings":[]`) {
		t.Errorf("a patch saving no value warns: %s", r.body)
	}
	if r := e.call("PATCH", "/v1/secrets/"+id, tok, `{"value":"12"}`); r.status != 200 || !warned(r) {
		t.Errorf("patch to a 2-character value: %s", r)
	}
	if r := e.call("PATCH", "/v1/secrets/"+id, tok, `{"value":"1234"}`); r.status != 200 || warned(r) {
		t.Errorf("patch to a 4-character value: %s", r)
	}
	if r := e.call("POST", "/v1/secrets", tok, `{"name":"LONG","value":"abcd"}`); r.status != 201 || warned(r) {
		t.Errorf("4-character value: %s", r)
	}
}

// TestSecretRules answers each rule of a secret over HTTP with its
// documented status and field.
func TestSecretRules(t *testing.T) {
	e := newTestEnv(t)
	_, tok := e.newUser("alice")
	_, otherTok := e.newUser("bob")
	p1 := e.mustCreate("/v1/profiles", tok, `{"name":"p1","image":"img"}`)
	p2 := e.mustCreate("/v1/profiles", tok, `{"name":"p2","image":"img"}`)
	bobProfile := e.mustCreate("/v1/profiles", otherTok, `{"name":"p1","image":"img"}`)
	never := vault.NewID(vault.PrefixProfile)

	tests := []struct {
		name   string
		body   string
		status int
		field  string
	}{
		{"lower-case name", `{"name":"github_token","value":"v1234"}`, 422, "name"},
		{"mixed-case name", `{"name":"Github_Token","value":"v1234"}`, 422, "name"},
		{"name starting with digit", `{"name":"1TOKEN","value":"v1234"}`, 422, "name"},
		{"name with dash", `{"name":"MY-TOKEN","value":"v1234"}`, 422, "name"},
		{"name with space", `{"name":"MY TOKEN","value":"v1234"}`, 422, "name"},
		{"name empty", `{"name":"","value":"v1234"}`, 422, "name"},
		{"name missing", `{"value":"v1234"}`, 422, "name"},
		{"name too long", `{"name":"` + strings.Repeat("A", 257) + `","value":"v1234"}`, 422, "name"},
		{"value missing", `{"name":"A"}`, 422, "value"},
		{"value empty", `{"name":"A","value":""}`, 422, "value"},
		{"value with NUL", `{"name":"A","value":"a\u0000b"}`, 422, "value"},
		{"value too long", `{"name":"A","value":"` + strings.Repeat("v", 64<<10+1) + `"}`, 422, "value"},
		{"scope unknown", `{"name":"A","value":"v1234","scope":"some"}`, 422, "scope"},
		{"scope empty", `{"name":"A","value":"v1234","scope":""}`, 422, "scope"},
		{"scope upper-case", `{"name":"A","value":"v1234","scope":"ALL"}`, 422, "scope"},
		{"agents without profile_ids", `{"name":"A","value":"v1234","scope":"agents"}`, 422, "profile_ids"},
		{"agents with empty profile_ids", `{"name":"A","value":"v1234","scope":"agents","profile_ids":[]}`, 422, "profile_ids"},
		{"agents with duplicate profile_ids", `{"name":"A","value":"v1234","scope":"agents","profile_ids":["` + p1 + `","` + p1 + `"]}`, 422, "profile_ids"},
		{"all with profile_ids", `{"name":"A","value":"v1234","scope":"all","profile_ids":["` + p1 + `"]}`, 422, "profile_ids"},
		{"default scope with profile_ids", `{"name":"A","value":"v1234","profile_ids":["` + p1 + `"]}`, 422, "profile_ids"},
		{"description too long", `{"name":"A","value":"v1234","description":"` + strings.Repeat("d", 1001) + `"}`, 422, "description"},
		{"longest name", `{"name":"` + strings.Repeat("A", 256) + `","value":"v1234"}`, 201, ""},
		{"longest value", `{"name":"LONGEST","value":"` + strings.Repeat("v", 64<<10) + `"}`, 201, ""},
		{"underscore name", `{"name":"_A_1","value":"v1234"}`, 201, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.t = t
			r := e.call("POST", "/v1/secrets", tok, tt.body)
			want(t, r, tt.status, tt.field)
			if tt.status == 422 {
				_, _, msg := r.errorOf(t)
				if !strings.HasPrefix(msg, tt.field+": ") {
					t.Errorf("message %q does not name the field %q", msg, tt.field)
				}
			}
		})
	}
	e.t = t

	t.Run("unknown and other user's profile get the same 422", func(t *testing.T) {
		e.t = t
		var bodies []string
		for _, pid := range []string{never, bobProfile} {
			r := e.call("POST", "/v1/secrets", tok, `{"name":"X","value":"v1234","scope":"agents","profile_ids":["`+p1+`","`+pid+`"]}`)
			want(t, r, 422, "profile_ids")
			bodies = append(bodies, strings.ReplaceAll(string(r.body), pid, "ID"))
		}
		if bodies[0] != bodies[1] {
			t.Errorf("unknown profile: %s\nother user's profile: %s", bodies[0], bodies[1])
		}
	})

	t.Run("conflicts name the secret they clash with", func(t *testing.T) {
		e.t = t
		all := e.mustCreate("/v1/secrets", tok, `{"name":"DB_URL","value":"postgres://a"}`)
		r := e.call("POST", "/v1/secrets", tok, `{"name":"DB_URL","value":"postgres://b"}`)
		want(t, r, 409, "name")
		if _, _, msg := r.errorOf(t); !strings.Contains(msg, all) {
			t.Errorf("409 does not name %s: %s", all, msg)
		}
		// agents overrides all: allowed.
		ag := e.mustCreate("/v1/secrets", tok, `{"name":"DB_URL","value":"postgres://c","scope":"agents","profile_ids":["`+p1+`"]}`)
		// a second agents secret granting p1 the same name: 409 naming it.
		r = e.call("POST", "/v1/secrets", tok, `{"name":"DB_URL","value":"postgres://d","scope":"agents","profile_ids":["`+p2+`","`+p1+`"]}`)
		want(t, r, 409, "profile_ids")
		if _, _, msg := r.errorOf(t); !strings.Contains(msg, ag) {
			t.Errorf("409 does not name %s: %s", ag, msg)
		}
		// granting only p2 is fine.
		ag2 := e.mustCreate("/v1/secrets", tok, `{"name":"DB_URL","value":"postgres://e","scope":"agents","profile_ids":["`+p2+`"]}`)
		// widening ag2 onto p1 by PATCH: 409 naming ag.
		r = e.call("PATCH", "/v1/secrets/"+ag2, tok, `{"profile_ids":["`+p1+`","`+p2+`"]}`)
		want(t, r, 409, "profile_ids")
		if _, _, msg := r.errorOf(t); !strings.Contains(msg, ag) {
			t.Errorf("409 does not name %s: %s", ag, msg)
		}
		// turning ag into a second `all` secret: 409 naming all.
		r = e.call("PATCH", "/v1/secrets/"+ag, tok, `{"scope":"all"}`)
		want(t, r, 409, "name")
		if _, _, msg := r.errorOf(t); !strings.Contains(msg, all) {
			t.Errorf("409 does not name %s: %s", all, msg)
		}
		// renaming onto a taken name: 409.
		other := e.mustCreate("/v1/secrets", tok, `{"name":"OTHER","value":"v1234"}`)
		want(t, e.call("PATCH", "/v1/secrets/"+other, tok, `{"name":"DB_URL"}`), 409, "name")
		// another user may hold the same name.
		e.mustCreate("/v1/secrets", otherTok, `{"name":"DB_URL","value":"postgres://f"}`)

		// The env endpoint shows the override.
		env := func(pid string) map[string]string {
			t.Helper()
			r := e.call("GET", "/v1/profiles/"+pid+"/env", tok, "")
			want(t, r, 200, "")
			var raw struct {
				Data []map[string]any `json:"data"`
			}
			if err := json.Unmarshal(r.body, &raw); err != nil {
				t.Fatal(err)
			}
			m := map[string]string{}
			for _, d := range raw.Data {
				m[d["name"].(string)] = d["secret_id"].(string)
			}
			return m
		}
		if got := env(p1)["DB_URL"]; got != ag {
			t.Errorf("p1 gets DB_URL from %s, want the agents secret %s", got, ag)
		}
		if got := env(p2)["DB_URL"]; got != ag2 {
			t.Errorf("p2 gets DB_URL from %s, want %s", got, ag2)
		}
		p3 := e.mustCreate("/v1/profiles", tok, `{"name":"p3","image":"img"}`)
		if got := env(p3)["DB_URL"]; got != all {
			t.Errorf("p3 gets DB_URL from %s, want the all secret %s", got, all)
		}
	})

	t.Run("deleting a profile never widens a scope", func(t *testing.T) {
		e.t = t
		only := e.mustCreate("/v1/profiles", tok, `{"name":"only","image":"img"}`)
		sec := e.mustCreate("/v1/secrets", tok, `{"name":"NARROW","value":"v1234","scope":"agents","profile_ids":["`+only+`"]}`)
		want(t, e.call("DELETE", "/v1/profiles/"+only, tok, ""), 204, "")
		r := e.call("GET", "/v1/secrets/"+sec, tok, "")
		want(t, r, 200, "")
		if got := r.json(t); got["scope"] != "agents" || len(got["profile_ids"].([]any)) != 0 {
			t.Errorf("after its only profile went: %s", r.body)
		}
		r = e.call("GET", "/v1/profiles/"+p1+"/env", tok, "")
		if strings.Contains(string(r.body), "NARROW") {
			t.Errorf("another profile gets the orphaned secret: %s", r.body)
		}
	})
}

// TestOtherUsersIDs checks that another user's ids answer exactly as ids
// that never existed, on every route that takes an id.
func TestOtherUsersIDs(t *testing.T) {
	e := newTestEnv(t)
	_, tok := e.newUser("alice")
	_, bobTok := e.newUser("bob")
	bobProfile := e.mustCreate("/v1/profiles", bobTok, `{"name":"bp","image":"img"}`)
	bobSecret := e.mustCreate("/v1/secrets", bobTok, `{"name":"BOB","value":"v1234","scope":"agents","profile_ids":["`+bobProfile+`"]}`)
	neverSecret := vault.NewID(vault.PrefixSecret)
	neverProfile := vault.NewID(vault.PrefixProfile)

	calls := []struct{ method, path, body string }{
		{"GET", "/v1/secrets/%s", ""},
		{"PATCH", "/v1/secrets/%s", `{"description":"mine now"}`},
		{"PATCH", "/v1/secrets/%s", `{}`},
		{"DELETE", "/v1/secrets/%s", ""},
		{"GET", "/v1/profiles/%s", ""},
		{"PATCH", "/v1/profiles/%s", `{"name":"mine"}`},
		{"PATCH", "/v1/profiles/%s", `{}`},
		{"GET", "/v1/profiles/%s/env", ""},
		{"DELETE", "/v1/profiles/%s", ""},
	}
	for _, c := range calls {
		other, never := bobSecret, neverSecret
		if strings.Contains(c.path, "profiles") {
			other, never = bobProfile, neverProfile
		}
		a := e.call(c.method, fmt.Sprintf(c.path, other), tok, c.body)
		b := e.call(c.method, fmt.Sprintf(c.path, never), tok, c.body)
		want(t, a, 404, "")
		if string(a.body) != string(b.body) || a.status != b.status {
			t.Errorf("%s %s: other user's id answers %s, a never-existing id %s", c.method, c.path, a, b)
		}
		for _, h := range []string{"Content-Type", "Content-Length"} {
			if a.header.Get(h) != b.header.Get(h) {
				t.Errorf("%s %s: header %s differs: %q vs %q", c.method, c.path, h, a.header.Get(h), b.header.Get(h))
			}
		}
	}
	// Bob's objects are untouched.
	r := e.call("GET", "/v1/secrets/"+bobSecret, bobTok, "")
	want(t, r, 200, "")
	if got := r.json(t); got["description"] != "" {
		t.Errorf("bob's secret changed: %s", r.body)
	}
	r = e.call("GET", "/v1/profiles/"+bobProfile, bobTok, "")
	want(t, r, 200, "")
	if got := r.json(t); got["name"] != "bp" {
		t.Errorf("bob's profile changed: %s", r.body)
	}
	// Bob's secrets are not in Alice's list, even by name.
	r = e.call("GET", "/v1/secrets?q=BOB", tok, "")
	if data := r.json(t)["data"].([]any); len(data) != 0 {
		t.Errorf("alice lists bob's secret: %s", r.body)
	}
}

func TestSecretLimit(t *testing.T) {
	e := newTestEnv(t, envOptions{maxSecrets: 2})
	_, tok := e.newUser("alice")
	e.mustCreate("/v1/secrets", tok, `{"name":"A","value":"v1234"}`)
	b := e.mustCreate("/v1/secrets", tok, `{"name":"B","value":"v1234"}`)
	r := e.call("POST", "/v1/secrets", tok, `{"name":"C","value":"v1234"}`)
	want(t, r, 409, "")
	if _, _, msg := r.errorOf(t); !strings.Contains(msg, "2") {
		t.Errorf("message does not say the limit: %s", msg)
	}
	want(t, e.call("DELETE", "/v1/secrets/"+b, tok, ""), 204, "")
	e.mustCreate("/v1/secrets", tok, `{"name":"C","value":"v1234"}`)
}

func TestRacingCreates(t *testing.T) {
	e := newTestEnv(t)
	_, tok := e.newUser("alice")
	const n = 8
	statuses := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			req := e.request("POST", "/v1/secrets", tok, fmt.Sprintf(`{"name":"RACE","value":"value-%d"}`, i))
			<-start
			res, err := e.srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			_ = res.Body.Close()
			statuses[i] = res.StatusCode
		})
	}
	close(start)
	wg.Wait()
	slices.Sort(statuses)
	wantStatuses := append([]int{201}, slices.Repeat([]int{409}, n-1)...)
	if !slices.Equal(statuses, wantStatuses) {
		t.Errorf("statuses %v, want one 201 and %d 409", statuses, n-1)
	}
}

func TestListPagination(t *testing.T) {
	e := newTestEnv(t)
	_, tok := e.newUser("alice")
	names := []string{"E_FIVE", "A_ONE", "C_THREE", "B_TWO", "D_FOUR"}
	for _, n := range names {
		e.mustCreate("/v1/secrets", tok, `{"name":"`+n+`","value":"v1234"}`)
		e.mustCreate("/v1/profiles", tok, `{"name":"`+strings.ToLower(n)+`","image":"img"}`)
	}
	for _, kind := range []string{"secrets", "profiles"} {
		t.Run(kind, func(t *testing.T) {
			e.t = t
			var got []string
			path := "/v1/" + kind + "?limit=2"
			pages := 0
			for {
				r := e.call("GET", path, tok, "")
				want(t, r, 200, "")
				var page struct {
					Data []struct {
						Name string `json:"name"`
					} `json:"data"`
					NextCursor *string `json:"next_cursor"`
				}
				if err := json.Unmarshal(r.body, &page); err != nil {
					t.Fatal(err)
				}
				pages++
				for _, d := range page.Data {
					got = append(got, strings.ToUpper(d.Name))
				}
				if page.NextCursor == nil {
					break
				}
				if pages > 5 {
					t.Fatal("pagination does not end")
				}
				path = "/v1/" + kind + "?limit=2&cursor=" + *page.NextCursor
			}
			sorted := slices.Sorted(slices.Values(names))
			if !slices.Equal(got, sorted) || pages != 3 {
				t.Errorf("pages %d, names %v, want 3 pages of %v", pages, got, sorted)
			}
			r := e.call("GET", "/v1/"+kind+"?q=t", tok, "")
			want(t, r, 200, "")
			if n := len(r.json(t)["data"].([]any)); n != 2 { // TWO, THREE
				t.Errorf("q=t matched %d: %s", n, r.body)
			}
			for _, q := range []string{"limit=0", "limit=201", "limit=-1", "limit=abc", "limit=1.5", "limit=", "limit=1&limit=2", "limit=99999999999999999999"} {
				r := e.call("GET", "/v1/"+kind+"?"+q, tok, "")
				want(t, r, 422, "limit")
			}
			want(t, e.call("GET", "/v1/"+kind+"?limit=200", tok, ""), 200, "")
			want(t, e.call("GET", "/v1/"+kind+"?cursor=not-a-cursor!", tok, ""), 422, "cursor")
			want(t, e.call("GET", "/v1/"+kind+"?cursor=a&cursor=b", tok, ""), 422, "cursor")
			want(t, e.call("GET", "/v1/"+kind+"?q="+strings.Repeat("Q", 257), tok, ""), 422, "q")
			want(t, e.call("GET", "/v1/"+kind+"?q=%00", tok, ""), 422, "q")
		})
	}
}

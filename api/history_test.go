package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/envvault/envvault/vault"
)

// versionsOf gets the versions of a secret and returns their numbers, the
// entries, and checks that only the first is current.
func (e *testEnv) versionsOf(token, id string) ([]int, []map[string]any) {
	e.t.Helper()
	r := e.call("GET", "/v1/secrets/"+id+"/versions", token, "")
	want(e.t, r, http.StatusOK, "")
	data, ok := r.json(e.t)["data"].([]any)
	if !ok {
		e.t.Fatalf("no data array: %s", r.body)
	}
	var nums []int
	var entries []map[string]any
	for i, d := range data {
		m := d.(map[string]any)
		nums = append(nums, int(m["version"].(float64)))
		entries = append(entries, m)
		if m["current"] != (i == 0) {
			e.t.Errorf("entry %d: current %v: %s", i, m["current"], r.body)
		}
	}
	return nums, entries
}

func (e *testEnv) mustEnv(userID, profileID string) map[string]string {
	e.t.Helper()
	env, err := e.svc.GetDecryptedForProfile(context.Background(), userID, profileID)
	if err != nil {
		e.t.Fatalf("env of profile %s: %v", profileID, err)
	}
	return env
}

func TestSecretHistory(t *testing.T) {
	e := newTestEnv(t)
	uid, tok := e.newUser("alice")
	pid := e.mustCreate("/v1/profiles", tok, `{"name":"p","image":"img"}`)
	r := e.call("POST", "/v1/secrets", tok, `{"name":"API_KEY","value":"value-one"}`)
	want(t, r, http.StatusCreated, "")
	created := r.json(t)
	sid := created["id"].(string)

	nums, entries := e.versionsOf(tok, sid)
	if !slices.Equal(nums, []int{1}) || entries[0]["created_at"] != created["created_at"] || entries[0]["actor_token_id"] != nil {
		t.Errorf("versions of a new secret: %v %v", nums, entries)
	}

	saved := map[int]map[string]any{}
	for _, value := range []string{"value-two", "value-three"} {
		r := e.call("PATCH", "/v1/secrets/"+sid, tok, `{"value":"`+value+`"}`)
		want(t, r, http.StatusOK, "")
		m := r.json(t)
		saved[int(m["version"].(float64))] = m
	}
	nums, entries = e.versionsOf(tok, sid)
	if !slices.Equal(nums, []int{3, 2, 1}) {
		t.Fatalf("versions after two changes: %v", nums)
	}
	for i, v := range []int{3, 2} {
		if entries[i]["created_at"] != saved[v]["updated_at"] {
			t.Errorf("version %d created_at %v, its PATCH answered updated_at %v", v, entries[i]["created_at"], saved[v]["updated_at"])
		}
	}
	if entries[2]["created_at"] != created["created_at"] {
		t.Errorf("version 1 created_at %v, the secret was created at %v", entries[2]["created_at"], created["created_at"])
	}
	// Each value names the token that saved it; the first, none.
	tokID, _, _ := strings.Cut(tok, ".")
	for i, want := range []any{tokID, tokID, nil} {
		if entries[i]["actor_token_id"] != want {
			t.Errorf("version %d actor_token_id %v, want %v", nums[i], entries[i]["actor_token_id"], want)
		}
	}
	// A description change or a rename keeps no version.
	want(t, e.call("PATCH", "/v1/secrets/"+sid, tok, `{"description":"d"}`), http.StatusOK, "")
	want(t, e.call("PATCH", "/v1/secrets/"+sid, tok, `{"name":"RENAMED"}`), http.StatusOK, "")
	if nums, _ := e.versionsOf(tok, sid); !slices.Equal(nums, []int{3, 2, 1}) {
		t.Errorf("versions after a rename: %v", nums)
	}
	if env := e.mustEnv(uid, pid); env["RENAMED"] != "value-three" {
		t.Errorf("env before rollback: RENAMED=%q", env["RENAMED"])
	}

	// Version 1, kept under the old name, comes back under the new one;
	// another token of the same user rolls back.
	tok2, err := e.svc.CreateToken(context.Background(), uid)
	if err != nil {
		t.Fatal(err)
	}
	tok2ID, _, _ := strings.Cut(tok2, ".")
	r = e.call("POST", "/v1/secrets/"+sid+"/rollback", tok2, `{"version":1}`)
	want(t, r, http.StatusOK, "")
	back := r.json(t)
	if back["version"] != 4.0 || back["name"] != "RENAMED" || back["description"] != "d" || back["id"] != sid {
		t.Errorf("rollback answered %s", r.body)
	}
	if _, ok := back["warnings"]; ok {
		t.Errorf("rollback answered warnings: %s", r.body)
	}
	if env := e.mustEnv(uid, pid); len(env) != 1 || env["RENAMED"] != "value-one" {
		t.Errorf("env after rollback to 1: %v", env)
	}
	got := e.call("GET", "/v1/secrets/"+sid, tok, "").json(t)
	for _, k := range []string{"version", "name", "updated_at"} {
		if got[k] != back[k] {
			t.Errorf("GET %s = %v, rollback said %v", k, got[k], back[k])
		}
	}
	nums, entries = e.versionsOf(tok, sid)
	if !slices.Equal(nums, []int{4, 3, 2, 1}) || entries[0]["created_at"] != back["updated_at"] {
		t.Errorf("versions after rollback: %v, current created_at %v, rollback updated_at %v", nums, entries[0]["created_at"], back["updated_at"])
	}
	if entries[0]["actor_token_id"] != tok2ID || entries[1]["actor_token_id"] != tokID {
		t.Errorf("after rollback: actor_token_id %v, %v; want %s, %s", entries[0]["actor_token_id"], entries[1]["actor_token_id"], tok2ID, tokID)
	}
	r = e.call("POST", "/v1/secrets/"+sid+"/rollback", tok, `{"version":3}`)
	want(t, r, http.StatusOK, "")
	if env := e.mustEnv(uid, pid); env["RENAMED"] != "value-three" {
		t.Errorf("env after rollback to 3: RENAMED=%q", env["RENAMED"])
	}

	// Deleting the secret deletes its history.
	want(t, e.call("DELETE", "/v1/secrets/"+sid, tok, ""), http.StatusNoContent, "")
	want(t, e.call("GET", "/v1/secrets/"+sid+"/versions", tok, ""), http.StatusNotFound, "")
	want(t, e.call("POST", "/v1/secrets/"+sid+"/rollback", tok, `{"version":1}`), http.StatusNotFound, "")
	var rows int
	if err := e.store.View(context.Background(), uid, func(tx vault.Tx) error {
		vs, err := tx.SecretVersions(context.Background(), sid)
		rows = len(vs)
		return err
	}); err != nil || rows != 0 {
		t.Errorf("%d versions outlive their secret, %v", rows, err)
	}
}

// TestSecretHistoryErrors answers each refusal of the history routes with
// its documented status and field, and changes nothing.
func TestSecretHistoryErrors(t *testing.T) {
	e := newTestEnv(t, envOptions{bodyLimit: 1024})
	uid, tok := e.newUser("alice")
	_, bobTok := e.newUser("bob")
	pid := e.mustCreate("/v1/profiles", tok, `{"name":"p","image":"img"}`)
	sid := e.mustCreate("/v1/secrets", tok, `{"name":"API_KEY","value":"value-one"}`)
	want(t, e.call("PATCH", "/v1/secrets/"+sid, tok, `{"value":"value-two"}`), http.StatusOK, "")
	before := string(e.call("GET", "/v1/secrets/"+sid, tok, "").body)
	rollback := "/v1/secrets/" + sid + "/rollback"

	for _, c := range []struct {
		body   string
		status int
		field  string
	}{
		{`{"version":2}`, 422, "version"},  // the current one
		{`{"version":3}`, 422, "version"},  // not yet
		{`{"version":99}`, 422, "version"}, // never
		{`{"version":0}`, 422, "version"},
		{`{"version":-1}`, 422, "version"},
		{`{}`, 422, "version"},
		{`{"version":null}`, 422, "version"},
		{`{"version":"1"}`, 422, "version"},
		{`{"version":1.5}`, 422, "version"},
		{`{"version":1e0}`, 422, "version"},
		{`{"version":99999999999999999999}`, 422, "version"},
		{`{"version":[1]}`, 422, "version"},
		{`{"VERSION":1}`, 422, "VERSION"},
		{`{"version":1,"value":"x"}`, 422, "value"},
		{`{"version":1,"version":1}`, 400, "version"},
		{`{"version":`, 400, ""},
		{`[{"version":1}]`, 400, ""},
		{`{"version":1} 1`, 400, ""},
	} {
		r := e.call("POST", rollback, tok, c.body)
		want(t, r, c.status, c.field)
		if c.status == 422 {
			if _, _, msg := r.errorOf(t); !strings.HasPrefix(msg, c.field+": ") {
				t.Errorf("%s: message %q does not name the field %q", c.body, msg, c.field)
			}
		}
	}
	req := e.request("POST", rollback, tok, `{"version":1}`)
	req.Header.Set("Content-Type", "text/plain")
	want(t, e.send(req), http.StatusUnsupportedMediaType, "")
	want(t, e.call("POST", rollback, tok, `{"version":1,"x":"`+strings.Repeat("x", 2000)+`"}`), http.StatusRequestEntityTooLarge, "")
	want(t, e.call("POST", rollback, "", `{"version":1}`), http.StatusUnauthorized, "")
	want(t, e.call("GET", "/v1/secrets/"+sid+"/versions", "", ""), http.StatusUnauthorized, "")
	want(t, e.call("PUT", rollback, tok, `{"version":1}`), http.StatusMethodNotAllowed, "")
	want(t, e.call("POST", "/v1/secrets/"+sid+"/versions", tok, `{"version":1}`), http.StatusMethodNotAllowed, "")

	// Another user's secret answers as one that never existed.
	never := vault.NewID(vault.PrefixSecret)
	for _, c := range []struct{ method, suffix, body string }{{"GET", "/versions", ""}, {"POST", "/rollback", `{"version":1}`}} {
		var bodies []string
		for _, id := range []string{sid, never} {
			r := e.call(c.method, "/v1/secrets/"+id+c.suffix, bobTok, c.body)
			want(t, r, http.StatusNotFound, "")
			bodies = append(bodies, string(r.body))
		}
		if bodies[0] != bodies[1] {
			t.Errorf("%s %s: another user's secret %s, an unknown one %s", c.method, c.suffix, bodies[0], bodies[1])
		}
	}

	if after := string(e.call("GET", "/v1/secrets/"+sid, tok, "").body); after != before {
		t.Errorf("refused rollbacks changed the secret:\n%s\n%s", before, after)
	}
	if nums, _ := e.versionsOf(tok, sid); !slices.Equal(nums, []int{2, 1}) {
		t.Errorf("refused rollbacks changed the versions: %v", nums)
	}
	if env := e.mustEnv(uid, pid); env["API_KEY"] != "value-two" {
		t.Errorf("refused rollbacks changed the value: %q", env["API_KEY"])
	}
}

// TestSecretHistoryKeepsTen: the list is capped at the current value and
// the last ten before it.
func TestSecretHistoryKeepsTen(t *testing.T) {
	e := newTestEnv(t)
	_, tok := e.newUser("alice")
	sid := e.mustCreate("/v1/secrets", tok, `{"name":"API_KEY","value":"value-1"}`)
	for v := 2; v <= 14; v++ {
		want(t, e.call("PATCH", "/v1/secrets/"+sid, tok, fmt.Sprintf(`{"value":"value-%d"}`, v)), http.StatusOK, "")
	}
	nums, _ := e.versionsOf(tok, sid)
	if !slices.Equal(nums, []int{14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4}) {
		t.Errorf("versions: %v", nums)
	}
	want(t, e.call("POST", "/v1/secrets/"+sid+"/rollback", tok, `{"version":3}`), http.StatusUnprocessableEntity, "version")
	want(t, e.call("POST", "/v1/secrets/"+sid+"/rollback", tok, `{"version":4}`), http.StatusOK, "")
}

// TestSecretHistoryCanary plants values and rolls them back and forth: no
// response, log line or byte of the database files holds one.
func TestSecretHistoryCanary(t *testing.T) {
	const canary = "CANARY-5d1e-history"
	e := newTestEnv(t)
	uid, tok := e.newUser("alice")
	_, bobTok := e.newUser("bob")
	pid := e.mustCreate("/v1/profiles", tok, `{"name":"p","image":"img"}`)
	sid := e.mustCreate("/v1/secrets", tok, `{"name":"API_KEY","value":"`+canary+`-1"}`)
	want(t, e.call("PATCH", "/v1/secrets/"+sid, tok, `{"value":"`+canary+`-2"}`), http.StatusOK, "")
	want(t, e.call("PATCH", "/v1/secrets/"+sid, tok, `{"name":"OTHER_NAME","value":"`+canary+`-3"}`), http.StatusOK, "")
	want(t, e.call("POST", "/v1/secrets/"+sid+"/rollback", tok, `{"version":1}`), http.StatusOK, "")
	want(t, e.call("POST", "/v1/secrets/"+sid+"/rollback", tok, `{"version":4}`), http.StatusUnprocessableEntity, "version")
	want(t, e.call("POST", "/v1/secrets/"+sid+"/rollback", tok, `{"version":"`+canary+`"}`), http.StatusUnprocessableEntity, "version")
	want(t, e.call("POST", "/v1/secrets/"+sid+"/rollback", bobTok, `{"version":2}`), http.StatusNotFound, "")
	e.versionsOf(tok, sid)
	e.versionsOf(tok, sid)
	want(t, e.call("GET", "/v1/secrets/"+sid+"/versions", bobTok, ""), http.StatusNotFound, "")
	if env := e.mustEnv(uid, pid); env["OTHER_NAME"] != canary+"-1" {
		t.Errorf("env after rollback: %q", strings.ReplaceAll(env["OTHER_NAME"], canary, "<CANARY>"))
	}
	e.finish()

	e.mu.Lock()
	transcript := e.transcript.String()
	e.mu.Unlock()
	if !strings.Contains(transcript, `"current":true`) {
		t.Fatal("the transcript does not hold the versions")
	}
	if !strings.Contains(e.logs.String(), `"msg":"request"`) {
		t.Fatal("the log is empty")
	}
	texts := dbFiles(t, e.dbPath, sid, "OTHER_NAME")
	texts["transcript"], texts["log"] = transcript, e.logs.String()
	for where, text := range texts {
		if strings.Contains(text, canary) {
			t.Errorf("the %s holds a value", where)
		}
	}
}

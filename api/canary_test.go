package api

import (
	"strings"
	"testing"
)

// TestCanaryValueNeverShown plants secret values through POST and PATCH,
// and through requests that are refused, then drives every endpoint,
// errors included. No response body or header, no log line and no byte of
// the database files may hold a value.
func TestCanaryValueNeverShown(t *testing.T) {
	const (
		canary     = "CANARY-7f3a9c1e-created"
		canary2    = "CANARY-7f3a9c1e-patched"
		refused    = "CANARY-7f3a9c1e-refused"
		shortValue = "Zq9" // short values warn; the warning must not quote it
	)
	e := newTestEnv(t, envOptions{bodyLimit: 4096})
	_, tok := e.newUser("alice")
	_, bobTok := e.newUser("bob")
	pid := e.mustCreate("/v1/profiles", tok, `{"name":"p","image":"img"}`)

	sid := e.mustCreate("/v1/secrets", tok, `{"name":"API_KEY","value":"`+canary+`","description":"key"}`)
	ag := e.mustCreate("/v1/secrets", tok, `{"name":"API_KEY","value":"`+canary+`","scope":"agents","profile_ids":["`+pid+`"]}`)
	short := e.mustCreate("/v1/secrets", tok, `{"name":"PIN","value":"`+shortValue+`"}`)
	want(t, e.call("PATCH", "/v1/secrets/"+sid, tok, `{"value":"`+canary2+`"}`), 200, "")
	want(t, e.call("PATCH", "/v1/secrets/"+ag, tok, `{"value":"`+canary2+`","name":"API_KEY2"}`), 200, "")

	// Refused requests carrying a value: each error must not echo it.
	for _, c := range []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/v1/secrets", `{"name":"api_key","value":"` + refused + `"}`, 422},
		{"POST", "/v1/secrets", `{"name":"API_KEY","value":"` + refused + `"}`, 409},
		{"POST", "/v1/secrets", `{"name":"X","value":"` + refused + `","bogus":1}`, 422},
		{"POST", "/v1/secrets", `{"name":"X","value":"` + refused + `","value":"` + refused + `"}`, 400},
		{"POST", "/v1/secrets", `{"name":"X","value":"` + refused + `"`, 400},
		{"POST", "/v1/secrets", `{"name":"X","value":"` + refused + `"} "` + refused + `"`, 400},
		{"POST", "/v1/secrets", `{"name":"X","value":` + refused + `}`, 400},
		{"POST", "/v1/secrets", `{"name":"X","value":"` + refused + "\x00" + `"}`, 400},
		{"POST", "/v1/secrets", `{"name":"X","value":"` + refused + `\u0000"}`, 422},
		{"POST", "/v1/secrets", `{"name":"X","value":["` + refused + `"]}`, 422},
		{"POST", "/v1/secrets", `{"name":"X","value":"` + refused + `","scope":"agents","profile_ids":["nope"]}`, 422},
		{"POST", "/v1/secrets", `{"name":"X","value":"` + refused + strings.Repeat("x", 5000) + `"}`, 413},
		{"PATCH", "/v1/secrets/" + sid, `{"value":"` + refused + `","scope":"bogus"}`, 422},
		{"PATCH", "/v1/secrets/" + sid, `{"value":"` + refused + `","name":"API_KEY2","scope":"agents","profile_ids":["` + pid + `"]}`, 409},
		{"PATCH", "/v1/secrets/" + sid, `{"VALUE":"` + refused + `"}`, 422},
		{"PATCH", "/v1/secrets/" + sid, `{"value":"` + refused + `"}`, 401},
		{"PATCH", "/v1/secrets/sec_doesnotexist", `{"value":"` + refused + `"}`, 404},
		{"POST", "/v1/profiles", `{"name":"q","image":"img","env":{"A":"` + refused + `","b":"x"}}`, 422},
	} {
		token := tok
		if c.status == 401 {
			token = "tok_bad.bad"
		}
		r := e.call(c.method, c.path, token, c.body)
		if r.status != c.status {
			t.Errorf("%s %s %s: got %s, want %d", c.method, c.path, c.body, r, c.status)
		}
	}

	// Drive every read.
	for _, path := range []string{
		"/v1/secrets", "/v1/secrets?limit=1", "/v1/secrets?q=API", "/v1/secrets/" + sid, "/v1/secrets/" + ag, "/v1/secrets/" + short,
		"/v1/profiles", "/v1/profiles/" + pid, "/v1/profiles/" + pid + "/env", "/healthz", "/readyz",
	} {
		e.call("GET", path, tok, "")
		e.call("GET", path, bobTok, "")
	}
	want(t, e.call("DELETE", "/v1/secrets/"+ag, tok, ""), 204, "")
	e.finish()

	e.mu.Lock()
	transcript := e.transcript.String()
	e.mu.Unlock()
	if !strings.Contains(transcript, "API_KEY") || !strings.Contains(transcript, sid) {
		t.Fatal("the transcript does not hold the responses")
	}
	logs := e.logs.String()
	if !strings.Contains(logs, `"msg":"request"`) {
		t.Fatal("the log is empty")
	}
	files := dbFiles(t, e.dbPath, sid, pid, "API_KEY2")
	for _, v := range []string{canary, canary2, refused, "7f3a9c1e", `"value"`} {
		if v == `"value"` {
			// No response has a value field at all.
			if strings.Contains(transcript, v+":") {
				t.Errorf("a response has a value field")
			}
			continue
		}
		if strings.Contains(transcript, v) {
			i := strings.Index(transcript, v)
			t.Errorf("a response holds %q: …%s…", v, transcript[max(0, i-300):min(len(transcript), i+100)])
		}
		if strings.Contains(logs, v) {
			t.Errorf("the log holds %q", v)
		}
		for name, f := range files {
			if strings.Contains(f, v) {
				t.Errorf("database file %s holds %q in plaintext", name, v)
			}
		}
	}
	if strings.Contains(transcript, `"`+shortValue+`"`) || strings.Contains(logs, shortValue) {
		t.Error("the short value is shown")
	}
}

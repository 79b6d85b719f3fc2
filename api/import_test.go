package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestImportSecrets: POST /v1/secrets/import imports a dotenv file's
// lines all or nothing; a refusal names every bad line (never a value) in
// the message and in lines, and changes nothing.
func TestImportSecrets(t *testing.T) {
	const canaryValue = "CANARY-import-5b1d0e"
	e := newTestEnv(t, envOptions{maxSecrets: 4, bodyLimit: 4096})
	_, tok := e.newUser("alice")
	pid := e.mustCreate("/v1/profiles", tok, `{"name":"coder","image":"img"}`)
	body := func(content, extra string) string {
		b, _ := json.Marshal(content)
		return `{"content":` + string(b) + extra + `}`
	}
	list := func() string {
		t.Helper()
		r := e.call("GET", "/v1/secrets", tok, "")
		want(t, r, http.StatusOK, "")
		return string(r.body)
	}

	r := e.call("POST", "/v1/secrets/import", tok, body("# app\nexport API_KEY='"+canaryValue+"'\nREGION=eu-west-1 # inline\n", ""))
	want(t, r, http.StatusOK, "")
	if got := string(r.body); got != `{"created":2,"updated":0,"unchanged":0}` {
		t.Fatalf("first import: %s", got)
	}
	r = e.call("POST", "/v1/secrets/import", tok, body("API_KEY="+canaryValue+"\nREGION=eu-central-1\n", ""))
	want(t, r, http.StatusOK, "")
	if got := string(r.body); got != `{"created":0,"updated":1,"unchanged":1}` {
		t.Fatalf("second import: %s", got)
	}
	r = e.call("POST", "/v1/secrets/import", tok, body("API_KEY="+canaryValue+"-agents\n", `,"scope":"agents","profile_ids":["`+pid+`"]`))
	want(t, r, http.StatusOK, "")
	before := list()

	// Bad lines: every one named, nothing imported.
	r = e.call("POST", "/v1/secrets/import", tok, body("NEW_ONE="+canaryValue+"\nnot a line\nLD_PRELOAD=/tmp/x.so\nEMPTY=\nNEW_ONE=again\n", ""))
	want(t, r, http.StatusUnprocessableEntity, "content")
	var refusal struct {
		Error struct {
			Code, Message, Field string
			Lines                []struct {
				Line    int
				Message string
			}
		}
	}
	if err := json.Unmarshal(r.body, &refusal); err != nil {
		t.Fatal(err)
	}
	var lines []int
	for _, l := range refusal.Error.Lines {
		lines = append(lines, l.Line)
	}
	if refusal.Error.Code != "invalid" || !strings.HasPrefix(refusal.Error.Message, "content: 4 bad lines, nothing imported: line 2: ") ||
		len(lines) != 4 || lines[0] != 2 || lines[1] != 3 || lines[2] != 4 || lines[3] != 5 {
		t.Fatalf("refusal: %s", r.body)
	}
	if after := list(); after != before {
		t.Fatalf("a refused import changed the secrets:\n%s\n%s", before, after)
	}

	// Field errors, and the quota (4 secrets: 2 + 1 held, 2 more is one too many).
	want(t, e.call("POST", "/v1/secrets/import", tok, `{"scope":"all"}`), http.StatusUnprocessableEntity, "content")
	want(t, e.call("POST", "/v1/secrets/import", tok, body("A=1234", `,"scope":"some"`)), http.StatusUnprocessableEntity, "scope")
	want(t, e.call("POST", "/v1/secrets/import", tok, body("A=1234", `,"scope":"agents"`)), http.StatusUnprocessableEntity, "profile_ids")
	want(t, e.call("POST", "/v1/secrets/import", tok, body("A=1234", `,"extra":1`)), http.StatusUnprocessableEntity, "extra")
	want(t, e.call("POST", "/v1/secrets/import", tok, body("ONE_MORE=1234\nTWO_MORE=1234\n", "")), http.StatusConflict, "")
	want(t, e.call("POST", "/v1/secrets/import", tok, `{"content":`), http.StatusBadRequest, "")
	want(t, e.call("POST", "/v1/secrets/import", tok, body(strings.Repeat("#", 5000), "")), http.StatusRequestEntityTooLarge, "")
	req := e.request("POST", "/v1/secrets/import", tok, body("A=1234", ""))
	req.Header.Set("Content-Type", "text/plain")
	want(t, e.send(req), http.StatusUnsupportedMediaType, "")
	want(t, e.call("POST", "/v1/secrets/import", "", body("A=1234", "")), http.StatusUnauthorized, "")
	if after := list(); after != before {
		t.Fatalf("a refused import changed the secrets:\n%s\n%s", before, after)
	}
	// Presence before absence: the transcript holds the answers above.
	e.mu.Lock()
	transcript := e.transcript.String()
	e.mu.Unlock()
	if !strings.Contains(transcript, "API_KEY") || !strings.Contains(transcript, "nothing imported") {
		t.Fatalf("the transcript lacks the answers it should hold:\n%s", transcript)
	}
	if strings.Contains(transcript, canaryValue) {
		t.Fatal("a response holds an imported value")
	}
}

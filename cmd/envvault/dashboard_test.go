package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// The binary serves the dashboard at / beside the API, as a new user of
// `envvault dev` meets it: open the printed URL, sign in with the printed
// token. (The dashboard itself is tested in package web.)
func TestDashboardMounted(t *testing.T) {
	dev := mustStart(t, map[string]string{}, "dev", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir())
	banner := dev.stdout.String()
	if !strings.Contains(banner, "Dashboard: open "+dev.url()+"/") {
		t.Errorf("the dev banner does not point to the dashboard:\n%s", banner)
	}
	m := regexp.MustCompile(`export ENVVAULT_TOKEN=(\S+)`).FindStringSubmatch(banner)
	if m == nil {
		t.Fatalf("dev printed no token:\n%s", banner)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Jar: jar}
	get := func(path string) (*http.Response, string) {
		t.Helper()
		res, err := hc.Get(dev.url() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}

	res, body := get("/")
	if res.StatusCode != http.StatusOK || res.Request.URL.Path != "/login" || !strings.Contains(body, `name="token"`) {
		t.Fatalf("GET / (signed out) ended at %s with %d:\n%s", res.Request.URL.Path, res.StatusCode, body)
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Fatalf("dashboard CSP %q", csp)
	}
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if csrf == nil {
		t.Fatal("no CSRF field on the sign-in page")
	}
	res, err = hc.PostForm(dev.url()+"/login", url.Values{"csrf": {csrf[1]}, "token": {m[1]}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Request.URL.Path != "/settings/secrets" || !strings.Contains(string(b), "Add secret") {
		t.Fatalf("sign-in ended at %s with %d:\n%s", res.Request.URL.Path, res.StatusCode, b)
	}
	if res, body := get("/tasks"); res.StatusCode != http.StatusOK || !strings.Contains(body, "Start a task") {
		t.Fatalf("GET /tasks: %d", res.StatusCode)
	}

	// The API keeps its routes and its JSON errors.
	if res, body := get("/v1/secrets"); res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"code":"unauthorized"`) {
		t.Fatalf("GET /v1/secrets without a token: %d %s", res.StatusCode, body)
	}
	if res, _ := get("/v1/openapi.json"); res.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/openapi.json: %d", res.StatusCode)
	}
	if res, _ := get("/healthz"); res.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz: %d", res.StatusCode)
	}
	if strings.Contains(dev.stderr.String(), m[1]) {
		t.Fatal("the token is in the server log")
	}
}

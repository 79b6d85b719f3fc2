package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode"

	"github.com/envvault/envvault/api"
	"github.com/envvault/envvault/client"
	"github.com/envvault/envvault/internal/testvault"
	"github.com/envvault/envvault/vault"
)

// TestGeneratedIsCurrent regenerates api.gen.go from api/openapi.json into
// a temporary directory with the committed settings and fails when the
// committed file differs: run `go generate ./client` after editing the
// document.
func TestGeneratedIsCurrent(t *testing.T) {
	cfg, err := os.ReadFile("oapi-codegen.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "api.gen.go")
	tmpCfg := filepath.Join(t.TempDir(), "oapi-codegen.yaml")
	if !bytes.Contains(cfg, []byte("output: api.gen.go\n")) {
		t.Fatalf("oapi-codegen.yaml has no line \"output: api.gen.go\":\n%s", cfg)
	}
	cfg = bytes.Replace(cfg, []byte("output: api.gen.go\n"), []byte("output: "+out+"\n"), 1)
	if err := os.WriteFile(tmpCfg, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), "go", "tool", "oapi-codegen", "-config", tmpCfg, "../api/openapi.json")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("oapi-codegen: %v\n%s", err, msg)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("api.gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if len(want) < 1000 {
		t.Fatalf("oapi-codegen wrote only %d bytes", len(want))
	}
	if !bytes.Equal(got, want) {
		t.Fatal("client/api.gen.go is stale: api/openapi.json changed since it was generated; run go generate ./client")
	}
}

// TestEveryOperationHasAMethod checks that Client has a method named after
// each operationId of the document the server serves.
func TestEveryOperationHasAMethod(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	typ := reflect.TypeFor[*client.Client]()
	n := 0
	for path, ops := range doc.Paths {
		for method, raw := range ops {
			var op struct {
				OperationID string `json:"operationId"`
			}
			if method == "parameters" || json.Unmarshal(raw, &op) != nil || op.OperationID == "" {
				continue
			}
			n++
			name := string(unicode.ToUpper(rune(op.OperationID[0]))) + op.OperationID[1:]
			if _, ok := typ.MethodByName(name); !ok {
				t.Errorf("%s %s (operationId %s): client.Client has no method %s", strings.ToUpper(method), path, op.OperationID, name)
			}
		}
	}
	if n < 20 {
		t.Fatalf("found only %d operations in the document", n)
	}
}

// TestRoundTrip drives the client against a real API server over HTTP:
// each secret and profile operation, the documented errors as *APIError,
// and pagination.
func TestRoundTrip(t *testing.T) {
	db := testvault.MustSQLite(t, filepath.Join(t.TempDir(), "envvault.db"))
	svc := testvault.MustService(t, db, vault.Options{})
	_, token, err := svc.CreateUser(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(api.NewServer(api.Config{Service: svc, Logger: quiet}).Handler())
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL, token, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	if err := c.Healthz(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := c.CreateProfile(ctx, client.CreateProfile{Name: "coder", Image: "busybox"})
	if err != nil {
		t.Fatal(err)
	}
	value := "CANARY-client-0b7e"
	scope := client.CreateSecretScopeAgents
	s, err := c.CreateSecret(ctx, client.CreateSecret{Name: "GITHUB_TOKEN", Value: &value, Scope: &scope, ProfileIds: &[]string{p.Id}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Scope != client.ScopeAgents || len(s.ProfileIds) != 1 || s.Version != 1 {
		t.Fatalf("created %+v", s)
	}
	v2 := value + "-2"
	if s, err = c.UpdateSecret(ctx, s.Id, client.UpdateSecret{Value: &v2}); err != nil || s.Version != 2 {
		t.Fatalf("update: %+v, %v", s, err)
	}
	versions, err := c.ListSecretVersions(ctx, s.Id)
	if err != nil || len(versions) != 2 || !versions[0].Current {
		t.Fatalf("versions: %+v, %v", versions, err)
	}
	if r, err := c.RollbackSecret(ctx, s.Id, 1); err != nil || r.Version != 3 {
		t.Fatalf("rollback: %+v, %v", r, err)
	}
	env, err := c.GetProfileEnv(ctx, p.Id)
	if err != nil || len(env) != 1 || env[0].Name != "GITHUB_TOKEN" {
		t.Fatalf("env: %+v, %v", env, err)
	}

	// Errors: the status and the API's code and field.
	_, err = c.CreateSecret(ctx, client.CreateSecret{Name: "lower", Value: &value})
	wantAPIError(t, err, http.StatusUnprocessableEntity, "invalid", "name")
	_, err = c.CreateProfile(ctx, client.CreateProfile{Name: "coder", Image: "busybox"})
	wantAPIError(t, err, http.StatusConflict, "conflict", "name")
	_, err = c.GetSecret(ctx, "sec_missing")
	wantAPIError(t, err, http.StatusNotFound, "not_found", "")
	if !client.IsNotFound(err) {
		t.Errorf("IsNotFound(%v) = false", err)
	}
	_, err = c.CreateTask(ctx, client.CreateTask{ProfileId: p.Id})
	wantAPIError(t, err, http.StatusServiceUnavailable, "unavailable", "")
	bad, err := client.New(srv.URL, "tok_wrong", client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.ListSecrets(ctx, nil)
	wantAPIError(t, err, http.StatusUnauthorized, "unauthorized", "")

	// Pages: All walks them.
	for _, name := range []string{"A_ONE", "A_TWO", "A_THREE"} {
		if _, err := c.CreateSecret(ctx, client.CreateSecret{Name: name, Value: &value}); err != nil {
			t.Fatal(err)
		}
	}
	limit := 1
	all, err := client.All(ctx, func(ctx context.Context, cursor string) (client.Page[client.Secret], error) {
		return c.ListSecrets(ctx, &client.ListSecretsParams{Limit: &limit, Cursor: &cursor})
	})
	if err != nil || len(all) != 4 {
		t.Fatalf("All: %d secrets, %v", len(all), err)
	}
	if err := c.DeleteSecret(ctx, s.Id); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteProfile(ctx, p.Id); err != nil {
		t.Fatal(err)
	}
	wantAPIError(t, c.DeleteProfile(ctx, p.Id), http.StatusNotFound, "not_found", "")
}

func wantAPIError(t *testing.T, err error, status int, code, field string) {
	t.Helper()
	var e *client.APIError
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want an *APIError with status %d", err, err, status)
	}
	if e.Status != status || e.Code != code || e.Field != field || e.Message == "" || e.RequestID == "" {
		t.Fatalf("error %+v, want status %d code %s field %q with a message and request id", e, status, code, field)
	}
	if strings.Contains(e.Error(), "CANARY") {
		t.Fatalf("error holds the value: %v", e)
	}
}

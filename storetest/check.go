package storetest

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envvault/envvault/vault"
)

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// envString shows an env with values cut to what follows the canary, so a
// failing test prints which value it got and never the canary itself.
func envString(env map[string]string) string {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString("{")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(k + "=" + strings.TrimPrefix(env[k], canary+":"))
	}
	b.WriteString("}")
	return b.String()
}

// wantErr checks that err is a vault error of the code and, if field is
// not "", that it concerns field and its message names it. Every error
// checked here must also be free of the canary.
func wantErr(t *testing.T, err error, code, field string) {
	t.Helper()
	if err == nil {
		t.Errorf("got no error, want %s (field %q)", code, field)
		return
	}
	noCanary(t, err)
	if got := vault.ErrorCode(err); got != code {
		t.Errorf("got code %s, want %s: %v", got, code, err)
	}
	if field == "" {
		return
	}
	if got := vault.ErrorField(err); got != field {
		t.Errorf("got field %q, want %q: %v", got, field, err)
	}
	if msg := vault.ErrorMessage(err); !strings.Contains(msg, field) {
		t.Errorf("message %q does not name the field %q", msg, field)
	}
}

// noCanary fails if err's text holds a secret value.
func noCanary(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), canary) {
		t.Errorf("error text holds a secret value: %q", strings.ReplaceAll(err.Error(), canary, "<CANARY>"))
	}
}

// checkSealed fails if a stored secret holds its value in the clear.
func checkSealed(t *testing.T, s *vault.Secret) {
	t.Helper()
	if bytes.Contains(s.SealedValue, []byte(canary)) || bytes.Contains(s.SealedKey, []byte(canary)) {
		t.Errorf("secret %s holds its value unsealed", s.ID)
	}
}

// wantTime checks that a time read back is exactly the one written, in UTC.
func wantTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("%s: got %s (%s), want %s in UTC", what, got.Format(time.RFC3339Nano), got.Location(), want.Format(time.RFC3339Nano))
	}
	if got.Nanosecond()%1000 != 0 {
		t.Errorf("%s: %s is not whole microseconds", what, got.Format(time.RFC3339Nano))
	}
}

// sameSecret checks that got is want as stored, field by field. A nil and
// an empty ProfileIDs are the same.
func sameSecret(t *testing.T, got, want *vault.Secret) {
	t.Helper()
	if got == nil || want == nil {
		t.Fatalf("sameSecret: got %v, want %v", got, want)
	}
	checkSealed(t, got)
	type row struct {
		ID, UserID, Name, Scope, Description, MasterKeyID string
		Version                                           int
		ProfileIDs                                        string
	}
	mk := func(s *vault.Secret) row {
		return row{s.ID, s.UserID, s.Name, string(s.Scope), s.Description, s.MasterKeyID, s.Version, strings.Join(s.ProfileIDs, ",")}
	}
	if g, w := mk(got), mk(want); g != w {
		t.Errorf("secret %s:\n got %+v\nwant %+v", want.ID, g, w)
	}
	if !bytes.Equal(got.SealedValue, want.SealedValue) {
		t.Errorf("secret %s: sealed value differs from the one written", want.ID)
	}
	if !bytes.Equal(got.SealedKey, want.SealedKey) {
		t.Errorf("secret %s: sealed key differs from the one written", want.ID)
	}
	wantTime(t, "secret "+want.ID+" created_at", got.CreatedAt, want.CreatedAt)
	wantTime(t, "secret "+want.ID+" updated_at", got.UpdatedAt, want.UpdatedAt)
}

// sameProfile checks that got is want as stored, field by field.
func sameProfile(t *testing.T, got, want *vault.Profile) {
	t.Helper()
	if got == nil || want == nil {
		t.Fatalf("sameProfile: got %v, want %v", got, want)
	}
	if got.ID != want.ID || got.UserID != want.UserID || got.Name != want.Name || got.Image != want.Image {
		t.Errorf("profile %s: got id=%s user=%s name=%q image=%q, want id=%s user=%s name=%q image=%q",
			want.ID, got.ID, got.UserID, got.Name, got.Image, want.ID, want.UserID, want.Name, want.Image)
	}
	if !slices.Equal(got.Command, want.Command) || (got.Command == nil) != (want.Command == nil) {
		t.Errorf("profile %s: command %#v, want %#v", want.ID, got.Command, want.Command)
	}
	if !slices.Equal(got.SetupCommands, want.SetupCommands) || (got.SetupCommands == nil) != (want.SetupCommands == nil) {
		t.Errorf("profile %s: setup_commands %#v, want %#v", want.ID, got.SetupCommands, want.SetupCommands)
	}
	if !mapsEqual(got.Env, want.Env) || (got.Env == nil) != (want.Env == nil) {
		t.Errorf("profile %s: env %#v, want %#v", want.ID, got.Env, want.Env)
	}
	if !slices.Equal(got.RequiredSecrets, want.RequiredSecrets) || (got.RequiredSecrets == nil) != (want.RequiredSecrets == nil) {
		t.Errorf("profile %s: required_secrets %#v, want %#v", want.ID, got.RequiredSecrets, want.RequiredSecrets)
	}
	if got.OnSecretChange != want.OnSecretChange {
		t.Errorf("profile %s: on_secret_change %q, want %q", want.ID, got.OnSecretChange, want.OnSecretChange)
	}
	wantTime(t, "profile "+want.ID+" created_at", got.CreatedAt, want.CreatedAt)
	wantTime(t, "profile "+want.ID+" updated_at", got.UpdatedAt, want.UpdatedAt)
}

func ids[T any](items []T, id func(T) string) []string {
	out := make([]string, len(items))
	for i, x := range items {
		out[i] = id(x)
	}
	return out
}

func secretIDs(list []*vault.Secret) []string {
	return ids(list, func(s *vault.Secret) string { return s.ID })
}

func profileIDs(list []*vault.Profile) []string {
	return ids(list, func(p *vault.Profile) string { return p.ID })
}

func ptr[T any](v T) *T { return &v }

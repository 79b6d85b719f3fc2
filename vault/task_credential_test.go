package vault_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/envvault/envvault/internal/testvault"
	"github.com/envvault/envvault/vault"
)

// TestTaskCredential: a credential proves exactly the task, user and
// attempt it was made for, under the master key that made it, until its
// expiry, and only while live says its attempt runs; every change of a
// byte, another key, a past expiry or an ended attempt is refused with the
// one task-credential message and a reason for the metrics.
func TestTaskCredential(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	svc := testvault.MustService(t, testvault.MustSQLite(t, filepath.Join(dir, "a.db")), vault.Options{AuthLimits: vault.AuthLimits{Off: true}})
	other := testvault.MustService(t, testvault.MustSQLite(t, filepath.Join(dir, "b.db")), vault.Options{AuthLimits: vault.AuthLimits{Off: true}})
	task, user := vault.NewID(vault.PrefixTask), vault.NewID(vault.PrefixUser)
	at := time.Now()
	c := vault.TaskCredential{TaskID: task, UserID: user, Attempt: 3, Expires: vault.TaskCredentialExpiry(at, time.Hour)}
	token := svc.IssueTaskCredential(c)
	if token != svc.IssueTaskCredential(c) || !strings.HasPrefix(token, vault.PrefixTaskCredential+task+".3."+user+".") {
		t.Fatalf("credential %q is not the documented form, or not the same twice", token)
	}
	if c.ID() != vault.PrefixTaskCredential+task+".3" {
		t.Errorf("id %q", c.ID())
	}
	var asked []vault.TaskCredential
	live := func(_ context.Context, c vault.TaskCredential) error { asked = append(asked, c); return nil }
	got, err := svc.AuthenticateTaskCredential(ctx, token, live)
	if err != nil || got.TaskID != task || got.UserID != user || got.Attempt != 3 || !got.Expires.Equal(c.Expires) || len(asked) != 1 {
		t.Fatalf("authenticate: %+v, %v (live asked %d times)", got, err, len(asked))
	}
	if d := time.Until(got.Expires); d > time.Hour || d < 58*time.Minute {
		t.Errorf("expires in %v, want about an hour", d)
	}
	if e := vault.TaskCredentialExpiry(at, 0); !e.Equal(at.Add(vault.DefaultTaskCredentialTTL).UTC().Truncate(time.Second)) {
		t.Errorf("default expiry %v", e)
	}
	if e := vault.TaskCredentialExpiry(at, 1000*time.Hour); !e.Equal(at.Add(vault.MaxTaskCredentialTTL).UTC().Truncate(time.Second)) {
		t.Errorf("bounded expiry %v", e)
	}

	refused := map[string]string{
		"another key":      other.IssueTaskCredential(c),
		"another task":     strings.Replace(token, task, vault.NewID(vault.PrefixTask), 1),
		"another user":     strings.Replace(token, user, vault.NewID(vault.PrefixUser), 1),
		"another attempt":  strings.Replace(token, ".3.", ".4.", 1),
		"leading zero":     strings.Replace(token, ".3.", ".03.", 1),
		"later expiry":     withField(token, 3, fmt.Sprint(c.Expires.Unix()+3600)),
		"expired":          svc.IssueTaskCredential(vault.TaskCredential{TaskID: task, UserID: user, Attempt: 3, Expires: time.Now().Add(-time.Second)}),
		"truncated MAC":    token[:len(token)-4],
		"no MAC":           token[:strings.LastIndex(token, ".")],
		"an API token":     "tok_" + strings.TrimPrefix(token, vault.PrefixTaskCredential),
		"empty":            vault.PrefixTaskCredential,
		"attempt 0":        svc.IssueTaskCredential(vault.TaskCredential{TaskID: task, UserID: user, Attempt: 0, Expires: c.Expires}),
		"not an id":        svc.IssueTaskCredential(vault.TaskCredential{TaskID: "tsk_short", UserID: user, Attempt: 1, Expires: c.Expires}),
		"extra field":      token + ".x",
		"MAC in std b64 ":  token[:strings.LastIndex(token, ".")+1] + "+/+/",
		"space in the MAC": token[:len(token)-1] + " ",
	}
	for name, bad := range refused {
		asked = nil
		_, err := svc.AuthenticateTaskCredential(ctx, bad, live)
		var ae *vault.AuthError
		if vault.ErrorCode(err) != vault.EUNAUTHORIZED || !errors.As(err, &ae) || ae.Reason == "" ||
			!strings.Contains(err.Error(), "invalid task credential") || strings.Contains(err.Error(), task) {
			t.Errorf("%s: %v", name, err)
		}
		if len(asked) != 0 {
			t.Errorf("%s: live was asked about a credential that proves nothing", name)
		}
	}
	// An attempt that no longer runs; live's other errors pass through.
	_, err = svc.AuthenticateTaskCredential(ctx, token, func(context.Context, vault.TaskCredential) error { return vault.ErrTaskEnded })
	if vault.AuthFailureReason(err) != vault.ReasonExpired || !strings.Contains(err.Error(), "no longer running") {
		t.Errorf("ended: %v", err)
	}
	boom := errors.New("store down")
	if _, err := svc.AuthenticateTaskCredential(ctx, token, func(context.Context, vault.TaskCredential) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("live's error: %v", err)
	}
}

// withField replaces the i-th dot-separated field of a credential.
func withField(token string, i int, v string) string {
	parts := strings.Split(token, ".")
	parts[i] = v
	return strings.Join(parts, ".")
}

// TestCheckAsk: the rules of what a task asks for, each refusal naming its
// field.
func TestCheckAsk(t *testing.T) {
	names := func(n ...string) []vault.RequiredSecret {
		out := make([]vault.RequiredSecret, len(n))
		for i, s := range n {
			out[i] = vault.RequiredSecret{Name: s}
		}
		return out
	}
	many := make([]string, vault.MaxAskNames)
	for i := range many {
		many[i] = "N" + strings.Repeat("X", i)
	}
	for _, c := range []struct {
		names []vault.RequiredSecret
		msg   string
		field string
	}{
		{names("A"), "", ""},
		{names(many...), strings.Repeat("é", vault.MaxAskMessageLen/2), ""},
		{names("A"), "two\nlines\tand a tab", ""},
		{nil, "", "names"},
		{names(append(many, "ONE_MORE")...), "", "names"},
		{names("a"), "", "names"},
		{names("A", "A"), "", "names"},
		{[]vault.RequiredSecret{{Name: "A", Description: strings.Repeat("d", 1001)}}, "", "names"},
		{names("A"), strings.Repeat("m", vault.MaxAskMessageLen+1), "message"},
		{names("A"), "nul\x00", "message"},
		{names("A"), "esc\x1b[31m", "message"},
		{names("A"), "bad \xff utf-8", "message"},
	} {
		err := vault.CheckAsk(c.names, c.msg)
		if c.field == "" && err != nil || c.field != "" && (vault.ErrorCode(err) != vault.EINVALID || vault.ErrorField(err) != c.field) {
			t.Errorf("%d names, message of %d bytes: %v, want field %q", len(c.names), len(c.msg), err, c.field)
		}
	}
}

package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/envvault/envvault/vault"
)

// TestProfileRequiredSecretsForm: the profile form's textarea of
// "NAME — description" lines becomes the profile's required secrets, is
// shown back the same way, is cleared when emptied, and a bad name is
// refused on the field without changing the profile.
func TestProfileRequiredSecretsForm(t *testing.T) {
	s := newStack(t)
	c := s.client(t)
	c.signIn()
	csrf := c.csrf("/profiles/new")
	form := url.Values{"csrf": {csrf}, "name": {"needs"}, "image": {"busybox"},
		"required_secrets": {"OPENAI_API_KEY — the team’s key\r\n\r\nGITHUB_TOKEN\r\nDB_URL: postgres URL <admin>\r\nSLACK - a bot token"}}
	res := c.post("/profiles", form)
	wantStatus(t, res, http.StatusSeeOther)
	id := strings.TrimSuffix(strings.TrimPrefix(res.Header.Get("Location"), "/profiles/"), "?ok=profile-added")
	p, err := s.svc.Profile(context.Background(), s.userID, id)
	if err != nil {
		t.Fatal(err)
	}
	want := []vault.RequiredSecret{{Name: "OPENAI_API_KEY", Description: "the team’s key"}, {Name: "GITHUB_TOKEN"},
		{Name: "DB_URL", Description: "postgres URL <admin>"}, {Name: "SLACK", Description: "a bot token"}}
	if fmt.Sprint(p.RequiredSecrets) != fmt.Sprint(want) {
		t.Fatalf("stored %v, want %v", p.RequiredSecrets, want)
	}
	wantContains(t, c.get("/profiles/"+id).Body,
		"OPENAI_API_KEY — the team’s key\nGITHUB_TOKEN\nDB_URL — postgres URL &lt;admin&gt;\nSLACK — a bot token\n</textarea>")
	if _, err := s.svc.CreateSecret(context.Background(), s.userID, vault.SecretInput{Name: "GITHUB_TOKEN", Value: "required-canary-1"}); err != nil {
		t.Fatal(err)
	}
	page := c.get("/profiles/" + id).Body
	wantContains(t, page, `id="missing-secrets" role="status">Required but without a value yet: <code>OPENAI_API_KEY</code>, <code>DB_URL</code>, <code>SLACK</code>.`)
	if strings.Contains(page, "required-canary-1") {
		t.Error("the profile page holds a value")
	}

	edit := url.Values{"csrf": {csrf}, "name": {"needs"}, "image": {"busybox"}, "required_secrets": {"lower — bad"}}
	res = c.post("/profiles/"+id, edit)
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, res.Body, `id="profile-required-secrets-error" aria-live="polite">entry 0: name: must use only upper-case letters`)
	if got, _ := s.svc.Profile(context.Background(), s.userID, id); fmt.Sprint(got.RequiredSecrets) != fmt.Sprint(want) {
		t.Errorf("a refused save changed them: %v", got.RequiredSecrets)
	}

	edit.Set("required_secrets", "  \r\n")
	wantStatus(t, c.post("/profiles/"+id, edit), http.StatusSeeOther)
	if got, _ := s.svc.Profile(context.Background(), s.userID, id); len(got.RequiredSecrets) != 0 {
		t.Errorf("an emptied textarea left %v", got.RequiredSecrets)
	}
	wantNotContains := !strings.Contains(c.get("/profiles/"+id).Body, `id="missing-secrets"`)
	if !wantNotContains {
		t.Error("a profile requiring nothing shows missing names")
	}

	// on_secret_change: kept, shown, refused naming the field.
	edit.Set("on_secret_change", "restart")
	wantStatus(t, c.post("/profiles/"+id, edit), http.StatusSeeOther)
	if got, _ := s.svc.Profile(context.Background(), s.userID, id); got.OnSecretChange != vault.OnSecretChangeRestart {
		t.Errorf("on_secret_change stored %q", got.OnSecretChange)
	}
	wantContains(t, c.get("/profiles/"+id).Body, `<option value="restart" selected>`)
	edit.Set("on_secret_change", "reboot")
	res = c.post("/profiles/"+id, edit)
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, res.Body, `id="profile-on-secret-change-error" aria-live="polite">must be`)
}

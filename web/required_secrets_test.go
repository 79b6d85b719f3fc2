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
}

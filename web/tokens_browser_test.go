package web_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/envvault/envvault/vault"
)

// TestBrowserTokens: in Chromium, create a read token on the API tokens
// page (its secret on that one page and no other the tab received), then
// revoke this session's own token, confirming that it is the last full
// one: the session ends.
func TestBrowserTokens(t *testing.T) {
	s := newStack(t)
	b := newBrowser(t, s)
	b.signIn()
	b.do(chromedp.Click(chromedp.CSS(`nav a[href="/settings/tokens"]`)), chromedp.WaitVisible(chromedp.ID("token-form")),
		chromedp.SendKeys(chromedp.ID("token-name"), "ci deploy"),
		chromedp.Click(chromedp.ID("token-scope-read")),
		chromedp.Click(chromedp.ID("create-token")),
		chromedp.WaitVisible(chromedp.ID("new-token")))
	token := b.text("#new-token")
	cred, err := s.svc.AuthenticateToken(context.Background(), token)
	if err != nil || cred.Scope != vault.TokenRead {
		t.Fatalf("the token the page showed: %+v, %v", cred, err)
	}
	secret := strings.SplitN(token, ".", 2)[1]

	own := strings.SplitN(s.token, ".", 2)[0]
	b.do(chromedp.Navigate(s.URL+"/settings/tokens"), chromedp.WaitVisible(chromedp.ID("revoke-"+own)),
		chromedp.Click(chromedp.ID("revoke-"+own)),
		chromedp.WaitVisible(chromedp.ID("confirm-revoke-button")))
	if msg := b.text("#token-error"); !strings.Contains(msg, "last full token") {
		t.Fatalf("the confirmation page says %q", msg)
	}
	b.do(chromedp.Click(chromedp.ID("confirm-revoke-button")), chromedp.WaitVisible(chromedp.ID("token")))
	if loc := b.location(); loc != s.URL+"/login" {
		t.Fatalf("after revoking the session's own token: %s, want the sign-in page", loc)
	}
	if _, err := s.svc.AuthenticateToken(context.Background(), s.token); vault.ErrorCode(err) != vault.EUNAUTHORIZED {
		t.Fatalf("the revoked token: %v", err)
	}
	// The secret was on the page that answered the form, and on no other.
	holding := 0
	for _, d := range b.documents() {
		if strings.Contains(d.body, secret) {
			holding++
			if d.method != "POST" || !strings.HasSuffix(d.url, "/settings/tokens") {
				t.Errorf("%s %s holds the new token's secret", d.method, d.url)
			}
		}
	}
	if holding != 1 {
		t.Fatalf("%d documents hold the new token's secret, want the one answering the form", holding)
	}
}

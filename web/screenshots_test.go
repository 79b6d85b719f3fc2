package web_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/envvault/envvault/vault"
)

// TestDocsScreenshots writes the README's screenshots of the dashboard,
// docs/screenshots/*.png, full-page, from a stack holding the examples
// the README describes: go test ./web -run TestDocsScreenshots -update-docs.
// Without -update-docs it skips, so that a test run never changes the
// repository.
func TestDocsScreenshots(t *testing.T) {
	if !*updateDocs {
		t.Skip("writes docs/screenshots only with -update-docs")
	}
	dir := filepath.Join("..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := newStack(t)
	ctx := context.Background()
	builder, reviewer := s.mustProfile(t, "builder"), s.mustProfile(t, "reviewer")
	mk := func(in vault.SecretInput) *vault.Secret {
		t.Helper()
		sec, err := s.svc.CreateSecret(ctx, s.userID, in)
		if err != nil {
			t.Fatal(err)
		}
		return sec
	}
	gh := mk(vault.SecretInput{Name: "GITHUB_TOKEN", Value: "ghp_example_one", Description: "Org-wide GitHub PAT"})
	// The second value saved with the stack's token, as the dashboard or
	// the API would: the version panel names it.
	tokenID, _, _ := strings.Cut(s.token, ".")
	byToken := vault.WithActor(ctx, vault.Actor{UserID: s.userID, TokenID: tokenID})
	if _, err := s.svc.UpdateSecret(byToken, s.userID, gh.ID, vault.SecretPatch{Value: ptr("ghp_example_two")}); err != nil {
		t.Fatal(err)
	}
	over := mk(vault.SecretInput{Name: "GITHUB_TOKEN", Value: "ghp_example_builder", Scope: vault.ScopeAgents, ProfileIDs: []string{builder.ID},
		Description: "Fine-grained token for the builder"})
	mk(vault.SecretInput{Name: "STRIPE_WEBHOOK_SECRET", Value: "whsec_example", Scope: vault.ScopeAgents, ProfileIDs: []string{builder.ID, reviewer.ID},
		Description: "Signs Stripe webhooks"})
	mk(vault.SecretInput{Name: "OPENAI_API_KEY", Value: "sk-example", Description: "Model access"})
	if _, err := s.orch.CreateTask(ctx, s.userID, builder.ID, "Fix the failing test in payments/refund_test.go and open a pull request"); err != nil {
		t.Fatal(err)
	}
	failed, err := s.orch.CreateTask(ctx, s.userID, reviewer.ID, "Review the open pull requests of the payments service")
	if err != nil {
		t.Fatal(err)
	}
	finish(t, s, failed.ID, "failed", "the container exited with code 1")

	b := newBrowser(t, s)
	b.do(chromedp.EmulateViewport(1280, 800))
	b.signIn()
	shot := func(name string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		b.do(steps...)
		png := run(b, chromedp.FullScreenshot(100))
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
	}
	shot("secrets.png", chromedp.Navigate(s.URL+"/settings/secrets?ok=secret-saved&secret="+over.ID), chromedp.WaitVisible(chromedp.ID("secrets")))
	// The dialog's backdrop covers the viewport: make it the page's height.
	shot("add-secret.png", chromedp.EmulateViewport(1280, 1120), chromedp.Click(chromedp.ID("add-secret")), chromedp.WaitVisible(chromedp.ID("add-secret-dialog")),
		chromedp.SendKeys(chromedp.ID("secret-name"), "DEPLOY_KEY"),
		chromedp.SendKeys(chromedp.ID("secret-value"), "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\nexample-only\n-----END OPENSSH PRIVATE KEY-----"),
		chromedp.SendKeys(chromedp.ID("secret-description"), "Deploy key of the release job"),
		chromedp.Click(chromedp.ID("scope-agents")), chromedp.Click(chromedp.ID("profile-"+builder.ID)))
	shot("import.png", chromedp.EmulateViewport(1280, 800), chromedp.Navigate(s.URL+"/settings/secrets/import"), chromedp.WaitVisible(chromedp.ID("import-env")),
		chromedp.SendKeys(chromedp.ID("import-env"), "# release job\nSENTRY_DSN=https://example.invalid/1\nnpm_token=example\nSLACK_WEBHOOK\n"),
		chromedp.Click(chromedp.ID("import-submit")), chromedp.WaitVisible(chromedp.ID("error-summary")))
	shot("versions.png", chromedp.Navigate(s.URL+"/settings/secrets/"+gh.ID+"/edit"), chromedp.WaitVisible(chromedp.ID("version-list")))
	shot("delete-override.png", chromedp.Navigate(s.URL+"/settings/secrets/"+over.ID+"/delete"), chromedp.WaitVisible(chromedp.ID("confirm-delete")))
	shot("tasks.png", chromedp.Navigate(s.URL+"/tasks"), chromedp.WaitVisible(chromedp.ID("tasks")))
	// Last, so that the shots above show no request: a task waiting for
	// two names, its form on top of the Secrets page, one value typed.
	_, req := s.waitingTask(t, reviewer.ID, "LINEAR_API_KEY=Read access to the team's issues", "SENTRY_DSN=Where the reviewer reports errors")
	prefix := "request-" + req.ID + "-"
	shot("secret-request.png", chromedp.EmulateViewport(1280, 900), chromedp.Navigate(s.URL+"/settings/secrets"), chromedp.WaitVisible(chromedp.ID(prefix+"form")),
		chromedp.SendKeys(chromedp.ID(prefix+"value-LINEAR_API_KEY"), "lin_api_example_only"),
		chromedp.Click(chromedp.ID(prefix+"all-SENTRY_DSN")))
}

package web

import (
	"net/http"
	"time"

	"github.com/envvault/envvault/vault"
)

// The API tokens page (Settings → API tokens): the user's tokens, a form
// to make one (its secret shown once, on the page that answers the form,
// never again), and a revoke button per token; revoking the last full
// token asks for confirmation first, as the API does.

// tokensPage is the tokens page's data.
type tokensPage struct {
	Tokens  []*vault.Token
	Current string // the id of the token this session was opened with
	CSRF    string
	Scopes  []vault.TokenScope
	// Created is the token just made, and Secret the whole token, shown
	// this once.
	Created *vault.Token
	Secret  string
	// Error is why the form was refused, Field the field it names.
	Error, Field string
	// Name, Scope and Expires are the refused form's values.
	Name, Scope, Expires string
	// Confirm is the token whose revocation needs confirmation: it is the
	// user's last full one.
	Confirm *vault.Token
}

// tokenExpiresLayout is the expiry field's format (an <input type=date>),
// taken as the end of that day in UTC.
const tokenExpiresLayout = "2006-01-02"

func (s *server) tokensList(w http.ResponseWriter, r *http.Request, u *user) error {
	return s.renderTokens(w, r, u, http.StatusOK, tokensPage{})
}

// renderTokens renders the tokens page with data, the user's tokens read
// afresh.
func (s *server) renderTokens(w http.ResponseWriter, r *http.Request, u *user, status int, data tokensPage) error {
	list, err := s.vault.Tokens(r.Context(), u.ID)
	if err != nil {
		return err
	}
	data.Tokens, data.Current, data.CSRF, data.Scopes = list, u.Session.TokenID, u.CSRF, vault.TokenScopes
	if data.Scope == "" {
		data.Scope = string(vault.TokenRead)
	}
	s.render(w, r, status, "tokens", view{Title: "API tokens", Nav: "tokens", User: u, Flash: flash(r), Data: data})
	return nil
}

// tokenCreate makes a token and shows its secret on the page it answers
// with: no redirect, so the secret is in this one response only (which,
// as every page, is Cache-Control: no-store).
func (s *server) tokenCreate(w http.ResponseWriter, r *http.Request, u *user) error {
	f := r.PostForm
	data := tokensPage{Name: f.Get("name"), Scope: f.Get("scope"), Expires: f.Get("expires")}
	spec := vault.TokenSpec{Name: data.Name, Scope: vault.TokenScope(data.Scope)}
	if data.Expires != "" {
		day, err := time.Parse(tokenExpiresLayout, data.Expires)
		if err != nil {
			data.Error, data.Field = "expires_at: must be a date, such as 2031-07-09", "expires_at"
			return s.renderTokens(w, r, u, http.StatusUnprocessableEntity, data)
		}
		spec.ExpiresAt = day.AddDate(0, 0, 1) // the end of that day, UTC
	}
	t, token, err := s.vault.IssueToken(r.Context(), u.ID, spec)
	switch vault.ErrorCode(err) {
	case "":
		return s.renderTokens(w, r, u, http.StatusCreated, tokensPage{Created: t, Secret: token})
	case vault.EINVALID, vault.ECONFLICT:
		data.Error, data.Field = vault.ErrorMessage(err), vault.ErrorField(err)
		return s.renderTokens(w, r, u, statusOfForm(err), data)
	}
	return err
}

// statusOfForm is the status of a page answering a refused form.
func statusOfForm(err error) int {
	if vault.ErrorCode(err) == vault.ECONFLICT {
		return http.StatusConflict
	}
	return http.StatusUnprocessableEntity
}

// tokenRevoke revokes a token; the user's last full one only once the
// form confirms it (the page asks, with a second form).
func (s *server) tokenRevoke(w http.ResponseWriter, r *http.Request, u *user) error {
	id := r.PathValue("id")
	confirm := ""
	if r.PostForm.Get("confirm") == vault.ConfirmLastFullToken {
		confirm = vault.ConfirmLastFullToken
	}
	err := s.vault.RevokeToken(r.Context(), u.ID, id, confirm)
	if vault.ErrorCode(err) == vault.ECONFLICT {
		list, lerr := s.vault.Tokens(r.Context(), u.ID)
		if lerr != nil {
			return lerr
		}
		data := tokensPage{Error: vault.ErrorMessage(err), Field: "confirm"}
		for _, t := range list {
			if t.ID == id {
				data.Confirm = t
			}
		}
		return s.renderTokens(w, r, u, http.StatusConflict, data)
	} else if err != nil {
		return err
	}
	// Revoking this session's own token ended the session too: the next
	// page asks to sign in again.
	http.Redirect(w, r, "/settings/tokens?ok=token-revoked", http.StatusSeeOther)
	return nil
}

package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/envvault/envvault/vault"
)

// pageSize is how many rows a list page shows.
const pageSize = 50

// profileOption is a profile as a picker shows it.
type profileOption struct {
	ID   string
	Name string
}

// allProfiles lists every profile of the user, by name.
func (s *server) allProfiles(ctx context.Context, userID string) ([]profileOption, error) {
	var out []profileOption
	cursor := ""
	for {
		p, err := s.vault.Profiles(ctx, userID, vault.ListOptions{Cursor: cursor, Limit: vault.MaxPageLimit})
		if err != nil {
			return nil, err
		}
		for _, x := range p.Items {
			out = append(out, profileOption{ID: x.ID, Name: x.Name})
		}
		if p.NextCursor == "" {
			return out, nil
		}
		cursor = p.NextCursor
	}
}

func profileNames(list []profileOption) map[string]string {
	m := make(map[string]string, len(list))
	for _, p := range list {
		m[p.ID] = p.Name
	}
	return m
}

// secretRow is a secret as the table shows it: never its value, which
// the page does not even hold sealed.
type secretRow struct {
	*vault.Secret
	Profiles []string // names of the granted profiles
}

// secretsPage is the Secrets page's data.
type secretsPage struct {
	Secrets []secretRow
	Query   string
	Next    string // URL of the next page, "" on the last
	Form    *secretForm
}

// secretForm is the Add and Edit form: what the user gave, except the
// value, which is never rendered back.
type secretForm struct {
	CSRF        string
	Edit        bool
	ID          string
	Name        string
	Description string
	Scope       vault.Scope
	Selected    map[string]bool
	Profiles    []profileOption
	Errors      map[string]string // by field: name, value, description, scope
	FormError   string            // an error that concerns no one field
	// ValueDropped says a value was typed but, the form being refused, not
	// rendered back: the user must type it again.
	ValueDropped bool
}

func (f *secretForm) Action() string {
	if f.Edit {
		return "/settings/secrets/" + f.ID
	}
	return "/settings/secrets"
}

func (s *server) secretsList(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx := r.Context()
	q := r.URL.Query()
	page, err := s.vault.Secrets(ctx, u.ID, vault.ListOptions{Query: q.Get("q"), Cursor: q.Get("cursor"), Limit: pageSize})
	if err != nil {
		return err
	}
	profiles, err := s.allProfiles(ctx, u.ID)
	if err != nil {
		return err
	}
	names := profileNames(profiles)
	data := secretsPage{Query: q.Get("q"), Form: &secretForm{CSRF: u.CSRF, Scope: vault.ScopeAll, Profiles: profiles}}
	for _, sec := range page.Items {
		row := secretRow{Secret: sec}
		for _, id := range sec.ProfileIDs {
			row.Profiles = append(row.Profiles, names[id])
		}
		data.Secrets = append(data.Secrets, row)
	}
	if page.NextCursor != "" {
		v := url.Values{"cursor": {page.NextCursor}}
		if data.Query != "" {
			v.Set("q", data.Query)
		}
		data.Next = "/settings/secrets?" + v.Encode()
	}
	s.render(w, r, http.StatusOK, "secrets", view{Title: "Secrets", Nav: "secrets", User: u, Flash: flash(r), Data: data})
	return nil
}

func (s *server) secretNew(w http.ResponseWriter, r *http.Request, u *user) error {
	profiles, err := s.allProfiles(r.Context(), u.ID)
	if err != nil {
		return err
	}
	f := &secretForm{CSRF: u.CSRF, Scope: vault.ScopeAll, Profiles: profiles}
	s.renderSecretForm(w, r, u, http.StatusOK, f)
	return nil
}

func (s *server) renderSecretForm(w http.ResponseWriter, r *http.Request, u *user, status int, f *secretForm) {
	title := "Add a secret"
	if f.Edit {
		title = "Edit " + f.Name
	}
	s.render(w, r, status, "secret_form", view{Title: title, Nav: "secrets", User: u, Data: f})
}

// readSecretForm reads the Add/Edit form. With scope "all" the profile
// checklist is ignored (it is kept for the re-rendered form), as the
// picker shows.
func readSecretForm(r *http.Request) (f *secretForm, value string, ids []string) {
	pf := r.PostForm
	f = &secretForm{
		Name:        pf.Get("name"), // as typed: the rule is checked, never fixed up
		Description: pf.Get("description"),
		Scope:       vault.Scope(pf.Get("scope")),
		Selected:    map[string]bool{},
		Errors:      map[string]string{},
	}
	if f.Scope == "" {
		f.Scope = vault.ScopeAll
	}
	for _, id := range pf["profile_ids"] {
		f.Selected[id] = true
	}
	if f.Scope == vault.ScopeAgents {
		ids = pf["profile_ids"]
	}
	return f, pf.Get("value"), ids
}

// fieldOf maps a vault error's field to the form field it is shown next to.
func fieldOf(field string) string {
	switch field {
	case "profile_ids", "scope":
		return "scope"
	case "name", "value", "description":
		return field
	}
	return ""
}

// addError puts err, a vault error the user can act on, next to its field
// (without the "field: " prefix the message starts with), or at the top
// of the form. It returns false for any other error.
func addError(errs map[string]string, formErr *string, err error, fieldOf func(string) string) bool {
	var ve *vault.Error
	if !errors.As(err, &ve) || (ve.Code != vault.EINVALID && ve.Code != vault.ECONFLICT && ve.Code != vault.ELIMIT) {
		return false
	}
	msg := strings.TrimPrefix(ve.Message, ve.Field+": ")
	if f := fieldOf(ve.Field); f != "" {
		errs[f] = msg
	} else {
		*formErr = msg
	}
	return true
}

// refuseStatus is the status of a refused form: 409 for a conflict, 429
// for a full queue, 422 for a broken rule.
func refuseStatus(err error) int {
	switch vault.ErrorCode(err) {
	case vault.ECONFLICT:
		return http.StatusConflict
	case vault.ELIMIT:
		return http.StatusTooManyRequests
	}
	return http.StatusUnprocessableEntity
}

// refuseSecretForm shows the secret form f again, with the status of err
// and the errors addError put on f; a value the user typed is never sent
// back, only said to be dropped.
func (s *server) refuseSecretForm(w http.ResponseWriter, r *http.Request, u *user, f *secretForm, value string, err error) error {
	f.ValueDropped = value != ""
	status := refuseStatus(err)
	if f.Profiles, err = s.allProfiles(r.Context(), u.ID); err != nil {
		return err
	}
	s.renderSecretForm(w, r, u, status, f)
	return nil
}

// secretAndProfiles returns the user's secret id and all the user's
// profiles to choose from (ENOTFOUND if there is no such secret).
func (s *server) secretAndProfiles(ctx context.Context, userID, id string) (*vault.Secret, []profileOption, error) {
	sec, err := s.vault.Secret(ctx, userID, id)
	if err != nil {
		return nil, nil, err
	}
	profiles, err := s.allProfiles(ctx, userID)
	if err != nil {
		return nil, nil, err
	}
	return sec, profiles, nil
}

func (s *server) secretCreate(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx := r.Context()
	f, value, ids := readSecretForm(r)
	f.CSRF = u.CSRF
	// The name and value rules are checked here first, with vault's own
	// validators, so that both show at once; the service checks every
	// rule again.
	err := vault.ValidateName("name", f.Name)
	addError(f.Errors, &f.FormError, err, fieldOf)
	if err := vault.ValidateValue("value", value); err != nil {
		addError(f.Errors, &f.FormError, err, fieldOf)
	}
	if len(f.Errors) == 0 {
		_, err = s.vault.CreateSecret(ctx, u.ID, vault.SecretInput{
			Name: f.Name, Value: value, Scope: f.Scope, ProfileIDs: ids, Description: f.Description,
		})
		if err == nil {
			http.Redirect(w, r, "/settings/secrets?ok=secret-added", http.StatusSeeOther)
			return nil
		}
		if !addError(f.Errors, &f.FormError, err, fieldOf) {
			return err
		}
	}
	return s.refuseSecretForm(w, r, u, f, value, err)
}

func (s *server) secretEdit(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx := r.Context()
	sec, profiles, err := s.secretAndProfiles(ctx, u.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	f := &secretForm{
		CSRF: u.CSRF, Edit: true, ID: sec.ID, Name: sec.Name, Description: sec.Description,
		Scope: sec.Scope, Selected: map[string]bool{}, Profiles: profiles,
	}
	for _, id := range sec.ProfileIDs {
		f.Selected[id] = true
	}
	s.renderSecretForm(w, r, u, http.StatusOK, f)
	return nil
}

func (s *server) secretUpdate(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx := r.Context()
	id := r.PathValue("id")
	f, value, ids := readSecretForm(r)
	f.CSRF, f.Edit, f.ID = u.CSRF, true, id
	err := vault.ValidateName("name", f.Name)
	addError(f.Errors, &f.FormError, err, fieldOf)
	p := vault.SecretPatch{Name: &f.Name, Scope: &f.Scope, Description: &f.Description}
	if f.Scope == vault.ScopeAgents {
		p.ProfileIDs, p.SetProfileIDs = ids, true
	}
	if value != "" { // an empty value field keeps the current value
		if err := vault.ValidateValue("value", value); err != nil {
			addError(f.Errors, &f.FormError, err, fieldOf)
		}
		p.Value = &value
	}
	if len(f.Errors) == 0 {
		_, err = s.vault.UpdateSecret(ctx, u.ID, id, p)
		if err == nil {
			http.Redirect(w, r, "/settings/secrets?ok=secret-saved", http.StatusSeeOther)
			return nil
		}
		if !addError(f.Errors, &f.FormError, err, fieldOf) {
			return err // ENOTFOUND among them
		}
	}
	return s.refuseSecretForm(w, r, u, f, value, err)
}

// secretDeleteData is the delete confirmation's data.
type secretDeleteData struct {
	Secret   *vault.Secret
	Profiles []string
	CSRF     string
}

func (s *server) secretDeletePage(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx := r.Context()
	sec, profiles, err := s.secretAndProfiles(ctx, u.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	names := profileNames(profiles)
	d := secretDeleteData{Secret: sec, CSRF: u.CSRF}
	for _, id := range sec.ProfileIDs {
		d.Profiles = append(d.Profiles, names[id])
	}
	s.render(w, r, http.StatusOK, "secret_delete", view{Title: "Delete " + sec.Name, Nav: "secrets", User: u, Data: d})
	return nil
}

func (s *server) secretDelete(w http.ResponseWriter, r *http.Request, u *user) error {
	err := s.vault.DeleteSecret(r.Context(), u.ID, r.PathValue("id"))
	if vault.ErrorCode(err) == vault.ENOTFOUND {
		http.Redirect(w, r, "/settings/secrets?ok=secret-not-found", http.StatusSeeOther)
		return nil
	} else if err != nil {
		return err
	}
	http.Redirect(w, r, "/settings/secrets?ok=secret-deleted", http.StatusSeeOther)
	return nil
}

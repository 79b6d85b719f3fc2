package web

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/envvault/envvault/mask"
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

// allSecrets lists every secret of the user whose name contains query, by
// name. A user holds at most Options.MaxSecrets (1000 by default), so the
// Secrets page can sort and filter them all.
func (s *server) allSecrets(ctx context.Context, userID, query string) ([]*vault.Secret, error) {
	var out []*vault.Secret
	cursor := ""
	for {
		p, err := s.vault.Secrets(ctx, userID, vault.ListOptions{Query: query, Cursor: cursor, Limit: vault.MaxPageLimit})
		if err != nil {
			return nil, err
		}
		out = append(out, p.Items...)
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
	// Overrides is the `all` secret of the same name this `agents` secret
	// overrides for its profiles; nil if none.
	Overrides *vault.Secret
	// OverridesURL is where the overridden secret's row is: on this page
	// if the filters show it, else on the page filtered by its name.
	OverridesURL string
	Locked       bool // the operator locked the name: tasks get the baseline's value
	Highlight    bool // the secret the notice above the table is about
}

// secretFilter is what the Secrets page shows: the query parameters q
// (part of the name), scope (all or agents), profile (a profile id: the
// secrets granted to it, those for all profiles included), sort (name,
// updated: newest first, scope: all profiles first) and page (from 1).
type secretFilter struct {
	Query, Scope, Profile, Sort string
	Page                        int
}

// readSecretFilter reads the filter from the query; unknown values mean
// the default, as a link may be old.
func readSecretFilter(q url.Values) secretFilter {
	f := secretFilter{Query: q.Get("q"), Scope: q.Get("scope"), Profile: q.Get("profile"), Sort: q.Get("sort"), Page: 1}
	if f.Scope != string(vault.ScopeAll) && f.Scope != string(vault.ScopeAgents) {
		f.Scope = ""
	}
	if f.Sort != "updated" && f.Sort != "scope" {
		f.Sort = "name"
	}
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 1 {
		f.Page = n
	}
	return f
}

// url is the Secrets page with f, at page.
func (f secretFilter) url(page int) string {
	v := url.Values{}
	for k, x := range map[string]string{"q": f.Query, "scope": f.Scope, "profile": f.Profile} {
		if x != "" {
			v.Set(k, x)
		}
	}
	if f.Sort != "name" {
		v.Set("sort", f.Sort)
	}
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	if len(v) == 0 {
		return "/settings/secrets"
	}
	return "/settings/secrets?" + v.Encode()
}

// Filtered reports whether anything but the sort narrows the list.
func (f secretFilter) Filtered() bool { return f.Query != "" || f.Scope != "" || f.Profile != "" }

// keep reports whether sec passes the scope and profile filters.
func (f secretFilter) keep(sec *vault.Secret) bool {
	if f.Scope != "" && string(sec.Scope) != f.Scope {
		return false
	}
	return f.Profile == "" || sec.Scope == vault.ScopeAll || slices.Contains(sec.ProfileIDs, f.Profile)
}

// sort orders secrets by f.Sort; ties go by name, then id.
func (f secretFilter) sort(secrets []*vault.Secret) {
	slices.SortStableFunc(secrets, func(a, b *vault.Secret) int {
		switch f.Sort {
		case "updated":
			if c := b.UpdatedAt.Compare(a.UpdatedAt); c != 0 {
				return c
			}
		case "scope":
			if c := cmp.Compare(scopeRank(a.Scope), scopeRank(b.Scope)); c != 0 {
				return c
			}
		}
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.ID, b.ID))
	})
}

// scopeRank orders scopes as the page sorts them: all profiles first.
func scopeRank(s vault.Scope) int {
	if s == vault.ScopeAll {
		return 0
	}
	return 1
}

// secretsPage is the Secrets page's data.
type secretsPage struct {
	Secrets  []secretRow
	Filter   secretFilter
	Profiles []profileOption // for the profile filter
	Total    int             // the user's secrets matching the filter
	Prev     string          // URL of the previous page, "" on the first
	Next     string          // URL of the next page, "" on the last
	Form     *secretForm
	Warning  string // that the value just saved cannot be masked
	Locked   []string
	// Requests are the pending secret requests, a form each, shown on
	// top (secret_requests.go).
	Requests []*requestForm
	// RequestAlert says why an answer or cancel just sent changed nothing
	// when its request is no longer pending.
	RequestAlert string
	// Answered is the request just answered or cancelled, whose tasks
	// the page links to.
	Answered *vault.SecretRequest
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
	Locked      []string          // the operator's locked names, which no secret may take
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

// secretFields are the secret form's fields in page order: the key of
// Errors, the id the summary links to and its label.
var secretFields = [][3]string{
	{"name", "secret-name", "Name"}, {"value", "secret-value", "Value"},
	{"description", "secret-description", "Description"}, {"scope", "scope-all", "Available to"},
}

// Summary lists the form's errors for the summary above it, in the
// order of the fields.
func (f *secretForm) Summary() []summaryItem {
	var out []summaryItem
	for _, x := range secretFields {
		msg := f.Errors[x[0]]
		if x[0] == "value" && f.ValueDropped {
			msg = strings.TrimSpace(msg + " " + valueDroppedMsg)
		}
		if msg != "" {
			out = append(out, summaryItem{ID: x[1], Label: x[2], Message: msg})
		}
	}
	if f.FormError != "" {
		out = append(out, summaryItem{Message: f.FormError})
	}
	return out
}

// valueDroppedMsg says a refused form did not keep the value typed.
const valueDroppedMsg = "For your safety the value you typed was not kept: type it again."

// summaryItem is one error of a form's error summary: a link to the field
// (ID) named Label, or, without an ID, an error of the whole form.
type summaryItem struct {
	ID, Label, Message string
}

// secretNotices are what the Secrets page says after a change; %s is the
// secret's name, read from the store by the id the redirect carries (or,
// for a delete, a name the redirect carries that passes the name rule),
// so a link cannot make the page say anything else.
var secretNotices = map[string]string{
	"secret-added":   "Secret %s added.",
	"secret-saved":   "Secret %s saved.",
	"secret-deleted": "Secret %s deleted.",
}

// secretNotice returns the notice of a redirect after a change of secret
// sec (nil if gone) or an import.
func secretNotice(q url.Values, sec *vault.Secret) string {
	if n := importNotice(q); n != "" {
		return n
	}
	ok := q.Get("ok")
	format, known := secretNotices[ok]
	switch {
	case !known:
		return flashes[ok]
	case ok == "secret-deleted" && vault.ValidateName("name", q.Get("name")) == nil:
		return fmt.Sprintf(format, q.Get("name"))
	case sec != nil && ok != "secret-deleted":
		return fmt.Sprintf(format, sec.Name)
	}
	return flashes[ok]
}

// changedURL is where a change of sec sends the browser: the Secrets
// page naming it, its row in view.
func changedURL(ok string, sec *vault.Secret, value *string) string {
	v := url.Values{"ok": {ok}, "secret": {sec.ID}}
	if value != nil && len(*value) < mask.MinLen {
		v.Set("warn", "short")
	}
	return "/settings/secrets?" + v.Encode() + "#secret-" + sec.ID
}

// shortValueWarning is the warning for a value too short for the log
// masker, as the API gives it.
var shortValueWarning = fmt.Sprintf("The value of %%s is shorter than %d characters, so task logs cannot mask it: a task that prints it shows it in its log.", mask.MinLen)

func (s *server) secretsList(w http.ResponseWriter, r *http.Request, u *user) error {
	return s.renderSecrets(w, r, u, http.StatusOK, nil)
}

// renderSecrets renders the Secrets page with status: the pending secret
// requests on top (refused, if not nil, the one just refused), then the
// list.
func (s *server) renderSecrets(w http.ResponseWriter, r *http.Request, u *user, status int, refused *requestForm) error {
	ctx := r.Context()
	q := r.URL.Query()
	f := readSecretFilter(q)
	every, err := s.allSecrets(ctx, u.ID, f.Query)
	if err != nil {
		return err
	}
	profiles, err := s.allProfiles(ctx, u.ID)
	if err != nil {
		return err
	}
	names := profileNames(profiles)
	if _, ok := names[f.Profile]; !ok {
		f.Profile = ""
	}
	locked := s.vault.LockedNames()
	data := secretsPage{Filter: f, Profiles: profiles, Locked: locked,
		Form: &secretForm{CSRF: u.CSRF, Scope: vault.ScopeAll, Profiles: profiles, Locked: locked}}
	forAll := map[string]*vault.Secret{}
	var shown []*vault.Secret
	var changed *vault.Secret
	for _, sec := range every {
		if sec.Scope == vault.ScopeAll {
			forAll[sec.Name] = sec
		}
		if sec.ID == q.Get("secret") {
			changed = sec
		}
		if f.keep(sec) {
			shown = append(shown, sec)
		}
	}
	f.sort(shown)
	data.Total = len(shown)
	if from := (f.Page - 1) * pageSize; from < len(shown) {
		shown = shown[from:min(from+pageSize, len(shown))]
	} else {
		shown = nil
	}
	onPage := map[string]bool{}
	for _, sec := range shown {
		onPage[sec.ID] = true
	}
	for _, sec := range shown {
		row := secretRow{Secret: sec, Locked: slices.Contains(locked, sec.Name), Highlight: changed != nil && sec.ID == changed.ID}
		for _, id := range sec.ProfileIDs {
			row.Profiles = append(row.Profiles, names[id])
		}
		if o := forAll[sec.Name]; sec.Scope == vault.ScopeAgents && o != nil {
			row.Overrides, row.OverridesURL = o, "#secret-"+o.ID
			if !onPage[o.ID] {
				row.OverridesURL = "/settings/secrets?" + url.Values{"q": {o.Name}, "scope": {"all"}}.Encode() + "#secret-" + o.ID
			}
		}
		data.Secrets = append(data.Secrets, row)
	}
	if f.Page > 1 {
		data.Prev = f.url(f.Page - 1)
	}
	if f.Page*pageSize < data.Total {
		data.Next = f.url(f.Page + 1)
	}
	if q.Get("warn") == "short" && changed != nil {
		data.Warning = fmt.Sprintf(shortValueWarning, changed.Name)
	}
	flash, err := s.withRequests(ctx, u, q, names, refused, &data)
	if err != nil {
		return err
	}
	s.render(w, r, status, "secrets", view{Title: "Secrets", Nav: "secrets", User: u, Flash: cmp.Or(flash, secretNotice(q, changed)), Data: data})
	return nil
}

func (s *server) secretNew(w http.ResponseWriter, r *http.Request, u *user) error {
	profiles, err := s.allProfiles(r.Context(), u.ID)
	if err != nil {
		return err
	}
	f := &secretForm{CSRF: u.CSRF, Scope: vault.ScopeAll, Profiles: profiles}
	s.renderSecretForm(w, r, u, http.StatusOK, f, nil)
	return nil
}

// secretFormPage is the Add or Edit page: the form, and for Edit the
// secret as stored with its versions.
type secretFormPage struct {
	*secretForm
	Form     *secretForm // the embedded form, for the template
	Secret   *vault.Secret
	Versions []versionRow
	Notice   string // after a rollback
}

func (s *server) renderSecretForm(w http.ResponseWriter, r *http.Request, u *user, status int, f *secretForm, p *secretFormPage) {
	title := "Add a secret"
	if f.Edit {
		title = "Edit " + f.Name
	}
	if p == nil {
		p = &secretFormPage{}
	}
	p.secretForm, p.Form = f, f
	f.Locked = s.vault.LockedNames()
	s.render(w, r, status, "secret_form", view{Title: title, Nav: "secrets", User: u, Flash: p.Notice, Data: p})
}

// readSecretForm reads the Add/Edit form. A browser sends every line
// break of a textarea as CRLF, whatever was typed or pasted, so the
// value's CRLFs are read as LF: a pasted PEM key is stored byte for byte
// as the API stores the same text sent as JSON. (A value that needs CR
// bytes is set through the API or the CLI.) Every other byte, trailing
// spaces and a final line break included, is kept.
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
	return f, textareaValue(pf.Get("value")), ids
}

// textareaValue undoes the CRLF line breaks a browser sends for a
// textarea (see readSecretForm).
func textareaValue(v string) string { return strings.ReplaceAll(v, "\r\n", "\n") }

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

// checkSecretForm checks what the form can be told at once, before the
// service checks every rule again: the name and value rules (vault's own
// validators), and that no agent is ticked with "All profiles", which
// would otherwise be dropped without a word.
func checkSecretForm(r *http.Request, f *secretForm, value string, valueGiven bool) {
	if err := vault.ValidateName("name", f.Name); err != nil {
		addError(f.Errors, &f.FormError, err, fieldOf)
	}
	if valueGiven {
		if err := vault.ValidateValue("value", value); err != nil {
			addError(f.Errors, &f.FormError, err, fieldOf)
		}
	}
	if f.Scope == vault.ScopeAll && len(r.PostForm["profile_ids"]) > 0 {
		f.Errors["scope"] = "“All profiles” gives the secret to every profile, so no agent may be ticked: untick the selected agents, or choose “Only selected agents”."
	}
}

// refuseSecretForm shows the secret form f again, with the status of err
// and the errors put on f; a value the user typed is never sent back,
// only said to be dropped.
func (s *server) refuseSecretForm(w http.ResponseWriter, r *http.Request, u *user, f *secretForm, value string, err error) error {
	f.ValueDropped = value != ""
	status := refuseStatus(err)
	if err == nil {
		status = http.StatusUnprocessableEntity
	}
	if f.Profiles, err = s.allProfiles(r.Context(), u.ID); err != nil {
		return err
	}
	var p *secretFormPage
	if f.Edit {
		if p, err = s.secretPage(r.Context(), u, f.ID); err != nil {
			return err
		}
	}
	s.renderSecretForm(w, r, u, status, f, p)
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
	checkSecretForm(r, f, value, true)
	if len(f.Errors) > 0 {
		return s.refuseSecretForm(w, r, u, f, value, nil)
	}
	sec, err := s.vault.CreateSecret(ctx, u.ID, vault.SecretInput{
		Name: f.Name, Value: value, Scope: f.Scope, ProfileIDs: ids, Description: f.Description,
	})
	if err == nil {
		http.Redirect(w, r, changedURL("secret-added", sec, &value), http.StatusSeeOther)
		return nil
	}
	if !s.addSecretError(ctx, u, f, ids, err) {
		return err
	}
	return s.refuseSecretForm(w, r, u, f, value, err)
}

// secretPage returns the Edit page of the user's secret id without its
// form: the secret and its versions.
func (s *server) secretPage(ctx context.Context, u *user, id string) (*secretFormPage, error) {
	sec, err := s.vault.Secret(ctx, u.ID, id)
	if err != nil {
		return nil, err
	}
	versions, err := s.vault.SecretVersions(ctx, u.ID, id)
	if err != nil {
		return nil, err
	}
	tokens, err := s.vault.Tokens(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	return &secretFormPage{Secret: sec, Versions: versionRows(versions, tokens, u.Session.TokenID)}, nil
}

func (s *server) secretEdit(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx := r.Context()
	p, err := s.secretPage(ctx, u, r.PathValue("id"))
	if err != nil {
		return err
	}
	profiles, err := s.allProfiles(ctx, u.ID)
	if err != nil {
		return err
	}
	sec := p.Secret
	f := &secretForm{
		CSRF: u.CSRF, Edit: true, ID: sec.ID, Name: sec.Name, Description: sec.Description,
		Scope: sec.Scope, Selected: map[string]bool{}, Profiles: profiles,
	}
	for _, id := range sec.ProfileIDs {
		f.Selected[id] = true
	}
	p.Notice = rollbackNotice(r.URL.Query(), sec)
	s.renderSecretForm(w, r, u, http.StatusOK, f, p)
	return nil
}

func (s *server) secretUpdate(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx := r.Context()
	id := r.PathValue("id")
	f, value, ids := readSecretForm(r)
	f.CSRF, f.Edit, f.ID = u.CSRF, true, id
	checkSecretForm(r, f, value, value != "") // an empty value field keeps the current value
	if len(f.Errors) > 0 {
		return s.refuseSecretForm(w, r, u, f, value, nil)
	}
	p := vault.SecretPatch{Name: &f.Name, Scope: &f.Scope, Description: &f.Description}
	if f.Scope == vault.ScopeAgents {
		p.ProfileIDs, p.SetProfileIDs = ids, true
	}
	if value != "" {
		p.Value = &value
	}
	sec, err := s.vault.UpdateSecret(ctx, u.ID, id, p)
	if err == nil {
		http.Redirect(w, r, changedURL("secret-saved", sec, p.Value), http.StatusSeeOther)
		return nil
	}
	if !s.addSecretError(ctx, u, f, ids, err) {
		return err // ENOTFOUND among them
	}
	return s.refuseSecretForm(w, r, u, f, value, err)
}

// secretDeleteData is the delete confirmation's data.
type secretDeleteData struct {
	Secret *vault.Secret
	// Lose are the profiles that get the secret today and will get no
	// secret of its name after the delete.
	Lose []string
	// Fallback are the profiles that get it today and will get another
	// secret of its name after the delete (FallbackTo).
	Fallback   []string
	FallbackTo *vault.EnvSecret
	// Keep are the profiles that get another secret of its name today
	// (an override), which the delete does not change.
	Keep []string
	CSRF string
}

func (s *server) secretDeletePage(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx := r.Context()
	sec, profiles, err := s.secretAndProfiles(ctx, u.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	d := secretDeleteData{Secret: sec, CSRF: u.CSRF}
	for _, p := range profiles {
		if sec.Scope == vault.ScopeAgents && !slices.Contains(sec.ProfileIDs, p.ID) {
			continue
		}
		// What the profile gets today and without this secret, both
		// as the vault's override rule says.
		now, err := s.vault.ProfileSecrets(ctx, u.ID, p.ID)
		if err != nil {
			return err
		}
		if src := envSecretNamed(now, sec.Name); src == nil || src.SecretID != sec.ID {
			d.Keep = append(d.Keep, p.Name)
			continue
		}
		after, err := s.vault.ProfileSecretsWithout(ctx, u.ID, p.ID, sec.ID)
		if err != nil {
			return err
		}
		if src := envSecretNamed(after, sec.Name); src != nil {
			d.Fallback, d.FallbackTo = append(d.Fallback, p.Name), src
		} else {
			d.Lose = append(d.Lose, p.Name)
		}
	}
	s.render(w, r, http.StatusOK, "secret_delete", view{Title: "Delete " + sec.Name, Nav: "secrets", User: u, Data: d})
	return nil
}

// envSecretNamed returns the entry of list for name, nil if none.
func envSecretNamed(list []vault.EnvSecret, name string) *vault.EnvSecret {
	for i := range list {
		if list[i].Name == name {
			return &list[i]
		}
	}
	return nil
}

func (s *server) secretDelete(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx := r.Context()
	id := r.PathValue("id")
	sec, err := s.vault.Secret(ctx, u.ID, id)
	if err == nil {
		err = s.vault.DeleteSecret(ctx, u.ID, id)
	}
	if vault.ErrorCode(err) == vault.ENOTFOUND {
		http.Redirect(w, r, "/settings/secrets?ok=secret-not-found", http.StatusSeeOther)
		return nil
	} else if err != nil {
		return err
	}
	http.Redirect(w, r, "/settings/secrets?"+url.Values{"ok": {"secret-deleted"}, "name": {sec.Name}}.Encode(), http.StatusSeeOther)
	return nil
}

// scopePicker is the data of the "scope-picker" template: the scope
// choice and the agent checklist of a form, its ids prefixed by Prefix.
type scopePicker struct {
	Prefix   string
	ErrorID  string // the id of the error message
	Scope    vault.Scope
	Selected map[string]bool
	Profiles []profileOption
	Error    string
}

// Picker is the form's scope choice.
func (f *secretForm) Picker() scopePicker {
	return scopePicker{ErrorID: "secret-scope-error", Scope: f.Scope, Selected: f.Selected, Profiles: f.Profiles, Error: f.Errors["scope"]}
}

// ValueDroppedMessage says a refused form did not keep the value typed.
func (f *secretForm) ValueDroppedMessage() string { return valueDroppedMsg }

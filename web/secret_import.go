package web

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/envvault/envvault/internal/dotenv"
	"github.com/envvault/envvault/vault"
)

// importForm is the paste-a-.env form. What was pasted is never rendered
// back: a refused import shows each line's number and, for the lines that
// were read, the name, but no value; the user pastes the corrected file
// again (as the Add form asks for a value again).
type importForm struct {
	CSRF     string
	Scope    vault.Scope
	Selected map[string]bool
	Profiles []profileOption
	// Lines are the bad lines, by number, with what is wrong: never a
	// value.
	Lines []vault.ImportLineError
	// Read are the entries of the pasted text that were read, without
	// their values, for the user to find the lines again.
	Read      []dotenv.Entry
	Errors    map[string]string // by field: env, scope
	FormError string
	// Dropped says text was pasted but, the import being refused, not
	// rendered back.
	Dropped bool
}

// BadLine reports whether line n is among the bad lines.
func (f *importForm) BadLine(n int) bool {
	for _, l := range f.Lines {
		if l.Line == n {
			return true
		}
	}
	return false
}

// Summary lists the form's errors for the summary above it.
func (f *importForm) Summary() []summaryItem {
	var out []summaryItem
	for _, l := range f.Lines {
		out = append(out, summaryItem{ID: "import-env", Label: "Line " + strconv.Itoa(l.Line), Message: l.Message})
	}
	if m := f.Errors["env"]; m != "" {
		out = append(out, summaryItem{ID: "import-env", Label: ".env", Message: m})
	}
	if m := f.Errors["scope"]; m != "" {
		out = append(out, summaryItem{ID: "import-scope-all", Label: "Available to", Message: m})
	}
	if f.FormError != "" {
		out = append(out, summaryItem{Message: f.FormError})
	}
	return out
}

func importField(field string) string {
	switch field {
	case "scope", "profile_ids":
		return "scope"
	}
	return ""
}

func (s *server) secretImportPage(w http.ResponseWriter, r *http.Request, u *user) error {
	f := &importForm{CSRF: u.CSRF, Scope: vault.ScopeAll, Selected: map[string]bool{}, Errors: map[string]string{}}
	return s.renderImport(w, r, u, http.StatusOK, f)
}

func (s *server) renderImport(w http.ResponseWriter, r *http.Request, u *user, status int, f *importForm) error {
	var err error
	if f.Profiles, err = s.allProfiles(r.Context(), u.ID); err != nil {
		return err
	}
	s.render(w, r, status, "secret_import", view{Title: "Import a .env", Nav: "secrets", User: u, Data: f})
	return nil
}

// secretImport imports the pasted .env, all or nothing, with the CLI's
// rules (dotenv.Import). CRLF line breaks, which a browser sends for a
// textarea, are read as LF by the parser.
func (s *server) secretImport(w http.ResponseWriter, r *http.Request, u *user) error {
	pf := r.PostForm
	text := pf.Get("env")
	f := &importForm{CSRF: u.CSRF, Scope: vault.Scope(pf.Get("scope")), Selected: map[string]bool{}, Errors: map[string]string{}}
	if f.Scope == "" {
		f.Scope = vault.ScopeAll
	}
	for _, id := range pf["profile_ids"] {
		f.Selected[id] = true
	}
	var ids []string
	switch {
	case f.Scope == vault.ScopeAgents:
		ids = pf["profile_ids"]
	case len(pf["profile_ids"]) > 0:
		f.Errors["scope"] = "“All profiles” gives the secrets to every profile, so no agent may be ticked: untick the selected agents, or choose “Only selected agents”."
	}
	if text == "" {
		f.Errors["env"] = "is empty: paste the lines of a .env file, NAME=value on each."
	}
	var err error
	if len(f.Errors) == 0 {
		var res vault.ImportResult
		res, err = dotenv.Import(r.Context(), s.vault, u.ID, []byte(text), f.Scope, ids)
		if err == nil {
			q := url.Values{"ok": {"secrets-imported"}, "created": {strconv.Itoa(res.Created)},
				"updated": {strconv.Itoa(res.Updated)}, "unchanged": {strconv.Itoa(res.Unchanged)}}
			http.Redirect(w, r, "/settings/secrets?"+q.Encode(), http.StatusSeeOther)
			return nil
		}
		var ie *vault.ImportError
		switch {
		case errors.As(err, &ie):
			f.Lines = ie.Lines
			if err := s.nameConflicts(r, u, f, text, ids, vault.ErrorCode(err) == vault.ECONFLICT); err != nil {
				return err
			}
		case !addError(f.Errors, &f.FormError, err, importField):
			return err
		}
	}
	f.Dropped = text != ""
	f.Read = dotenv.Names([]byte(text))
	status := http.StatusUnprocessableEntity
	if err != nil {
		status = refuseStatus(err) // 409 for lines that collide with secrets
	}
	return s.renderImport(w, r, u, status, f)
}

// importNotice is what the Secrets page says after an import; the
// counts are read as numbers, so a link can make it say nothing else.
func importNotice(q url.Values) string {
	if q.Get("ok") != "secrets-imported" {
		return ""
	}
	var n [3]int
	for i, k := range []string{"created", "updated", "unchanged"} {
		v, err := strconv.Atoi(q.Get(k))
		if err != nil || v < 0 {
			return "Secrets imported."
		}
		n[i] = v
	}
	return "Imported: " + strconv.Itoa(n[0]) + " added, " + strconv.Itoa(n[1]) + " updated, " + strconv.Itoa(n[2]) + " unchanged."
}

// Picker is the form's scope choice.
func (f *importForm) Picker() scopePicker {
	return scopePicker{Prefix: "import-", ErrorID: "import-scope-error", Scope: f.Scope, Selected: f.Selected, Profiles: f.Profiles, Error: f.Errors["scope"]}
}

// nameConflicts puts the import's line errors in words: each rule in
// words, and, when the lines were refused for colliding with the user's
// secrets (conflicts: the vault's ECONFLICT), which secret and profiles,
// by name, instead of the vault's ids.
func (s *server) nameConflicts(r *http.Request, u *user, f *importForm, text string, ids []string, conflicts bool) error {
	names := map[int]string{}
	for _, e := range dotenv.Names([]byte(text)) {
		names[e.Line] = e.Name
	}
	for i, l := range f.Lines {
		f.Lines[i].Message = inWords(l.Message)
		if !conflicts || names[l.Line] == "" {
			continue
		}
		msg, err := s.conflictMessage(r.Context(), u.ID, &secretForm{Name: names[l.Line], Scope: f.Scope}, ids)
		if err != nil {
			return err
		}
		if msg != "" {
			f.Lines[i].Message = msg
		}
	}
	return nil
}

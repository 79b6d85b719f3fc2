package web

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

// profilesPage is the Profiles page's data.
type profilesPage struct {
	Profiles []*vault.Profile
	Next     string
}

// profileForm is the create and edit form of a profile, as the user typed
// it: command and setup commands one per line, env NAME=value per line.
type profileForm struct {
	CSRF          string
	Edit          bool
	ID            string
	Name          string
	Image         string
	Command       string
	SetupCommands string
	Env           string
	// RequiredSecrets: "NAME — description" per line (required_secrets.go).
	RequiredSecrets string
	OnSecretChange  string // vault.OnSecretChangeKeep or …Restart
	Sandbox         sandboxForm
	Errors          map[string]string // by field: name, image, command, setup_commands, env, sandbox_user, …
	FormError       string
}

func (f *profileForm) Action() string {
	if f.Edit {
		return "/profiles/" + f.ID
	}
	return "/profiles"
}

// envEntry is one name a task on a profile would receive, and whence.
type envEntry struct {
	Name      string
	Source    string // orchestrator.Source…: baseline, profile, secret or task
	SecretID  string
	Scope     vault.Scope
	Version   int
	Overrides bool // a secret that overrides the profile's own env of this name
	Locked    bool // a baseline name the operator locked
}

// profileShowPage is a profile's page: its form and its env preview.
type profileShowPage struct {
	Form *profileForm
	Env  []envEntry
	// Missing are the required names no layer gives a value yet.
	Missing []string
}

func (s *server) profilesList(w http.ResponseWriter, r *http.Request, u *user) error {
	page, err := s.vault.Profiles(r.Context(), u.ID, vault.ListOptions{Cursor: r.URL.Query().Get("cursor"), Limit: pageSize})
	if err != nil {
		return err
	}
	data := profilesPage{Profiles: page.Items}
	if page.NextCursor != "" {
		data.Next = "/profiles?" + url.Values{"cursor": {page.NextCursor}}.Encode()
	}
	s.render(w, r, http.StatusOK, "profiles", view{Title: "Profiles", Nav: "profiles", User: u, Flash: flash(r), Data: data})
	return nil
}

func (s *server) profileNew(w http.ResponseWriter, r *http.Request, u *user) error {
	s.render(w, r, http.StatusOK, "profile_form", view{Title: "New profile", Nav: "profiles", User: u,
		Data: profileShowPage{Form: &profileForm{CSRF: u.CSRF}}})
	return nil
}

// splitLines splits a textarea into its lines, without the line breaks a
// browser sends (CRLF) and without blank lines.
func splitLines(s string) []string {
	out := []string{}
	for line := range strings.SplitSeq(s, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) != "" {
			out = append(out, line)
		}
	}
	return out
}

// parseEnv reads NAME=value lines; blank lines and lines starting with #
// are skipped. Its errors name the line, never a value.
func parseEnv(s string) (map[string]string, error) {
	env := map[string]string{}
	for i, line := range strings.Split(s, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		name = strings.TrimSpace(name)
		switch {
		case !ok:
			return nil, vault.Invalid("env", "line %d: expected NAME=value", i+1)
		case vault.ValidateName("env", name) != nil:
			return nil, vault.Invalid("env", "line %d: a name must use only upper-case letters, digits and underscores, not starting with a digit", i+1)
		}
		if _, dup := env[name]; dup {
			return nil, vault.Invalid("env", "line %d: %s is given twice", i+1, name)
		}
		env[name] = value
	}
	return env, nil
}

func formatEnv(env map[string]string) string {
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		fmt.Fprintf(&b, "%s=%s\n", k, env[k])
	}
	return b.String()
}

func readProfileForm(r *http.Request) *profileForm {
	pf := r.PostForm
	return &profileForm{
		Name: pf.Get("name"), Image: strings.TrimSpace(pf.Get("image")),
		Command: pf.Get("command"), SetupCommands: pf.Get("setup_commands"), Env: pf.Get("env"),
		RequiredSecrets: pf.Get("required_secrets"), OnSecretChange: pf.Get("on_secret_change"), Sandbox: readSandboxForm(pf), Errors: map[string]string{},
	}
}

func profileField(field string) string {
	switch field {
	case "name", "image", "command", "setup_commands", "env", "required_secrets", "on_secret_change":
		return field
	}
	return sandboxField(field)
}

func (s *server) profileCreate(w http.ResponseWriter, r *http.Request, u *user) error {
	f := readProfileForm(r)
	f.CSRF = u.CSRF
	env, err := parseEnv(f.Env)
	var sandbox vault.Sandbox
	if err == nil {
		sandbox, err = f.Sandbox.parse()
	}
	if err == nil {
		var p *vault.Profile
		p, err = s.vault.CreateProfile(r.Context(), u.ID, vault.ProfileInput{
			Name: f.Name, Image: f.Image, Command: splitLines(f.Command), SetupCommands: splitLines(f.SetupCommands), Env: env,
			Sandbox: sandbox, RequiredSecrets: parseRequired(f.RequiredSecrets), OnSecretChange: f.OnSecretChange,
		})
		if err == nil {
			http.Redirect(w, r, "/profiles/"+p.ID+"?ok=profile-added", http.StatusSeeOther)
			return nil
		}
	}
	if !addError(f.Errors, &f.FormError, err, profileField) {
		return err
	}
	s.render(w, r, refuseStatus(err), "profile_form", view{Title: "New profile", Nav: "profiles", User: u,
		Data: profileShowPage{Form: f}})
	return nil
}

func (s *server) profileShow(w http.ResponseWriter, r *http.Request, u *user) error {
	p, err := s.vault.Profile(r.Context(), u.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	f := &profileForm{
		CSRF: u.CSRF, Edit: true, ID: p.ID, Name: p.Name, Image: p.Image,
		Command: strings.Join(p.Command, "\n"), SetupCommands: strings.Join(p.SetupCommands, "\n"), Env: formatEnv(p.Env),
		Sandbox: newSandboxForm(p.Sandbox), RequiredSecrets: formatRequired(p.RequiredSecrets),
		OnSecretChange: p.OnSecretChange,
	}
	return s.renderProfile(w, r, u, http.StatusOK, p, f)
}

// renderProfile renders a profile's page with the env preview of its
// stored state (p), whatever the form holds.
func (s *server) renderProfile(w http.ResponseWriter, r *http.Request, u *user, status int, p *vault.Profile, f *profileForm) error {
	var sources []orchestrator.EnvSource
	if s.orch != nil {
		var err error
		if sources, err = s.orch.PreviewEnv(r.Context(), u.ID, p.ID); err != nil {
			return err
		}
	} else {
		// No orchestrator: no baseline either, but the merge is the same.
		secrets, err := s.vault.ProfileSecrets(r.Context(), u.ID, p.ID)
		if err != nil {
			return err
		}
		sources = orchestrator.Preview(orchestrator.Baseline{}, p.Env, secrets)
	}
	s.render(w, r, status, "profile_form", view{Title: p.Name, Nav: "profiles", User: u, Flash: flash(r),
		Data: profileShowPage{Form: f, Env: envPreview(p.Env, sources, s.vault.LockedNames()), Missing: orchestrator.MissingRequired(p, sources)}})
	return nil
}

// envPreview turns the orchestrator's preview into the page's rows, marking
// the secrets that override a name of the profile's own env.
func envPreview(env map[string]string, sources []orchestrator.EnvSource, locked []string) []envEntry {
	out := make([]envEntry, 0, len(sources))
	for _, src := range sources {
		_, own := env[src.Name]
		out = append(out, envEntry{Name: src.Name, Source: src.Source, SecretID: src.SecretID,
			Scope: vault.Scope(src.Scope), Version: src.Version, Overrides: src.Source == orchestrator.SourceSecret && own,
			Locked: src.Source == orchestrator.SourceBaseline && slices.Contains(locked, src.Name)})
	}
	return out
}

func (s *server) profileUpdate(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx := r.Context()
	id := r.PathValue("id")
	f := readProfileForm(r)
	f.CSRF, f.Edit, f.ID = u.CSRF, true, id
	env, err := parseEnv(f.Env)
	var sandbox vault.Sandbox
	if err == nil {
		sandbox, err = f.Sandbox.parse()
	}
	if err == nil {
		cmd, setup, required := splitLines(f.Command), splitLines(f.SetupCommands), parseRequired(f.RequiredSecrets)
		_, err = s.vault.UpdateProfile(ctx, u.ID, id, vault.ProfilePatch{
			Name: &f.Name, Image: &f.Image, Command: &cmd, SetupCommands: &setup, Env: &env, Sandbox: &sandbox,
			RequiredSecrets: &required, OnSecretChange: &f.OnSecretChange,
		})
		if err == nil {
			http.Redirect(w, r, "/profiles/"+id+"?ok=profile-saved", http.StatusSeeOther)
			return nil
		}
	}
	if !addError(f.Errors, &f.FormError, err, profileField) {
		return err // ENOTFOUND among them
	}
	status := refuseStatus(err)
	p, err := s.vault.Profile(ctx, u.ID, id)
	if err != nil {
		return err
	}
	return s.renderProfile(w, r, u, status, p, f)
}

type profileDeleteData struct {
	Profile *vault.Profile
	CSRF    string
}

func (s *server) profileDeletePage(w http.ResponseWriter, r *http.Request, u *user) error {
	p, err := s.vault.Profile(r.Context(), u.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "profile_delete", view{Title: "Delete " + p.Name, Nav: "profiles", User: u,
		Data: profileDeleteData{Profile: p, CSRF: u.CSRF}})
	return nil
}

func (s *server) profileDelete(w http.ResponseWriter, r *http.Request, u *user) error {
	if err := s.vault.DeleteProfile(r.Context(), u.ID, r.PathValue("id")); err != nil {
		return err
	}
	http.Redirect(w, r, "/profiles?ok=profile-deleted", http.StatusSeeOther)
	return nil
}

// profileFields are the profile form's fields in page order: the key of
// Errors, the id of the input and its label.
var profileFields = [][3]string{
	{"name", "profile-name", "Name"}, {"image", "profile-image", "Image"}, {"command", "profile-command", "Command"},
	{"setup_commands", "profile-setup", "Setup commands"}, {"env", "profile-env", "Env"},
	{"sandbox_user", "profile-sandbox-user", "User"}, {"sandbox_memory_mb", "profile-sandbox-memory_mb", "Memory"},
	{"sandbox_cpu_millis", "profile-sandbox-cpu_millis", "CPU"}, {"sandbox_pids_limit", "profile-sandbox-pids_limit", "Processes"},
	{"sandbox_cap_add", "profile-sandbox-cap_add", "Capabilities"}, {"sandbox_network", "profile-sandbox-network", "Network"},
	{"sandbox_writable_rootfs", "profile-sandbox-writable_rootfs", "Root filesystem"},
}

// Summary lists the form's errors for the summary above it.
func (f *profileForm) Summary() []summaryItem {
	var out []summaryItem
	for _, x := range profileFields {
		if m := f.Errors[x[0]]; m != "" {
			out = append(out, summaryItem{ID: x[1], Label: x[2], Message: m})
		}
	}
	if f.FormError != "" {
		out = append(out, summaryItem{Message: f.FormError})
	}
	return out
}

package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/envvault/envvault/vault"
)

// Secret requests at the top of the Secrets page (issue 13): each pending
// request of the user is a form for exactly the names its profile's
// waiting tasks lack, with, for each name, a write-only value and where
// it goes: "this profile only" (scope agents) or "all profiles" (scope
// all). The form posts to the routes below, which call what the API's
// answer and cancel call (vault.AnswerSecretRequestEach or
// CancelSecretRequest, then the orchestrator's ReleaseAnswered or
// CancelWaiting). A refused form is shown again naming each bad name,
// with the scopes chosen and never a value. They exist only with an
// orchestrator, as the API's routes answer 503 without one.

// requestForm is one pending request's form.
type requestForm struct {
	CSRF        string
	Request     *vault.SecretRequest
	ProfileName string // "" if the profile is gone
	Fields      []requestField
	FormError   string // an error about no one name
	// Refused says the form was sent and refused: the values typed were
	// not kept and must be typed again.
	Refused bool
}

// requestField is one name of a request's form: never a value.
type requestField struct {
	Name, Description string
	Scope             vault.Scope // as chosen; agents (this profile only) on a new form
	Error             string      // what is wrong with this name's answer
	ValueInvalid      bool        // the error is about the value
	ScopeInvalid      bool        // the error is about where it goes
}

func newRequestForm(csrf string, r *vault.SecretRequest, profileName string) *requestForm {
	f := &requestForm{CSRF: csrf, Request: r, ProfileName: profileName}
	for _, n := range r.Names {
		f.Fields = append(f.Fields, requestField{Name: n.Name, Description: n.Description, Scope: vault.ScopeAgents})
	}
	return f
}

// Prefix starts the ids of the form's elements.
func (f *requestForm) Prefix() string { return "request-" + f.Request.ID + "-" }

// Summary lists the form's errors for the summary above it, each a link
// to the control it is about.
func (f *requestForm) Summary() []summaryItem {
	var out []summaryItem
	for _, x := range f.Fields {
		switch {
		case x.ValueInvalid:
			out = append(out, summaryItem{ID: f.Prefix() + "value-" + x.Name, Label: "Value of " + x.Name, Message: x.Error})
		case x.Error != "":
			out = append(out, summaryItem{ID: f.Prefix() + "agents-" + x.Name, Label: x.Name, Message: x.Error})
		}
	}
	if f.FormError != "" {
		out = append(out, summaryItem{Message: f.FormError})
	}
	return out
}

func (f *requestForm) field(name string) *requestField {
	for i := range f.Fields {
		if f.Fields[i].Name == name {
			return &f.Fields[i]
		}
	}
	return nil
}

// addAnswerError puts the vault's refusal of an answer next to the names
// it is about: an *vault.ImportError names them by line, the line being
// the name's place in names (vault.AnswerNames). It returns false for an
// error the user cannot act on.
func (f *requestForm) addAnswerError(err error, names []string) bool {
	var ie *vault.ImportError
	if !errors.As(err, &ie) {
		errs := map[string]string{}
		return addError(errs, &f.FormError, err, func(string) string { return "" })
	}
	for _, l := range ie.Lines {
		var x *requestField
		if l.Line >= 1 && l.Line <= len(names) {
			x = f.field(names[l.Line-1])
		}
		if x == nil {
			f.FormError = inWords(l.Message)
			continue
		}
		valuePrefix := "value of " + x.Name + ": "
		switch {
		case strings.HasPrefix(l.Message, valuePrefix):
			x.Error, x.ValueInvalid = "The value "+strings.TrimPrefix(l.Message, valuePrefix)+".", true
		case strings.HasPrefix(l.Message, "scope of "+x.Name):
			x.Error, x.ScopeInvalid = "Choose “This profile only” or “All profiles”.", true
		default: // a collision with a secret of the name: where it goes
			x.Error, x.ScopeInvalid = inWords(l.Message), true
		}
	}
	return true
}

// requestForms returns a form for each of the user's pending requests
// (newest first), refused in place of its request's own. names maps
// profile ids to names.
func (s *server) requestForms(ctx context.Context, u *user, names map[string]string, refused *requestForm) ([]*requestForm, error) {
	if s.orch == nil {
		return nil, nil
	}
	list, err := s.vault.SecretRequests(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	var out []*requestForm
	for _, r := range list {
		if r.Status != vault.RequestPending {
			break // the pending ones come first
		}
		f := newRequestForm(u.CSRF, r, names[r.ProfileID])
		if refused != nil && refused.Request.ID == r.ID {
			// The request as it is now (a task may have added a name),
			// with what the refused form chose and why it was refused.
			for i, x := range f.Fields {
				if was := refused.field(x.Name); was != nil {
					f.Fields[i] = *was
				}
			}
			f.FormError, f.Refused = refused.FormError, true
		}
		out = append(out, f)
	}
	return out, nil
}

// withRequests adds to d the pending requests' forms, and the notice of
// an answer or cancel just made (returned) or the alert of one refused
// because its request is no longer pending.
func (s *server) withRequests(ctx context.Context, u *user, q url.Values, names map[string]string, refused *requestForm, d *secretsPage) (string, error) {
	forms, err := s.requestForms(ctx, u, names, refused)
	if err != nil {
		return "", err
	}
	d.Requests = forms
	if refused != nil && !slices.ContainsFunc(forms, func(f *requestForm) bool { return f.Request.ID == refused.Request.ID }) {
		d.RequestAlert = cmp.Or(refused.FormError, "That secret request is no longer pending.") + " Nothing was saved."
	}
	flash, answered := s.requestNotice(ctx, u, q)
	d.Answered = answered
	return flash, nil
}

// requestNotice is the notice after an answer or a cancel of request id
// (ok request-answered or request-cancelled), read from the store so that
// a link cannot make the page say anything else; "" if none applies.
func (s *server) requestNotice(ctx context.Context, u *user, q url.Values) (string, *vault.SecretRequest) {
	ok := q.Get("ok")
	if (ok != "request-answered" && ok != "request-cancelled") || s.orch == nil {
		return "", nil
	}
	r, err := s.vault.SecretRequest(ctx, u.ID, q.Get("request"))
	if err != nil {
		return "", nil // gone, or not this user's: no notice
	}
	names := strings.Join(vault.RequiredNames(r.Names), ", ")
	tasks := fmt.Sprintf("%d waiting task", len(r.TaskIDs))
	if len(r.TaskIDs) != 1 {
		tasks += "s"
	}
	var answered, cancelled string
	switch {
	case len(r.TaskIDs) > 0:
		answered, cancelled = " Its "+tasks+" went back to the queue and start with the new values.", ": its "+tasks+" ended cancelled."
	case len(r.Asks) > 0:
		answered, cancelled = " The tasks that asked restart with them.", ": the tasks that asked are told it was refused."
	default:
		cancelled = "."
	}
	switch {
	case ok == "request-answered" && r.Status == vault.RequestAnswered:
		return "Saved " + names + "." + answered, r
	case ok == "request-cancelled" && r.Status == vault.RequestCancelled:
		return "Request for " + names + " cancelled" + cancelled, r
	}
	return "", nil
}

func (s *server) secretRequestAnswer(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx := r.Context()
	req, err := s.vault.SecretRequest(ctx, u.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	f := newRequestForm(u.CSRF, req, "")
	answers := make(map[string]vault.SecretAnswer, len(f.Fields))
	for i := range f.Fields {
		x := &f.Fields[i]
		x.Scope = vault.Scope(r.PostForm.Get("scope." + x.Name))
		answers[x.Name] = vault.SecretAnswer{Value: textareaValue(r.PostForm.Get("value." + x.Name)), Scope: x.Scope}
	}
	done, err := s.vault.AnswerSecretRequestEach(ctx, u.ID, req.ID, answers)
	if err == nil {
		s.orch.ReleaseAnswered(ctx, done)
		http.Redirect(w, r, "/settings/secrets?"+url.Values{"ok": {"request-answered"}, "request": {done.ID}}.Encode()+"#secret-requests", http.StatusSeeOther)
		return nil
	}
	if !f.addAnswerError(err, vault.AnswerNames(answers)) {
		return err
	}
	f.Refused = true
	return s.renderSecrets(w, r, u, refuseStatus(err), f)
}

func (s *server) secretRequestCancel(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx := r.Context()
	done, err := s.vault.CancelSecretRequest(ctx, u.ID, r.PathValue("id"))
	if vault.ErrorCode(err) == vault.ECONFLICT {
		f := &requestForm{Request: &vault.SecretRequest{ID: r.PathValue("id")}}
		addError(map[string]string{}, &f.FormError, err, func(string) string { return "" })
		return s.renderSecrets(w, r, u, http.StatusConflict, f)
	}
	if err != nil {
		return err
	}
	s.orch.CancelWaiting(ctx, done)
	http.Redirect(w, r, "/settings/secrets?"+url.Values{"ok": {"request-cancelled"}, "request": {done.ID}}.Encode(), http.StatusSeeOther)
	return nil
}

package web

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

// maxPageLog is how much of a task's log its page shows: the last bytes.
const maxPageLog = 1 << 20

// followRefresh is how often, in seconds, a running task's page reloads
// itself when JavaScript is off (with it, the log streams instead).
const followRefresh = 3

// followWriteTimeout bounds one write of a followed log: a client that
// takes longer to take it in is cut off.
const followWriteTimeout = time.Minute

// taskStartForm is the form that starts a task.
type taskStartForm struct {
	CSRF      string
	ProfileID string
	Prompt    string
	Profiles  []profileOption
	Errors    map[string]string // by field: profile_id, prompt
	FormError string
}

type taskRow struct {
	*orchestrator.TaskView
	ProfileName string
	Prompt      string // the prompt's first line, cut to promptCut characters
}

// promptCut is how many characters of a prompt the tasks list shows.
const promptCut = 80

// shortPrompt is the first line of prompt, cut to promptCut characters
// (on a character boundary) with an ellipsis when anything was left out.
func shortPrompt(prompt string) string {
	line, rest, more := strings.Cut(strings.TrimSpace(prompt), "\n")
	line = strings.TrimSpace(line)
	if r := []rune(line); len(r) > promptCut {
		return string(r[:promptCut-1]) + "…"
	}
	if more && strings.TrimSpace(rest) != "" {
		return line + " …"
	}
	return line
}

type tasksPage struct {
	Form  *taskStartForm
	Tasks []taskRow
	Next  string
}

// taskPage is one task's page.
type taskPage struct {
	Task        *orchestrator.TaskView
	ProfileName string // "" if the profile is gone
	Log         string
	LogCut      bool // the log is longer than maxPageLog; its start is not shown
	Follow      bool // the task may still write: follow its log
	CSRF        string
}

func (s *server) tasksList(w http.ResponseWriter, r *http.Request, u *user) error {
	f := &taskStartForm{CSRF: u.CSRF, ProfileID: r.URL.Query().Get("profile"), Errors: map[string]string{}}
	return s.renderTasks(w, r, u, http.StatusOK, f)
}

func (s *server) renderTasks(w http.ResponseWriter, r *http.Request, u *user, status int, f *taskStartForm) error {
	ctx := r.Context()
	page, err := s.orch.Tasks(ctx, u.ID, vault.ListOptions{Cursor: r.URL.Query().Get("cursor"), Limit: pageSize})
	if err != nil {
		return err
	}
	if f.Profiles, err = s.allProfiles(ctx, u.ID); err != nil {
		return err
	}
	names := profileNames(f.Profiles)
	data := tasksPage{Form: f}
	for _, t := range page.Items {
		data.Tasks = append(data.Tasks, taskRow{TaskView: t, ProfileName: names[t.ProfileID], Prompt: shortPrompt(t.Prompt)})
	}
	if page.NextCursor != "" {
		data.Next = "/tasks?" + url.Values{"cursor": {page.NextCursor}}.Encode()
	}
	s.render(w, r, status, "tasks", view{Title: "Tasks", Nav: "tasks", User: u, Flash: flash(r), Data: data})
	return nil
}

func taskField(field string) string {
	switch field {
	case "profile_id", "prompt":
		return field
	}
	return ""
}

func (s *server) taskCreate(w http.ResponseWriter, r *http.Request, u *user) error {
	f := &taskStartForm{
		CSRF: u.CSRF, ProfileID: r.PostForm.Get("profile_id"), Prompt: r.PostForm.Get("prompt"),
		Errors: map[string]string{},
	}
	t, err := s.orch.CreateTask(r.Context(), u.ID, f.ProfileID, f.Prompt)
	if err == nil {
		http.Redirect(w, r, "/tasks/"+t.ID+"?ok=task-started", http.StatusSeeOther)
		return nil
	}
	if !addError(f.Errors, &f.FormError, err, taskField) {
		return err
	}
	return s.renderTasks(w, r, u, refuseStatus(err), f)
}

func (s *server) taskShow(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx := r.Context()
	t, err := s.orch.Task(ctx, u.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	d := taskPage{Task: t, CSRF: u.CSRF, Follow: !t.Status.Done()}
	if p, err := s.vault.Profile(ctx, u.ID, t.ProfileID); err == nil {
		d.ProfileName = p.Name
	} else if vault.ErrorCode(err) != vault.ENOTFOUND {
		return err
	}
	// The stored log is already masked by the orchestrator.
	var buf []byte
	err = s.orch.Logs(ctx, u.ID, t.ID, false, func(chunk []byte) error {
		buf = append(buf, chunk...)
		if len(buf) > 2*maxPageLog {
			buf = append(buf[:0], buf[len(buf)-maxPageLog:]...)
			d.LogCut = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(buf) > maxPageLog {
		buf, d.LogCut = buf[len(buf)-maxPageLog:], true
	}
	d.Log = string(buf)
	v := view{Title: "Task " + t.ID, Nav: "tasks", User: u, Data: d}
	// The notice of a start, stop or restart holds only until the task
	// has finished: a finished task's page says how it ended instead.
	if !t.Status.Done() {
		v.Flash = flash(r)
	}
	if d.Follow {
		v.Refresh, v.RefreshURL = followRefresh, "/tasks/"+t.ID
	}
	s.render(w, r, http.StatusOK, "task", v)
	return nil
}

// taskLogs answers a task's masked log as text; with follow=1 it streams
// until the task is finished. The page's script reads it.
func (s *server) taskLogs(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx := r.Context()
	id := r.PathValue("id")
	if _, err := s.orch.Task(ctx, u.ID, id); err != nil {
		return err
	}
	follow := r.URL.Query().Get("follow") == "1"
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rc := http.NewResponseController(w)
	// The server's WriteTimeout counts from the request and would cut a
	// follower off; a follower stays as long as the task runs, and each
	// write gets its own deadline instead.
	renew := func() {
		if follow {
			_ = rc.SetWriteDeadline(time.Now().Add(followWriteTimeout))
		}
	}
	renew()
	w.WriteHeader(http.StatusOK)
	if follow {
		_ = rc.Flush()
	}
	var writeErr error
	err := s.orch.Logs(ctx, u.ID, id, follow, func(chunk []byte) error {
		renew()
		if _, writeErr = w.Write(chunk); writeErr != nil {
			return writeErr
		}
		if follow {
			_ = rc.Flush()
		}
		return nil
	})
	if err != nil && writeErr == nil && ctx.Err() == nil {
		s.log.Error("stream task log", "request_id", requestID(ctx), "task_id", id, "error", err)
	}
	return nil // the status is sent: nothing more to answer
}

func (s *server) taskStop(w http.ResponseWriter, r *http.Request, u *user) error {
	id := r.PathValue("id")
	if _, err := s.orch.StopTask(r.Context(), u.ID, id); err != nil {
		return err
	}
	http.Redirect(w, r, "/tasks/"+id+"?ok=task-stopping", http.StatusSeeOther)
	return nil
}

func (s *server) taskRestart(w http.ResponseWriter, r *http.Request, u *user) error {
	id := r.PathValue("id")
	if _, err := s.orch.RestartTask(r.Context(), u.ID, id); err != nil {
		return err
	}
	http.Redirect(w, r, "/tasks/"+id+"?ok=task-restarting", http.StatusSeeOther)
	return nil
}

// Summary lists the form's errors for the summary above it.
func (f *taskStartForm) Summary() []summaryItem {
	var out []summaryItem
	if m := f.Errors["profile_id"]; m != "" {
		out = append(out, summaryItem{ID: "task-profile", Label: "Profile", Message: m})
	}
	if m := f.Errors["prompt"]; m != "" {
		out = append(out, summaryItem{ID: "task-prompt", Label: "Prompt", Message: m})
	}
	if f.FormError != "" {
		out = append(out, summaryItem{Message: f.FormError})
	}
	return out
}

package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/peterbourgon/ff/v3/ffcli"

	vclient "github.com/envvault/envvault/client"
)

// The client's tasks commands.
const (
	cmdTasksStart   = "tasks start"
	cmdTasksList    = "tasks list"
	cmdTasksGet     = "tasks get"
	cmdTasksStop    = "tasks stop"
	cmdTasksRestart = "tasks restart"
	cmdTasksLogs    = "tasks logs"
)

// tasksCommand is `envvault tasks`.
func (m *Main) tasksCommand() *ffcli.Command {
	return m.group(&ffcli.Command{
		Name:       "tasks",
		ShortUsage: "envvault tasks start|list|get|stop|restart|logs [flags]",
		ShortHelp:  "run a profile's container with its secrets, and follow it",
		Subcommands: []*ffcli.Command{
			m.tasksStartCommand(), m.tasksListCommand(), m.taskIDCommand(cmdTasksGet, "show a task: status, exit code, where each env name came from"),
			m.taskIDCommand(cmdTasksStop, "stop a task's container"), m.taskIDCommand(cmdTasksRestart, "run a task again, with the secrets as they are now"),
			m.tasksLogsCommand(),
		},
	})
}

// tasksStartCommand is `envvault tasks start PROFILE`.
func (m *Main) tasksStartCommand() *ffcli.Command {
	c, fs := m.remoteCommand(cmdTasksStart)
	fs.StringVar(&c.Client.Prompt, "prompt", "", "given to the container as TASK_PROMPT")
	fs.BoolVar(&c.Client.Follow, "follow", false, "print the task's logs until it finishes; exit 1 if it fails")
	return m.remoteLeaf(c, fs, 1, 1, &ffcli.Command{
		ShortUsage: "envvault tasks start PROFILE [--prompt TEXT] [--follow] [--json]",
		ShortHelp:  "queue a task of a profile (by name or id)",
	})
}

// runTasksStart is `envvault tasks start`.
func (m *Main) runTasksStart(ctx context.Context, api *vclient.Client) error {
	cc := &m.Config.Client
	p, err := m.profile(ctx, api, cc.Args[0])
	if err != nil {
		return err
	}
	body := vclient.CreateTask{ProfileId: p.Id}
	if cc.set["prompt"] {
		body.Prompt = &cc.Prompt
	}
	t, err := api.CreateTask(ctx, body)
	if err != nil {
		return err
	}
	if !cc.Follow {
		if cc.JSON {
			return m.printJSON(t)
		}
		_, err = fmt.Fprintf(m.Stdout, "Queued task %s of profile %s.\n", t.Id, p.Name)
		return err
	}
	fmt.Fprintf(m.Stderr, "Queued task %s of profile %s; its logs follow.\n", t.Id, p.Name)
	return m.follow(ctx, api, t.Id)
}

// follow prints a task's logs until it finishes, then its outcome on
// stderr (and the task on stdout with --json); an error if it failed.
func (m *Main) follow(ctx context.Context, api *vclient.Client, id string) error {
	if err := api.GetTaskLogs(ctx, id, true, m.Stdout); err != nil {
		return err
	}
	t, err := api.GetTask(ctx, id)
	if err != nil {
		return err
	}
	if m.Config.Client.JSON {
		if err := m.printJSON(t); err != nil {
			return err
		}
	}
	fmt.Fprintf(m.Stderr, "Task %s %s.\n", t.Id, outcome(t))
	if t.Status != vclient.Succeeded {
		return fmt.Errorf("task %s %s", t.Id, outcome(t))
	}
	return nil
}

// outcome says how a task ended.
func outcome(t *vclient.Task) string {
	s := string(t.Status)
	if t.ExitCode != nil {
		s += fmt.Sprintf(" (exit code %d)", *t.ExitCode)
	}
	if t.Error != nil {
		s += ": " + *t.Error
	}
	return s
}

// tasksListCommand is `envvault tasks list`.
func (m *Main) tasksListCommand() *ffcli.Command {
	c, fs := m.remoteCommand(cmdTasksList)
	return m.remoteLeaf(c, fs, 0, 0, &ffcli.Command{
		ShortUsage: "envvault tasks list [--json]",
		ShortHelp:  "list your tasks, newest first",
	})
}

// runTasksList is `envvault tasks list`.
func (m *Main) runTasksList(ctx context.Context, api *vclient.Client) error {
	tasks, err := vclient.All(ctx, func(ctx context.Context, cursor string) (vclient.Page[vclient.Task], error) {
		limit := 200
		return api.ListTasks(ctx, &vclient.ListTasksParams{Limit: &limit, Cursor: nonEmpty(cursor)})
	})
	if err != nil {
		return err
	}
	if m.Config.Client.JSON {
		return m.printJSON(nonNil(tasks))
	}
	names, err := m.profileNames(ctx, api)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tPROFILE\tSTATUS\tEXIT\tATTEMPT\tCREATED")
	for _, t := range tasks {
		exit := "-"
		if t.ExitCode != nil {
			exit = fmt.Sprint(*t.ExitCode)
		}
		profile := names[t.ProfileId]
		if profile == "" {
			profile = t.ProfileId // deleted since
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\n", t.Id, profile, t.Status, exit, t.Attempt, t.CreatedAt.Format("2006-01-02 15:04:05Z"))
	}
	return w.Flush()
}

// taskIDCommand is `envvault tasks get|stop|restart ID`.
func (m *Main) taskIDCommand(command, help string) *ffcli.Command {
	c, fs := m.remoteCommand(command)
	return m.remoteLeaf(c, fs, 1, 1, &ffcli.Command{
		ShortUsage: "envvault " + command + " TASK-ID [--json]",
		ShortHelp:  help,
	})
}

// runTasksGet is `envvault tasks get`.
func (m *Main) runTasksGet(ctx context.Context, api *vclient.Client) error {
	t, err := api.GetTask(ctx, m.Config.Client.Args[0])
	if err != nil {
		return err
	}
	return m.printTask(t, "")
}

// runTasksStop is `envvault tasks stop`.
func (m *Main) runTasksStop(ctx context.Context, api *vclient.Client) error {
	t, err := api.StopTask(ctx, m.Config.Client.Args[0])
	if err != nil {
		return err
	}
	return m.printTask(t, "Stopping")
}

// runTasksRestart is `envvault tasks restart`.
func (m *Main) runTasksRestart(ctx context.Context, api *vclient.Client) error {
	t, err := api.RestartTask(ctx, m.Config.Client.Args[0])
	if err != nil {
		return err
	}
	return m.printTask(t, "Restarting")
}

// printTask prints a task as JSON or text; verb heads the text when not "".
func (m *Main) printTask(t *vclient.Task, verb string) error {
	if m.Config.Client.JSON {
		return m.printJSON(t)
	}
	if verb != "" {
		_, err := fmt.Fprintf(m.Stdout, "%s task %s (status %s).\n", verb, t.Id, t.Status)
		return err
	}
	w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "id:\t%s\nprofile:\t%s\nstatus:\t%s\nattempt:\t%d\nprompt:\t%s\ncreated:\t%s\n",
		t.Id, t.ProfileId, outcome(t), t.Attempt, t.Prompt, t.CreatedAt.Format("2006-01-02 15:04:05Z"))
	for _, src := range t.EnvSources {
		if s, err := src.AsEnvSource0(); err == nil && s.SecretId != "" {
			fmt.Fprintf(w, "env:\t%s from secret %s (scope %s, version %d)\n", s.Name, s.SecretId, s.Scope, s.Version)
		} else if s, err := src.AsEnvSource1(); err == nil {
			fmt.Fprintf(w, "env:\t%s from %s\n", s.Name, s.Source)
		}
	}
	return w.Flush()
}

// tasksLogsCommand is `envvault tasks logs ID`.
func (m *Main) tasksLogsCommand() *ffcli.Command {
	c, fs := m.remoteCommand(cmdTasksLogs)
	fs.BoolVar(&c.Client.Follow, "follow", false, "keep printing until the task finishes")
	fs.BoolVar(&c.Client.Follow, "f", false, "short for --follow")
	return m.remoteLeaf(c, fs, 1, 1, &ffcli.Command{
		ShortUsage: "envvault tasks logs TASK-ID [-f|--follow]",
		ShortHelp:  "print a task's logs, secret values masked",
	})
}

// runTasksLogs is `envvault tasks logs`.
func (m *Main) runTasksLogs(ctx context.Context, api *vclient.Client) error {
	return api.GetTaskLogs(ctx, m.Config.Client.Args[0], m.Config.Client.Follow, m.Stdout)
}

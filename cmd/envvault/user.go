package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
)

// userCommand is `envvault user`: create.
func (m *Main) userCommand() *ffcli.Command {
	return m.group(&ffcli.Command{
		Name:        "user",
		ShortUsage:  "envvault user create NAME [--json] | envvault user list [--json]",
		ShortHelp:   "create users (each name once) and list them",
		Subcommands: []*ffcli.Command{m.userCreateCommand(), m.userListCommand()},
	})
}

// userCreateCommand is `envvault user create NAME`.
func (m *Main) userCreateCommand() *ffcli.Command {
	c, fs := m.newCommand(cmdUserCreate, "text")
	fs.BoolVar(&c.JSON, "json", false, `print {"user_id":"usr_…","token":"…"} instead of text`)
	return m.leaf(c, fs, &ffcli.Command{
		ShortUsage: "envvault user create [flags] NAME [--json]",
		ShortHelp:  "create a user and print its id and a new API token",
		LongHelp: `Creates a user in the store that serve and dev use (the same --data-dir,
DATABASE_URL) and prints its id and API token. The token is shown only this
once; only its SHA-256 is stored.

The master key is ENCRYPTION_KEY. When it is unset and the store is the
SQLite file of --data-dir, the development key <data-dir>/dev.key that
"envvault dev" made is used, so that users can be added to a dev vault.

` + envHelp + "\n\n" + keyHelp,
		Exec: func(_ context.Context, args []string) error {
			if len(args) == 0 {
				return fmt.Errorf("envvault user create needs a NAME: envvault user create alice")
			}
			c.UserName = args[0]
			// Go's flag package stops at the first argument, so parse
			// what follows NAME too: `user create alice --json`.
			if err := fs.Parse(args[1:]); err != nil {
				return err
			}
			if fs.NArg() > 0 {
				return fmt.Errorf("envvault user create takes one NAME, got also %q", fs.Args())
			}
			m.Config = *c
			return nil
		},
	})
}

func (m *Main) runUserCreate(ctx context.Context) error {
	svc, _, err := m.openService(ctx)
	if err != nil {
		return err
	}
	u, token, err := svc.CreateUniqueUser(ctx, m.Config.UserName)
	if err != nil {
		return fmt.Errorf("create user %q: %w", m.Config.UserName, err)
	}
	if m.Config.JSON {
		return writeJSON(m.Stdout, map[string]string{"user_id": u.ID, "token": token})
	}
	_, err = fmt.Fprintf(m.Stdout, "Created user %q.\n\n  user id: %s\n  token:   %s\n\n"+
		"The token is shown only this once (only its SHA-256 is stored). Use it as\n"+
		"  curl -H \"Authorization: Bearer $TOKEN\" http://HOST:PORT/v1/secrets\n",
		u.Name, u.ID, token)
	return err
}

// cmdUserList is `envvault user list`.
const cmdUserList = "user list"

// userListCommand is `envvault user list`.
func (m *Main) userListCommand() *ffcli.Command {
	c, fs := m.newCommand(cmdUserList, "text")
	fs.BoolVar(&c.JSON, "json", false, `print [{"id":"usr_…","name":"…","created_at":"…"}] instead of a table`)
	return m.leaf(c, fs, &ffcli.Command{
		ShortUsage: "envvault user list [--json]",
		ShortHelp:  "list the users of the store: name, id, creation; never a token",
		LongHelp:   "Lists every user of the store that serve and dev use, oldest first.\n\n" + envHelp + "\n\n" + keyHelp,
	})
}

func (m *Main) runUserList(ctx context.Context) error {
	svc, _, err := m.openService(ctx)
	if err != nil {
		return err
	}
	users, err := svc.Users(ctx)
	if err != nil {
		return err
	}
	if m.Config.JSON {
		out := make([]map[string]string, len(users))
		for i, u := range users {
			out[i] = map[string]string{"id": u.ID, "name": u.Name, "created_at": u.CreatedAt.Format(time.RFC3339Nano)}
		}
		return writeJSON(m.Stdout, out)
	}
	w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tID\tCREATED")
	for _, u := range users {
		fmt.Fprintf(w, "%s\t%s\t%s\n", u.Name, u.ID, u.CreatedAt.Format("2006-01-02 15:04:05Z"))
	}
	return w.Flush()
}

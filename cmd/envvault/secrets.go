package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/envvault/envvault/internal/dotenv"
	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

// The secrets commands.
const (
	cmdSecretsImport = "admin secrets import"
	cmdSecretsList   = "admin secrets list"
)

// secretsEnvFlags are the flags of the secrets commands that, as in every
// other command, may also come from the environment variable of their
// upper-cased name. --user, --scope and --profile never do: $USER is set
// in every shell.
var secretsEnvFlags = []string{"data-dir", "log-format", "log-level", "allow-names", "locked-names"}

// adminCommand is `envvault admin`: the secrets commands that run on the
// server, on the store with the master key, for any user. A user's own
// secrets are the client's `envvault secrets` (secrets_remote.go).
func (m *Main) adminCommand() *ffcli.Command {
	return m.group(&ffcli.Command{
		Name:        "admin",
		ShortUsage:  "envvault admin secrets import|list [flags]",
		ShortHelp:   "on the server, for any user: import secrets from a dotenv file, list them (store and master key)",
		Subcommands: []*ffcli.Command{m.secretsCommand()},
	})
}

// secretsCommand is `envvault admin secrets`: import and list. They take
// the store and key settings serve takes.
func (m *Main) secretsCommand() *ffcli.Command {
	return m.group(&ffcli.Command{
		Name:        "secrets",
		ShortUsage:  "envvault admin secrets import|list [flags]",
		ShortHelp:   "import a user's secrets from a dotenv file; list their names",
		Subcommands: []*ffcli.Command{m.secretsImportCommand(), m.secretsListCommand()},
	})
}

// secretsImportCommand is `envvault secrets import FILE`.
func (m *Main) secretsImportCommand() *ffcli.Command {
	c, fs := m.newCommand(cmdSecretsImport, "text")
	userFlag(fs, c)
	fs.Func("scope", "all (every profile of the user) or agents (only the --profile ones); required", func(s string) error {
		if s != string(vault.ScopeAll) && s != string(vault.ScopeAgents) {
			return errors.New("must be all or agents")
		}
		c.Scope = s
		return nil
	})
	fs.Func("profile", "with --scope agents: a profile id (prof_…) to grant; repeat for several", func(s string) error {
		c.ProfileIDs = append(c.ProfileIDs, s)
		return nil
	})
	fs.Func("allow-names", "comma-separated secret names to take off the denied list, as serve's --allow-names", func(s string) error {
		c.AllowNames = append(c.AllowNames, splitNames(s)...)
		return nil
	})
	fs.Func("locked-names", "comma-separated names no secret may take, as serve's --locked-names (env BASELINE_LOCKED_NAMES)", func(s string) error {
		c.lockedByFlag = true
		c.LockedNames = append(c.LockedNames, splitNames(s)...)
		return nil
	})
	return m.secretsLeaf(c, fs, &ffcli.Command{
		ShortUsage: "envvault admin secrets import FILE.env --user NAME-or-ID --scope all|agents [--profile prof_…]...",
		ShortHelp:  "create or update many secrets from a dotenv file, all or nothing",
		LongHelp: `Creates or updates the user's secrets from the NAME=value lines of a dotenv
file (the grammar of --baseline-env-file, in the README), in one transaction:
all of them, or, if any line is bad, none. Every bad line is reported with
its number and the reason, never with its value.

With --scope all a line updates the user's secret of that name given to all
profiles, or creates one. With --scope agents it updates the user's secret
of that name granted to exactly the --profile profiles, or creates one. A
secret that already holds the value is left as it is; an updated one gets a
new version, the old value kept in its history.

Values are never printed. ` + envHelp + " --user, --scope and\n--profile are only ever flags.\n\n" + keyHelp,
		Exec: func(_ context.Context, args []string) error {
			if len(args) == 0 {
				return errors.New("envvault admin secrets import needs a FILE: envvault admin secrets import app.env --user alice --scope all")
			}
			c.ImportFile = args[0]
			if err := m.selectSecrets(fs, c, args[1:]); err != nil {
				return err
			}
			if c.Scope == "" {
				return errors.New("envvault admin secrets import needs --scope all or --scope agents")
			}
			return nil
		},
	})
}

// secretsListCommand is `envvault secrets list`.
func (m *Main) secretsListCommand() *ffcli.Command {
	c, fs := m.newCommand(cmdSecretsList, "text")
	userFlag(fs, c)
	return m.secretsLeaf(c, fs, &ffcli.Command{
		ShortUsage: "envvault admin secrets list --user NAME-or-ID [flags]",
		ShortHelp:  "list a user's secrets: names, scopes and profiles, never values",
		LongHelp:   "Prints a table of the user's secrets: name, scope, the profiles an `agents`\nsecret is granted to (by name), version, last change and id. Never a value.\n\n" + envHelp + "\n\n" + keyHelp,
		Exec: func(_ context.Context, args []string) error {
			return m.selectSecrets(fs, c, args)
		},
	})
}

// secretsLeaf is leaf for the secrets commands, whose flags are read from
// the environment only by selectSecrets: --user must never come from
// $USER.
func (m *Main) secretsLeaf(c *Config, fs *flag.FlagSet, cmd *ffcli.Command) *ffcli.Command {
	cmd = m.leaf(c, fs, cmd)
	cmd.Options = nil
	return cmd
}

// selectSecrets reads the flags after the file name too (Go's flag
// package stops at the first argument), then the environment, checks what
// is required, and records c as the command Run carries out.
func (m *Main) selectSecrets(fs *flag.FlagSet, c *Config, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("envvault %s: unexpected arguments %q", c.Command, fs.Args())
	}
	if err := flagsFromEnv(fs); err != nil {
		return err
	}
	if strings.TrimSpace(c.UserID) == "" {
		return fmt.Errorf("envvault %s needs --user, the name or id (%s…) of the user whose secrets these are", c.Command, vault.PrefixUser)
	}
	m.Config = *c
	return nil
}

func userFlag(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&c.UserID, "user", "", "name or id (usr_…) of the user whose secrets these are; required")
}

// flagsFromEnv sets each of secretsEnvFlags not given on the command line
// from the environment variable of its upper-cased name, as ff does for
// every other command (from the process environment too).
func flagsFromEnv(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, name := range secretsEnvFlags {
		env := strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		if v := os.Getenv(env); v != "" && !given[name] && fs.Lookup(name) != nil {
			if err := fs.Set(name, v); err != nil {
				return fmt.Errorf("%s: %w", env, err)
			}
		}
	}
	return nil
}

// runSecretsImport is `envvault secrets import`.
func (m *Main) runSecretsImport(ctx context.Context) error {
	c := &m.Config
	data, err := os.ReadFile(c.ImportFile)
	if err != nil {
		return fmt.Errorf("secrets import: %w", err) // names the file
	}
	// The locked names are the operator's, as serve applies them.
	baseline, err := orchestrator.LoadBaseline("", c.LockedNames)
	if err != nil {
		return err
	}
	m.baseline.Locked = baseline.Locked
	svc, _, err := m.openService(ctx)
	if err != nil {
		return err
	}
	u, err := svc.UserByRef(ctx, c.UserID)
	if err != nil {
		return err
	}
	// dotenv.Import holds the rules and messages of every import (this
	// command, the API's, the dashboard's).
	res, err := dotenv.Import(ctx, svc, u.ID, data, vault.Scope(c.Scope), c.ProfileIDs)
	var ie *vault.ImportError
	if err == nil {
		_, err = fmt.Fprintf(m.Stdout, "Imported %s for user %s (scope %s): %d created, %d updated, %d unchanged.\n",
			c.ImportFile, u.ID, c.Scope, res.Created, res.Updated, res.Unchanged)
		return err
	}
	if !errors.As(err, &ie) {
		return fmt.Errorf("%s: %w", c.ImportFile, err)
	}
	bad := ie.Lines
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d bad lines, nothing imported:", c.ImportFile, len(bad))
	for _, l := range bad {
		fmt.Fprintf(&b, "\n  line %d: %s", l.Line, l.Message)
	}
	// The exit code of the lines' code: invalid (4) or conflict (5).
	return &exitError{code: exitCode(err, exitInvalid), err: errors.New(b.String())}
}

// runSecretsList is `envvault secrets list`.
func (m *Main) runSecretsList(ctx context.Context) error {
	svc, _, err := m.openService(ctx)
	if err != nil {
		return err
	}
	u, err := svc.UserByRef(ctx, m.Config.UserID)
	if err != nil {
		return err
	}
	userID := u.ID
	secrets, err := walkPages(func(cursor string) (vault.Page[*vault.Secret], error) {
		return svc.Secrets(ctx, userID, vault.ListOptions{Cursor: cursor, Limit: vault.MaxPageLimit})
	})
	if err != nil {
		return err
	}
	profiles, err := walkPages(func(cursor string) (vault.Page[*vault.Profile], error) {
		return svc.Profiles(ctx, userID, vault.ListOptions{Cursor: cursor, Limit: vault.MaxPageLimit})
	})
	if err != nil {
		return err
	}
	names := make(map[string]string, len(profiles))
	for _, p := range profiles {
		names[p.ID] = p.Name
	}
	w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tSCOPE\tPROFILES\tVERSION\tUPDATED\tID")
	for _, s := range secrets {
		granted := "(all)"
		if s.Scope == vault.ScopeAgents {
			granted = "(none)" // its profiles were deleted
			if len(s.ProfileIDs) > 0 {
				list := make([]string, len(s.ProfileIDs))
				for i, id := range s.ProfileIDs {
					list[i] = names[id]
				}
				slices.Sort(list)
				granted = strings.Join(list, ",")
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\n", s.Name, s.Scope, granted, s.Version, s.UpdatedAt.Format("2006-01-02 15:04:05Z"), s.ID)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if len(secrets) == 0 {
		_, err = fmt.Fprintf(m.Stdout, "No secrets for user %s.\n", userID)
	}
	return err
}

// walkPages returns every item of a list, page after page.
func walkPages[T any](page func(cursor string) (vault.Page[T], error)) ([]T, error) {
	var all []T
	cursor := ""
	for {
		p, err := page(cursor)
		if err != nil {
			return nil, err
		}
		all = append(all, p.Items...)
		if p.NextCursor == "" {
			return all, nil
		}
		cursor = p.NextCursor
	}
}

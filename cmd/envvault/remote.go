package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	vclient "github.com/envvault/envvault/client"
)

// The client commands (secrets, profiles, tasks, login) speak to a server
// over HTTP with the Go client of package client. They never open a store
// nor read a master key. The server and token come from ENVVAULT_URL and
// ENVVAULT_TOKEN, or else from the file `envvault login` wrote; the token
// is never a flag, so that it stays out of ps and shell history.

// clientConfig is what a client command was told.
type clientConfig struct {
	remote bool // speaks to a server: needs URL and Token
	local  bool // help, version, completion: needs nothing

	URL   string   // ENVVAULT_URL, or the login file's
	Token redacted // ENVVAULT_TOKEN, or the login file's

	JSON bool     // --json
	Args []string // the positional arguments
	// set holds the flags given on the command line, for updates that
	// change only what was given.
	set map[string]bool

	Scope       string   // secrets set --scope
	Profiles    []string // secrets set --profile (id or name), repeatable
	Description string   // secrets set --description

	Name     string   // profiles update --name
	Image    string   // profiles create|update --image
	Env      []string // profiles --env NAME=VALUE, repeatable
	Setup    []string // profiles --setup LINE, repeatable
	FromJSON string   // profiles --from-json FILE|-
	Command  []string // profiles: the words after --

	Prompt string // tasks start --prompt
	Follow bool   // tasks start --follow, tasks logs --follow

	ExpiresIn   time.Duration // tokens create --expires-in
	ConfirmLast bool          // tokens revoke --confirm-last
}

// remoteCommand returns a Config for a client command and its flag set,
// with --json.
func (m *Main) remoteCommand(command string) (*Config, *flag.FlagSet) {
	c := &Config{Command: command}
	c.Client.remote = true
	fs := m.flagSet("envvault " + command)
	fs.BoolVar(&c.Client.JSON, "json", false, "print JSON (the API's objects) instead of text")
	noUserFlag(fs, command)
	return c, fs
}

// remoteLeaf completes cmd as the client command that selects c: it takes
// between minArgs and maxArgs positional arguments (maxArgs < 0: any
// number), flags before, between or after them, and after "--" only
// arguments (c.Client.Command).
func (m *Main) remoteLeaf(c *Config, fs *flag.FlagSet, minArgs, maxArgs int, cmd *ffcli.Command) *ffcli.Command {
	cmd.Name = c.Command[strings.LastIndexByte(c.Command, ' ')+1:]
	cmd.FlagSet = fs
	cmd.LongHelp = strings.TrimSpace(cmd.LongHelp + "\n\n" + remoteHelp)
	check := cmd.Exec
	cmd.Exec = func(ctx context.Context, args []string) error {
		if err := parseInterleaved(fs, c, args); err != nil {
			return err
		}
		n := len(c.Client.Args)
		if n < minArgs || (maxArgs >= 0 && n > maxArgs) {
			return usageError(fmt.Errorf("usage: %s", cmd.ShortUsage))
		}
		if check != nil {
			if err := check(ctx, c.Client.Args); err != nil {
				return err
			}
		}
		m.Config = *c
		return nil
	}
	return cmd
}

// parseInterleaved parses flags anywhere among args (Go's flag package
// stops at the first argument), collecting the arguments in c.Client.Args;
// the words after "--" go to c.Client.Command.
func parseInterleaved(fs *flag.FlagSet, c *Config, args []string) error {
	for {
		if err := fs.Parse(args); err != nil {
			return usageError(fmt.Errorf("envvault %s: %w", c.Command, err))
		}
		rest := fs.Args()
		if consumed := args[:len(args)-len(rest)]; len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			c.Client.Command = rest
			break
		}
		if len(rest) == 0 {
			break
		}
		c.Client.Args = append(c.Client.Args, rest[0])
		args = rest[1:]
	}
	c.Client.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { c.Client.set[f.Name] = true })
	return nil
}

const remoteHelp = `The server and token are ENVVAULT_URL and ENVVAULT_TOKEN, or else those
saved by "envvault login". The token is never a flag.

` + exitHelp

// readClientEnv reads the server and token of a client command:
// ENVVAULT_URL and ENVVAULT_TOKEN, each else from the login file.
func (m *Main) readClientEnv() error {
	c := &m.Config.Client
	c.URL = strings.TrimSpace(m.Getenv("ENVVAULT_URL"))
	c.Token = redacted(strings.TrimSpace(m.Getenv("ENVVAULT_TOKEN")))
	if m.Config.Command == cmdLogin || m.Config.Command == cmdLogout {
		return nil
	}
	if c.URL == "" || c.Token == "" {
		saved, path, err := readLogin()
		if err != nil {
			return err
		}
		if c.URL == "" {
			c.URL = saved.URL
		}
		if c.Token == "" && (saved.URL == c.URL) {
			// A saved token goes only to the server it was saved for.
			c.Token = redacted(saved.Token)
		}
		if c.URL == "" {
			return authError(fmt.Errorf("no server: set ENVVAULT_URL (e.g. http://127.0.0.1:8080) or run envvault login (looked for %s)", path))
		}
		if c.Token == "" {
			return authError(fmt.Errorf("no token for %s: set ENVVAULT_TOKEN or run envvault login", c.URL))
		}
	}
	return nil
}

// client returns the API client of the configured server and token.
func (m *Main) client() (*vclient.Client, error) {
	version, _ := buildVersion()
	c, err := vclient.New(m.Config.Client.URL, string(m.Config.Client.Token), vclient.Options{
		HTTPClient: &http.Client{}, // no overall timeout: logs --follow lasts as long as its task; a signal ends it
		UserAgent:  "envvault-cli/" + version,
	})
	if err != nil {
		return nil, invalidError(fmt.Errorf("ENVVAULT_URL: %w", err))
	}
	return c, nil
}

// runRemote carries out the client command ParseFlags selected, if it is
// one; ok is false otherwise.
func (m *Main) runRemote(ctx context.Context) (ok bool, err error) {
	run := map[string]func(context.Context, *vclient.Client) error{
		cmdSecretsSet:      m.runSecretsSet,
		cmdSecretsLs:       m.runSecretsLs,
		cmdSecretsGet:      m.runSecretsGet,
		cmdSecretsDelete:   m.runSecretsDelete,
		cmdSecretsVersions: m.runSecretsVersions,
		cmdSecretsRollback: m.runSecretsRollback,
		cmdSecretsImportC:  m.runSecretsImportRemote,
		cmdTokensCreate:    m.runTokensCreate,
		cmdTokensList:      m.runTokensList,
		cmdTokensRevoke:    m.runTokensRevoke,
		cmdProfilesCreate:  m.runProfilesCreate,
		cmdProfilesList:    m.runProfilesList,
		cmdProfilesGet:     m.runProfilesGet,
		cmdProfilesUpdate:  m.runProfilesUpdate,
		cmdProfilesDelete:  m.runProfilesDelete,
		cmdProfilesEnv:     m.runProfilesEnv,
		cmdProfilesKeys:    m.runProfilesKeys,
		cmdTasksStart:      m.runTasksStart,
		cmdTasksList:       m.runTasksList,
		cmdTasksGet:        m.runTasksGet,
		cmdTasksStop:       m.runTasksStop,
		cmdTasksRestart:    m.runTasksRestart,
		cmdTasksLogs:       m.runTasksLogs,
		cmdLogin:           m.runLogin,
	}[m.Config.Command]
	if run == nil {
		return false, nil
	}
	if m.Config.Command == cmdLogin {
		// login makes its own client, of the server it is told.
		err = m.runLogin(ctx, nil)
	} else {
		var c *vclient.Client
		if c, err = m.client(); err != nil {
			return true, err
		}
		err = run(ctx, c)
	}
	var ae *vclient.APIError
	if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
		err = &exitError{code: exitAuth, err: fmt.Errorf("%w (the server refused the token: check ENVVAULT_TOKEN, or run envvault login)", err)}
	}
	return true, err
}

// printJSON writes v as indented JSON to stdout.
func (m *Main) printJSON(v any) error {
	return writeJSON(m.Stdout, v)
}

// stdinFile is m.Stdin as a file at a terminal, or nil.
func (m *Main) stdinTerminal() (*os.File, bool) {
	f, ok := m.Stdin.(*os.File)
	if !ok {
		return nil, false
	}
	return f, isTerminal(f)
}

// printDeleted says that the kind (secret, profile) name with id was
// deleted: {"id","name","deleted":true} with --json.
func (m *Main) printDeleted(kind, name, id string) error {
	if m.Config.Client.JSON {
		return m.printJSON(map[string]any{"id": id, "name": name, "deleted": true})
	}
	_, err := fmt.Fprintf(m.Stdout, "Deleted %s %s (%s).\n", kind, name, id)
	return err
}

// noUserFlag gives fs a --user flag, left out of help, that refuses itself
// with where it belongs: a client command acts as the token's user; --user
// is the server-side commands'.
func noUserFlag(fs *flag.FlagSet, command string) {
	fs.Func("user", "", func(string) error {
		return fmt.Errorf("envvault %s acts as the user of ENVVAULT_TOKEN (or envvault login) and takes no --user; "+
			"on the server, for any user: envvault admin %s --user NAME", command, command)
	})
}

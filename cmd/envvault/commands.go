package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffcli"
)

// The command tree. Each command has a builder in the file of its feature
// (server.go: dev and serve, worker.go: runner, keys.go: keys and keygen,
// ...) that declares its flags and help; the builders share the helpers
// below. A command's Exec only records what was selected in Main.Config;
// Main.Run does the work.

// errUsage is a command line that names no command; the usage has been
// printed.
var errUsage = errors.New("no command given (see envvault --help)")

// commands is the root command, holding every command in the order of
// `envvault --help`.
func (m *Main) commands() *ffcli.Command {
	root := m.group(&ffcli.Command{
		Name:       "envvault",
		ShortUsage: "envvault <command> [flags]",
		ShortHelp:  "envvault keeps secrets encrypted and gives each agent profile the ones granted to it",
		LongHelp: `Start here:   envvault dev         (a development vault in ./data, no setup)
Production:   envvault serve       (needs ENCRYPTION_KEY; DATABASE_URL for PostgreSQL)
Client:       envvault login, then envvault secrets set NAME < value-file`,
		Subcommands: []*ffcli.Command{
			// Client commands (help.go: commandGroups lists each group).
			m.loginCommand(),
			m.logoutCommand(),
			m.remoteSecretsCommand(),
			m.profilesCommand(),
			m.tasksCommand(),
			m.tokensCommand(),
			// Server-side commands.
			m.devCommand(),
			m.serveCommand(),
			m.migrateCommand(),
			m.runnerCommand(),
			m.userCommand(),
			m.keysCommand(),
			m.adminCommand(),
			m.auditCommand(),
			m.keygenCommand(),
			m.benchCommand(),
			// Other commands.
			m.helpCommand(),
			m.versionCommand(),
			m.completionCommand(),
		},
	})
	m.rootFlags(root)
	m.prepareHelp(root)
	return root
}

// envVars are the options of a command whose flags may also be given as
// the environment variable of their upper-cased name.
func envVars() []ff.Option { return []ff.Option{ff.WithEnvVars()} }

// flagSet returns an empty flag set that reports its errors on m.Stderr.
func (m *Main) flagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	return fs
}

// newCommand returns a new Config for command and its flag set, with the
// flags of every command that opens the store: --data-dir, --log-format
// (logFormat by default) and --log-level. Each command fills its own
// Config, so that one command's flag defaults (dev's --addr
// 127.0.0.1:8080) never leak into another's.
func (m *Main) newCommand(command, logFormat string) (*Config, *flag.FlagSet) {
	c := &Config{Command: command}
	fs := m.flagSet("envvault " + command)
	storeFlags(fs, c)
	logFlags(fs, c, logFormat)
	return c, fs
}

// leaf completes cmd, which gives a command's usage and help, as the
// command that selects c: named by the last word of c.Command, with the
// flags of fs, each also read from the environment. Unless cmd has an
// Exec of its own, the command takes no arguments.
func (m *Main) leaf(c *Config, fs *flag.FlagSet, cmd *ffcli.Command) *ffcli.Command {
	cmd.Name = c.Command[strings.LastIndexByte(c.Command, ' ')+1:]
	cmd.FlagSet = fs
	cmd.Options = envVars()
	if cmd.Exec == nil {
		cmd.Exec = m.selected(c)
	}
	return cmd
}

// selected is the Exec of a command that takes no arguments: it records
// cfg as the command Run carries out.
func (m *Main) selected(cfg *Config) func(context.Context, []string) error {
	return func(_ context.Context, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("envvault %s takes no arguments, got %q", cfg.Command, args)
		}
		m.Config = *cfg
		return nil
	}
}

// group completes cmd as a command that only holds subcommands (the root,
// user, keys, ...): it has no flags of its own, and run alone it prints
// its usage and returns errUsage; with an unknown subcommand it says so.
func (m *Main) group(cmd *ffcli.Command) *ffcli.Command {
	path := "envvault"
	if cmd.Name != path {
		path += " " + cmd.Name
	}
	cmd.FlagSet = m.flagSet(path)
	cmd.Options = envVars()
	cmd.Exec = func(_ context.Context, args []string) error {
		switch {
		case len(args) > 0 && path == "envvault":
			return fmt.Errorf("unknown command %q (see envvault --help)", args[0])
		case len(args) > 0:
			return fmt.Errorf("unknown command \"%s %s\" (see %s --help)", cmd.Name, args[0], path)
		}
		fmt.Fprint(m.Stderr, usage(cmd, path))
		return errUsage
	}
	return cmd
}

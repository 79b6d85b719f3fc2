package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
	"text/tabwriter"

	"github.com/peterbourgon/ff/v3/ffcli"
)

// Help, version and shell completion: the conventions of gh, vault and
// doppler. Help goes to stdout with exit 0 (`envvault --help | less`);
// an error of the command line goes to stderr with exit 2 and names the
// help to read. Flags are shown as --flag (Go's flag package takes both).

const (
	cmdHelp       = "help"
	cmdVersion    = "version"
	cmdCompletion = "completion"
)

// Which part of `envvault --help` a command is listed in.
const (
	groupClient = "Client commands (speak to a server over HTTP: ENVVAULT_URL and ENVVAULT_TOKEN, or envvault login)"
	groupServer = "Server-side commands (run on the server: open the store with the master key)"
	groupOther  = "Other commands"
)

// commandGroups is each top-level command's group, by name.
var commandGroups = map[string]string{
	"login": groupClient, "logout": groupClient, "secrets": groupClient, "profiles": groupClient, "tasks": groupClient, "tokens": groupClient,
	"dev": groupServer, "serve": groupServer, "migrate": groupServer, "runner": groupServer, "user": groupServer,
	"keys": groupServer, "admin": groupServer, "audit": groupServer, "keygen": groupServer, "bench": groupServer,
}

// prepareHelp walks the command tree from root: every flag set reports
// nothing itself (ParseFlags prints help, main prints errors) and every
// command's usage is m.usage, which records the command it was asked for.
func (m *Main) prepareHelp(root *ffcli.Command) {
	var walk func(c *ffcli.Command, path string)
	walk = func(c *ffcli.Command, path string) {
		c.FlagSet.SetOutput(io.Discard)
		c.UsageFunc = func(c *ffcli.Command) string {
			m.helpFor = c
			m.helpPath = path
			return ""
		}
		for _, sub := range c.Subcommands {
			walk(sub, path+" "+sub.Name)
		}
	}
	walk(root, "envvault")
}

// find returns the command of root that path names, and its full name.
func find(root *ffcli.Command, path []string) (*ffcli.Command, string, error) {
	c, name := root, "envvault"
	for _, word := range path {
		var next *ffcli.Command
		for _, sub := range c.Subcommands {
			if sub.Name == word {
				next = sub
			}
		}
		if next == nil {
			return nil, "", usageError(fmt.Errorf("unknown command %q (see envvault help)", strings.TrimPrefix(name+" "+word, "envvault ")))
		}
		c, name = next, name+" "+word
	}
	return c, name, nil
}

// usage is the help of command c, whose full name is path.
func usage(c *ffcli.Command, path string) string {
	var b strings.Builder
	if c.ShortHelp != "" {
		fmt.Fprintf(&b, "%s\n\n", c.ShortHelp)
	}
	short := c.ShortUsage
	if short == "" {
		short = path
	}
	fmt.Fprintf(&b, "USAGE\n  %s\n\n", short)
	if c.LongHelp != "" {
		fmt.Fprintf(&b, "%s\n\n", c.LongHelp)
	}
	if len(c.Subcommands) > 0 {
		writeSubcommands(&b, c, path)
	}
	writeFlags(&b, c.FlagSet)
	if len(c.Subcommands) > 0 {
		fmt.Fprintf(&b, "Run \"%s <command> --help\" (or \"envvault help %s<command>\") for a command's flags.\n",
			path, strings.TrimPrefix(path+" ", "envvault "))
	}
	return b.String()
}

// writeSubcommands lists c's subcommands; the root's by group.
func writeSubcommands(b *strings.Builder, c *ffcli.Command, path string) {
	groups := []string{"COMMANDS"}
	if path == "envvault" {
		groups = []string{groupClient, groupServer, groupOther}
	}
	for _, g := range groups {
		tw := tabwriter.NewWriter(b, 0, 2, 2, ' ', 0)
		fmt.Fprintf(b, "%s\n", g)
		for _, sub := range c.Subcommands {
			group, ok := commandGroups[sub.Name]
			if !ok {
				group = groupOther
			}
			if path == "envvault" && group != g {
				continue
			}
			fmt.Fprintf(tw, "  %s\t%s\n", sub.Name, sub.ShortHelp)
		}
		tw.Flush()
		b.WriteString("\n")
	}
}

// writeFlags lists the flags of fs as --name.
func writeFlags(b *strings.Builder, fs *flag.FlagSet) {
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		if f.Usage != "" {
			n++
		}
	})
	if n == 0 {
		return
	}
	b.WriteString("FLAGS\n")
	tw := tabwriter.NewWriter(b, 0, 2, 2, ' ', 0)
	fs.VisitAll(func(f *flag.Flag) {
		if f.Usage == "" {
			return // a flag that only refuses itself (noUserFlag)
		}
		arg, text := flag.UnquoteUsage(f)
		if arg != "" {
			arg = " " + arg
		}
		def := ""
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "[]" && f.DefValue != "0" && f.DefValue != "0s" {
			def = fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(tw, "  --%s%s\t%s%s\n", f.Name, arg, text, def)
	})
	tw.Flush()
	b.WriteString("\n")
}

// helpCommand is `envvault help [command...]`.
func (m *Main) helpCommand() *ffcli.Command {
	c := &Config{Command: cmdHelp, Client: clientConfig{local: true}}
	return &ffcli.Command{
		Name:       "help",
		ShortUsage: "envvault help [command [subcommand]]",
		ShortHelp:  "show the help of envvault or of a command (as --help does)",
		FlagSet:    m.flagSet("envvault help"),
		Exec: func(_ context.Context, args []string) error {
			c.Client.Args = args
			m.Config = *c
			return nil
		},
	}
}

// runHelp prints the help of the command Config.Client.Args names.
func (m *Main) runHelp(context.Context) error {
	root := m.commands()
	c, path, err := find(root, m.Config.Client.Args)
	if err != nil {
		return err
	}
	_, err = io.WriteString(m.Stdout, usage(c, path))
	return err
}

// versionCommand is `envvault version`.
func (m *Main) versionCommand() *ffcli.Command {
	c, fs := &Config{Command: cmdVersion, Client: clientConfig{local: true}}, m.flagSet("envvault version")
	fs.BoolVar(&c.Client.JSON, "json", false, `print {"version":…,"commit":…,"go":…}`)
	return &ffcli.Command{
		Name:       "version",
		ShortUsage: "envvault version [--json]",
		ShortHelp:  "print envvault's version, the commit it was built from and the Go version (also envvault --version)",
		FlagSet:    fs,
		Exec:       m.selected(c),
	}
}

// buildVersion is the module version, VCS commit (with "-dirty" when the
// tree had changes) and Go version of this binary, from its build info.
func buildVersion() (version, commit string) {
	version, commit = "(devel)", "unknown"
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return version, commit
	}
	if info.Main.Version != "" {
		version = info.Main.Version
	}
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && commit != "unknown" {
		commit += "-dirty"
	}
	return version, commit
}

// runVersion is `envvault version` and `envvault --version`.
func (m *Main) runVersion(context.Context) error {
	version, commit := buildVersion()
	if m.Config.Client.JSON {
		return writeJSON(m.Stdout, map[string]string{"version": version, "commit": commit, "go": runtime.Version()})
	}
	_, err := fmt.Fprintf(m.Stdout, "envvault %s (commit %s, %s %s/%s)\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return err
}

// rootFlags gives the root command --version: envvault --version is
// envvault version.
func (m *Main) rootFlags(root *ffcli.Command) {
	version := root.FlagSet.Bool("version", false, "print the version and exit")
	exec := root.Exec
	root.Exec = func(ctx context.Context, args []string) error {
		if *version {
			m.Config = Config{Command: cmdVersion}
			m.Config.Client.local = true
			return nil
		}
		return exec(ctx, args)
	}
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"
)

// completionCommand is `envvault completion bash|zsh|fish`.
func (m *Main) completionCommand() *ffcli.Command {
	c := &Config{Command: cmdCompletion, Client: clientConfig{local: true}}
	return &ffcli.Command{
		Name:       "completion",
		ShortUsage: "envvault completion bash|zsh|fish",
		ShortHelp:  "print a shell completion script for bash, zsh or fish",
		LongHelp: `Prints a script that completes envvault's commands and flags. Load it:
  bash:  source <(envvault completion bash)      (or save it under /etc/bash_completion.d/)
  zsh:   source <(envvault completion zsh)       (in ~/.zshrc)
  fish:  envvault completion fish > ~/.config/fish/completions/envvault.fish`,
		FlagSet: m.flagSet("envvault completion"),
		Exec: func(_ context.Context, args []string) error {
			if len(args) != 1 || !slices.Contains([]string{"bash", "zsh", "fish"}, args[0]) {
				return usageError(errors.New("envvault completion needs one shell: bash, zsh or fish"))
			}
			c.Client.Args = args
			m.Config = *c
			return nil
		},
	}
}

// completionNode is one command of the tree as completion sees it: the
// words that may follow it.
type completionNode struct {
	path  string // "secrets set", "" for the root
	subs  []string
	flags []string
	help  map[string]string // a subcommand's short help, by name
}

// completionNodes walks the tree from root.
func completionNodes(root *ffcli.Command) []completionNode {
	var nodes []completionNode
	var walk func(c *ffcli.Command, path string)
	walk = func(c *ffcli.Command, path string) {
		n := completionNode{path: path, help: map[string]string{}}
		c.FlagSet.VisitAll(func(f *flag.Flag) {
			if f.Usage != "" { // not the flags that only refuse themselves
				n.flags = append(n.flags, "--"+f.Name)
			}
		})
		for _, sub := range c.Subcommands {
			n.subs = append(n.subs, sub.Name)
			n.help[sub.Name] = sub.ShortHelp
		}
		nodes = append(nodes, n)
		for _, sub := range c.Subcommands {
			walk(sub, strings.TrimSpace(path+" "+sub.Name))
		}
	}
	walk(root, "")
	return nodes
}

// runCompletion prints the script of the shell Config.Client.Args names.
func (m *Main) runCompletion(context.Context) error {
	nodes := completionNodes(m.commands())
	switch m.Config.Client.Args[0] {
	case "bash":
		return bashCompletion(m.Stdout, nodes)
	case "zsh":
		// zsh runs bash completion functions through bashcompinit, as
		// many tools' zsh scripts do.
		if _, err := io.WriteString(m.Stdout, "autoload -U +X bashcompinit && bashcompinit\n"); err != nil {
			return err
		}
		return bashCompletion(m.Stdout, nodes)
	default:
		return fishCompletion(m.Stdout, nodes)
	}
}

// bashCompletion writes a bash completion function: the command path is
// the words so far that name subcommands; the candidates are that
// command's subcommands and flags.
func bashCompletion(w io.Writer, nodes []completionNode) error {
	var b strings.Builder
	b.WriteString(`# bash completion for envvault (envvault completion bash)
_envvault() {
  local cur path w
  cur="${COMP_WORDS[COMP_CWORD]}"
  path=""
  for w in "${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
    case "$path/$w" in
`)
	var known []string
	for _, n := range nodes {
		if n.path != "" {
			known = append(known, "/"+strings.ReplaceAll(n.path, " ", "/"))
		}
	}
	fmt.Fprintf(&b, "      %s) path=\"$path/$w\" ;;\n", strings.Join(known, "|"))
	b.WriteString("    esac\n  done\n  case \"$path\" in\n")
	for _, n := range nodes {
		words := append(slices.Clone(n.subs), n.flags...)
		fmt.Fprintf(&b, "    %q) COMPREPLY=($(compgen -W %q -- \"$cur\")) ;;\n", "/"+strings.ReplaceAll(n.path, " ", "/"), strings.Join(words, " "))
	}
	b.WriteString("  esac\n}\ncomplete -o default -F _envvault envvault\n")
	// The root's path is "/" in the loop above but "" at run time.
	script := strings.Replace(b.String(), `    "/") COMPREPLY`, `    "") COMPREPLY`, 1)
	_, err := io.WriteString(w, script)
	return err
}

// fishCompletion writes fish `complete` lines: each subcommand offered
// once its parents are on the line and none of its siblings is.
func fishCompletion(w io.Writer, nodes []completionNode) error {
	var b strings.Builder
	b.WriteString("# fish completion for envvault (envvault completion fish)\ncomplete -c envvault -f\n")
	for _, n := range nodes {
		cond := "__fish_use_subcommand"
		if n.path != "" {
			var parts []string
			for _, word := range strings.Fields(n.path) {
				parts = append(parts, "__fish_seen_subcommand_from "+word)
			}
			cond = strings.Join(parts, "; and ")
			if len(n.subs) > 0 {
				cond += "; and not __fish_seen_subcommand_from " + strings.Join(n.subs, " ")
			}
		}
		for _, sub := range n.subs {
			fmt.Fprintf(&b, "complete -c envvault -n %q -a %s -d %q\n", cond, sub, firstClause(n.help[sub]))
		}
		if n.path != "" {
			for _, f := range n.flags {
				fmt.Fprintf(&b, "complete -c envvault -n %q -l %s\n", cond, strings.TrimPrefix(f, "--"))
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// firstClause shortens a short help for fish's descriptions.
func firstClause(s string) string {
	if i := strings.IndexAny(s, ":;("); i > 0 {
		s = s[:i]
	}
	return strings.ReplaceAll(strings.TrimSpace(s), `"`, `'`)
}

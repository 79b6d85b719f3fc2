package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	vclient "github.com/envvault/envvault/client"
)

// The client's tokens commands.
const (
	cmdTokensCreate = "tokens create"
	cmdTokensList   = "tokens list"
	cmdTokensRevoke = "tokens revoke"
)

// tokensCommand is `envvault tokens`.
func (m *Main) tokensCommand() *ffcli.Command {
	return m.group(&ffcli.Command{
		Name:        "tokens",
		ShortUsage:  "envvault tokens create|list|revoke [flags]",
		ShortHelp:   "manage your API tokens: scopes full, read and tasks; a secret shown once",
		Subcommands: []*ffcli.Command{m.tokensCreateCommand(), m.tokensListCommand(), m.tokensRevokeCommand()},
	})
}

// tokensCreateCommand is `envvault tokens create NAME`.
func (m *Main) tokensCreateCommand() *ffcli.Command {
	c, fs := m.remoteCommand(cmdTokensCreate)
	c.Client.Scope = "read"
	fs.Func("scope", "full (everything), read (every GET, no write) or tasks (start and read tasks, read profiles) (default read)", func(s string) error {
		if s != "full" && s != "read" && s != "tasks" {
			return errors.New("must be full, read or tasks")
		}
		c.Client.Scope = s
		return nil
	})
	fs.DurationVar(&c.Client.ExpiresIn, "expires-in", 0, "refused after this long, e.g. 720h (default never)")
	return m.remoteLeaf(c, fs, 1, 1, &ffcli.Command{
		ShortUsage: "envvault tokens create NAME [--scope full|read|tasks] [--expires-in DURATION] [--json]",
		ShortHelp:  "make a token; only its secret goes to stdout, shown this once",
		LongHelp: `Prints the new token alone on stdout, so that
  TOKEN=$(envvault tokens create ci --scope tasks)
keeps it without showing it; what was made goes to stderr. The server keeps
only its SHA-256: it is never shown again. --json prints the API's answer,
the token in it.`,
		Exec: func(context.Context, []string) error {
			if c.Client.ExpiresIn < 0 {
				return invalidError(errors.New("--expires-in: must be positive"))
			}
			return nil
		},
	})
}

// runTokensCreate is `envvault tokens create`.
func (m *Main) runTokensCreate(ctx context.Context, api *vclient.Client) error {
	cc := &m.Config.Client
	body := vclient.CreateToken{Name: cc.Args[0], Scope: vclient.TokenScope(cc.Scope)}
	if cc.ExpiresIn > 0 {
		at := time.Now().Add(cc.ExpiresIn).UTC().Truncate(time.Second)
		body.ExpiresAt = &at
	}
	t, err := api.CreateToken(ctx, body)
	if err != nil {
		return err
	}
	if cc.JSON {
		return m.printJSON(t)
	}
	fmt.Fprintf(m.Stderr, "Created token %q (%s, scope %s%s). Its secret, on stdout, is shown only this once.\n", t.Name, t.Id, t.Scope, expiry(t.ExpiresAt))
	_, err = fmt.Fprintln(m.Stdout, t.Token)
	return err
}

func expiry(at *time.Time) string {
	if at == nil {
		return ""
	}
	return ", expires " + at.UTC().Format("2006-01-02 15:04:05Z")
}

// tokensListCommand is `envvault tokens list`.
func (m *Main) tokensListCommand() *ffcli.Command {
	c, fs := m.remoteCommand(cmdTokensList)
	return m.remoteLeaf(c, fs, 0, 0, &ffcli.Command{
		ShortUsage: "envvault tokens list [--json]",
		ShortHelp:  "list your tokens: name, scope, last use, expiry; never a secret",
	})
}

// runTokensList is `envvault tokens list`.
func (m *Main) runTokensList(ctx context.Context, api *vclient.Client) error {
	tokens, err := api.ListTokens(ctx)
	if err != nil {
		return err
	}
	if m.Config.Client.JSON {
		return m.printJSON(nonNil(tokens))
	}
	w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tSCOPE\tCREATED\tLAST USED\tEXPIRES\tID")
	when := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04Z")
	}
	for _, t := range tokens {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.Scope, when(&t.CreatedAt), when(t.LastUsedAt), when(t.ExpiresAt), t.Id)
	}
	return w.Flush()
}

// tokensRevokeCommand is `envvault tokens revoke NAME-or-ID`.
func (m *Main) tokensRevokeCommand() *ffcli.Command {
	c, fs := m.remoteCommand(cmdTokensRevoke)
	fs.BoolVar(&c.Client.ConfirmLast, "confirm-last", false, "needed to revoke your last unexpired full token (then only the operator can make another)")
	return m.remoteLeaf(c, fs, 1, 1, &ffcli.Command{
		ShortUsage: "envvault tokens revoke NAME-or-ID [--confirm-last] [--json]",
		ShortHelp:  "revoke a token: refused from now on, its dashboard sessions signed out",
	})
}

// runTokensRevoke is `envvault tokens revoke`.
func (m *Main) runTokensRevoke(ctx context.Context, api *vclient.Client) error {
	ref := m.Config.Client.Args[0]
	tokens, err := api.ListTokens(ctx)
	if err != nil {
		return err
	}
	var match []vclient.Token
	for _, t := range tokens {
		if t.Id == ref || (!strings.HasPrefix(ref, "tok_") && t.Name == ref) {
			match = append(match, t)
		}
	}
	switch {
	case len(match) == 0:
		return notFoundError(fmt.Errorf("no token named or with the id %s (tokens list shows yours)", ref))
	case len(match) > 1:
		return invalidError(fmt.Errorf("%d tokens are named %s: give the id (tokens list shows them)", len(match), ref))
	}
	t := match[0]
	if err := api.RevokeToken(ctx, t.Id, m.Config.Client.ConfirmLast); err != nil {
		return err
	}
	if m.Config.Client.JSON {
		return m.printJSON(map[string]any{"id": t.Id, "name": t.Name, "revoked": true})
	}
	_, err = fmt.Fprintf(m.Stdout, "Revoked token %q (%s).\n", t.Name, t.Id)
	return err
}

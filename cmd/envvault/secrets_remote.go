package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/peterbourgon/ff/v3/ffcli"

	vclient "github.com/envvault/envvault/client"
)

// The client's secrets commands.
const (
	cmdSecretsSet      = "secrets set"
	cmdSecretsLs       = "secrets list"
	cmdSecretsGet      = "secrets get"
	cmdSecretsDelete   = "secrets delete"
	cmdSecretsVersions = "secrets versions"
	cmdSecretsRollback = "secrets rollback"
	cmdSecretsImportC  = "secrets import"
)

// remoteSecretsCommand is `envvault secrets`, over the API.
func (m *Main) remoteSecretsCommand() *ffcli.Command {
	return m.group(&ffcli.Command{
		Name:       "secrets",
		ShortUsage: "envvault secrets set|list|get|delete|versions|rollback|import [flags]",
		ShortHelp:  "manage your secrets on a server: values from stdin or a prompt, never shown",
		Subcommands: []*ffcli.Command{
			m.secretsSetCommand(), m.secretsLsCommand(), m.secretsGetCommand(), m.secretsDeleteCommand(),
			m.secretsVersionsCommand(), m.secretsRollbackCommand(), m.secretsImportRemoteCommand(),
		},
	})
}

// grantFlags are --scope and --profile (id or name, repeatable).
func grantFlags(c *Config, fsFunc func(name, usage string, fn func(string) error)) {
	c.Client.Scope = "all"
	fsFunc("scope", "all (every profile of yours) or agents (only the --profile ones) (default all)", func(s string) error {
		if s != "all" && s != "agents" {
			return errors.New("must be all or agents")
		}
		c.Client.Scope = s
		return nil
	})
	fsFunc("profile", "with --scope agents: a profile to grant, by name or id (prof_…); repeat for several", func(s string) error {
		c.Client.Profiles = append(c.Client.Profiles, s)
		return nil
	})
}

// checkGrants is the check of --scope and --profile before anything is
// sent.
func checkGrants(c *Config) error {
	switch {
	case c.Client.Scope == "agents" && len(c.Client.Profiles) == 0:
		return invalidError(errors.New("--profile: required with --scope agents (the profiles granted the secret)"))
	case c.Client.Scope == "all" && len(c.Client.Profiles) > 0:
		return invalidError(errors.New("--profile: only with --scope agents (a secret of scope all goes to every profile)"))
	}
	return nil
}

// secretsSetCommand is `envvault secrets set NAME`.
func (m *Main) secretsSetCommand() *ffcli.Command {
	c, fs := m.remoteCommand(cmdSecretsSet)
	grantFlags(c, fs.Func)
	fs.StringVar(&c.Client.Description, "description", "", "free text shown beside the secret (kept as it is on an update unless given)")
	return m.remoteLeaf(c, fs, 1, -1, &ffcli.Command{
		ShortUsage: "envvault secrets set NAME [--scope all|agents] [--profile NAME-or-ID]... [--description TEXT] < value",
		ShortHelp:  "create or update a secret; the value comes from stdin or a hidden prompt",
		LongHelp: `Reads the value from stdin (one trailing newline dropped), or asks for it
without echo at a terminal, and never from the command line: an argument
would stay in shell history and in ps. Examples:
  printf %s "$GITHUB_TOKEN" | envvault secrets set GITHUB_TOKEN
  envvault secrets set OPENAI_API_KEY --scope agents --profile coder < key.txt

With --scope all (the default) it updates your secret NAME given to all
profiles, or creates it. With --scope agents it updates your secret NAME
granted to exactly the --profile profiles, or creates it. An update makes a
new version; the old value is kept for "secrets rollback".`,
		Exec: func(_ context.Context, args []string) error {
			if len(args) > 1 || strings.Contains(args[0], "=") {
				// The arguments are not quoted: one of them is a value.
				return invalidError(errors.New(`secrets set takes the value from stdin or a hidden prompt, never as an argument (it would stay in shell history and ps): printf %s "$VALUE" | envvault secrets set NAME`))
			}
			return checkGrants(c)
		},
	})
}

// runSecretsSet is `envvault secrets set`.
func (m *Main) runSecretsSet(ctx context.Context, api *vclient.Client) error {
	cc := &m.Config.Client
	name := cc.Args[0]
	profiles, err := m.profileIDs(ctx, api, cc.Profiles)
	if err != nil {
		return err
	}
	existing, err := m.secretToSet(ctx, api, name, cc.Scope, profiles)
	if err != nil {
		return err
	}
	value, err := m.readHidden(fmt.Sprintf("Value of %s (not shown): ", name), "value")
	if err != nil {
		return err
	}
	var saved *vclient.SavedSecret
	verb := "Created"
	if existing == nil {
		body := vclient.CreateSecret{Name: name, Value: &value}
		scope := vclient.CreateSecretScope(cc.Scope)
		body.Scope = &scope
		if cc.Scope == "agents" {
			body.ProfileIds = &profiles
		}
		if cc.set["description"] {
			body.Description = &cc.Description
		}
		saved, err = api.CreateSecret(ctx, body)
	} else {
		verb = "Updated"
		body := vclient.UpdateSecret{Value: &value}
		if cc.set["description"] {
			body.Description = &cc.Description
		}
		saved, err = api.UpdateSecret(ctx, existing.Id, body)
	}
	if err != nil {
		return err
	}
	for _, w := range saved.Warnings {
		fmt.Fprintf(m.Stderr, "warning: %s\n", w)
	}
	if cc.JSON {
		return m.printJSON(saved)
	}
	_, err = fmt.Fprintf(m.Stdout, "%s secret %s (%s, scope %s, version %d).\n", verb, saved.Name, saved.Id, saved.Scope, saved.Version)
	return err
}

// secretToSet is the secret `secrets set` updates: the user's secret name
// of scope all, or of scope agents granted to exactly profiles; nil if
// none, so that one is created.
func (m *Main) secretToSet(ctx context.Context, api *vclient.Client, name, scope string, profiles []string) (*vclient.Secret, error) {
	same, err := m.secretsNamed(ctx, api, name)
	if err != nil {
		return nil, err
	}
	want := slices.Clone(profiles)
	slices.Sort(want)
	for _, s := range same {
		if string(s.Scope) != scope {
			continue
		}
		if scope == "all" || slices.Equal(s.ProfileIds, want) {
			return &s, nil
		}
	}
	return nil, nil
}

// secretsNamed lists the user's secrets called exactly name.
func (m *Main) secretsNamed(ctx context.Context, api *vclient.Client, name string) ([]vclient.Secret, error) {
	all, err := vclient.All(ctx, func(ctx context.Context, cursor string) (vclient.Page[vclient.Secret], error) {
		limit := 200
		return api.ListSecrets(ctx, &vclient.ListSecretsParams{Q: &name, Limit: &limit, Cursor: nonEmpty(cursor)})
	})
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(s vclient.Secret) bool { return s.Name != name }), nil
}

// selectFlags are --scope and --profile of the commands that pick one
// secret by name, when the name is held by several.
func selectFlags(fs *flag.FlagSet, c *Config) {
	fs.Func("scope", "when NAME names several secrets: the one of scope all, or of scope agents", func(s string) error {
		if s != "all" && s != "agents" {
			return errors.New("must be all or agents")
		}
		c.Client.Scope = s
		return nil
	})
	fs.Func("profile", "when NAME names several agents secrets: the one granting exactly these profiles (name or id; repeatable)", func(s string) error {
		c.Client.Profiles = append(c.Client.Profiles, s)
		return nil
	})
}

// secret finds the secret ref names: an id (sec_…), or a name that names
// exactly one of the user's secrets of --scope and --profile, if given.
func (m *Main) secret(ctx context.Context, api *vclient.Client, ref string) (*vclient.Secret, error) {
	if strings.HasPrefix(ref, "sec_") {
		return api.GetSecret(ctx, ref)
	}
	same, err := m.secretsNamed(ctx, api, ref)
	if err != nil {
		return nil, err
	}
	cc := &m.Config.Client
	if cc.Scope != "" {
		same = slices.DeleteFunc(same, func(s vclient.Secret) bool { return string(s.Scope) != cc.Scope })
	}
	if len(cc.Profiles) > 0 {
		ids, err := m.profileIDs(ctx, api, cc.Profiles)
		if err != nil {
			return nil, err
		}
		slices.Sort(ids)
		same = slices.DeleteFunc(same, func(s vclient.Secret) bool { return !slices.Equal(s.ProfileIds, ids) })
	}
	switch len(same) {
	case 0:
		return nil, notFoundError(fmt.Errorf("no secret named %s%s (secrets list shows yours)", ref, cc.selection()))
	case 1:
		return &same[0], nil
	}
	var ids []string
	for _, s := range same {
		ids = append(ids, fmt.Sprintf("%s (scope %s)", s.Id, s.Scope))
	}
	return nil, invalidError(fmt.Errorf("%s names %d secrets: %s; give the id, or --scope (and --profile)", ref, len(same), strings.Join(ids, ", ")))
}

// secretsLsCommand is `envvault secrets list`.
func (m *Main) secretsLsCommand() *ffcli.Command {
	c, fs := m.remoteCommand(cmdSecretsLs)
	return m.remoteLeaf(c, fs, 0, 0, &ffcli.Command{
		ShortUsage: "envvault secrets list [--json]",
		ShortHelp:  "list your secrets: name, scope, profiles, version; never a value",
	})
}

// runSecretsLs is `envvault secrets list`.
func (m *Main) runSecretsLs(ctx context.Context, api *vclient.Client) error {
	secrets, err := vclient.All(ctx, func(ctx context.Context, cursor string) (vclient.Page[vclient.Secret], error) {
		limit := 200
		return api.ListSecrets(ctx, &vclient.ListSecretsParams{Limit: &limit, Cursor: nonEmpty(cursor)})
	})
	if err != nil {
		return err
	}
	if m.Config.Client.JSON {
		return m.printJSON(nonNil(secrets))
	}
	names, err := m.profileNames(ctx, api)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tSCOPE\tPROFILES\tVERSION\tUPDATED\tID")
	for _, s := range secrets {
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\n", s.Name, s.Scope, granted(s, names), s.Version, s.UpdatedAt.Format("2006-01-02 15:04:05Z"), s.Id)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if len(secrets) == 0 {
		_, err = fmt.Fprintln(m.Stderr, "No secrets yet: envvault secrets set NAME < value-file")
	}
	return err
}

// granted is the profiles column of a secret: (all), or the names of its
// profiles.
func granted(s vclient.Secret, names map[string]string) string {
	if s.Scope == vclient.ScopeAll {
		return "(all)"
	}
	if len(s.ProfileIds) == 0 {
		return "(none)" // its profiles were deleted
	}
	list := make([]string, len(s.ProfileIds))
	for i, id := range s.ProfileIds {
		list[i] = names[id]
	}
	slices.Sort(list)
	return strings.Join(list, ",")
}

// secretsGetCommand is `envvault secrets get NAME-or-ID`.
func (m *Main) secretsGetCommand() *ffcli.Command {
	c, fs := m.remoteCommand(cmdSecretsGet)
	selectFlags(fs, c)
	return m.remoteLeaf(c, fs, 1, 1, &ffcli.Command{
		ShortUsage: "envvault secrets get NAME-or-ID [--scope all|agents] [--profile NAME-or-ID]... [--json]",
		ShortHelp:  "show a secret: its name, scope, profiles, version and dates; values are write-only",
	})
}

// runSecretsGet is `envvault secrets get`.
func (m *Main) runSecretsGet(ctx context.Context, api *vclient.Client) error {
	s, err := m.secret(ctx, api, m.Config.Client.Args[0])
	if err != nil {
		return err
	}
	if m.Config.Client.JSON {
		return m.printJSON(s)
	}
	names, err := m.profileNames(ctx, api)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "name:\t%s\nid:\t%s\nscope:\t%s\nprofiles:\t%s\nversion:\t%d\ndescription:\t%s\ncreated:\t%s\nupdated:\t%s\n",
		s.Name, s.Id, s.Scope, granted(*s, names), s.Version, s.Description,
		s.CreatedAt.Format("2006-01-02 15:04:05Z"), s.UpdatedAt.Format("2006-01-02 15:04:05Z"))
	return w.Flush()
}

// secretsDeleteCommand is `envvault secrets delete NAME-or-ID`.
func (m *Main) secretsDeleteCommand() *ffcli.Command {
	c, fs := m.remoteCommand(cmdSecretsDelete)
	selectFlags(fs, c)
	return m.remoteLeaf(c, fs, 1, 1, &ffcli.Command{
		ShortUsage: "envvault secrets delete NAME-or-ID [--scope all|agents] [--profile NAME-or-ID]... [--json]",
		ShortHelp:  "delete a secret and its history",
	})
}

// runSecretsDelete is `envvault secrets delete`.
func (m *Main) runSecretsDelete(ctx context.Context, api *vclient.Client) error {
	s, err := m.secret(ctx, api, m.Config.Client.Args[0])
	if err != nil {
		return err
	}
	if err := api.DeleteSecret(ctx, s.Id); err != nil {
		return err
	}
	return m.printDeleted("secret", s.Name, s.Id)
}

// secretsVersionsCommand is `envvault secrets versions NAME-or-ID`.
func (m *Main) secretsVersionsCommand() *ffcli.Command {
	c, fs := m.remoteCommand(cmdSecretsVersions)
	selectFlags(fs, c)
	return m.remoteLeaf(c, fs, 1, 1, &ffcli.Command{
		ShortUsage: "envvault secrets versions NAME-or-ID [--scope …] [--profile …] [--json]",
		ShortHelp:  "list a secret's versions, current first (never a value)",
	})
}

// runSecretsVersions is `envvault secrets versions`.
func (m *Main) runSecretsVersions(ctx context.Context, api *vclient.Client) error {
	s, err := m.secret(ctx, api, m.Config.Client.Args[0])
	if err != nil {
		return err
	}
	versions, err := api.ListSecretVersions(ctx, s.Id)
	if err != nil {
		return err
	}
	if m.Config.Client.JSON {
		return m.printJSON(nonNil(versions))
	}
	w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "VERSION\tCURRENT\tSAVED\tBY TOKEN")
	for _, v := range versions {
		saved, by := "-", "-"
		if v.CreatedAt != nil {
			saved = v.CreatedAt.Format("2006-01-02 15:04:05Z")
		}
		if v.ActorTokenId != nil {
			by = *v.ActorTokenId
		}
		current := ""
		if v.Current {
			current = "*"
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", v.Version, current, saved, by)
	}
	return w.Flush()
}

// secretsRollbackCommand is `envvault secrets rollback NAME-or-ID VERSION`.
func (m *Main) secretsRollbackCommand() *ffcli.Command {
	c, fs := m.remoteCommand(cmdSecretsRollback)
	selectFlags(fs, c)
	return m.remoteLeaf(c, fs, 2, 2, &ffcli.Command{
		ShortUsage: "envvault secrets rollback NAME-or-ID VERSION [--scope …] [--profile …] [--json]",
		ShortHelp:  "make an earlier version's value the current one (as a new version)",
		Exec: func(_ context.Context, args []string) error {
			if v, err := strconv.Atoi(args[1]); err != nil || v < 1 {
				return invalidError(fmt.Errorf("VERSION: must be a version number (secrets versions lists them), got %q", args[1]))
			}
			return nil
		},
	})
}

// runSecretsRollback is `envvault secrets rollback`.
func (m *Main) runSecretsRollback(ctx context.Context, api *vclient.Client) error {
	s, err := m.secret(ctx, api, m.Config.Client.Args[0])
	if err != nil {
		return err
	}
	version, _ := strconv.Atoi(m.Config.Client.Args[1]) // checked when parsed
	r, err := api.RollbackSecret(ctx, s.Id, version)
	if err != nil {
		return err
	}
	if m.Config.Client.JSON {
		return m.printJSON(r)
	}
	_, err = fmt.Fprintf(m.Stdout, "Rolled back secret %s (%s) to the value of version %d: now version %d.\n", r.Name, r.Id, version, r.Version)
	return err
}

// nonEmpty is a pointer to s, or nil for "" (a parameter left out).
func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// nonNil is list, or an empty list for nil: --json prints [] rather than
// null.
func nonNil[T any](list []T) []T {
	if list == nil {
		return []T{}
	}
	return list
}

// selection says which --scope and --profile narrowed a search, for a
// message.
func (cc *clientConfig) selection() string {
	s := ""
	if cc.Scope != "" {
		s += " of scope " + cc.Scope
	}
	if len(cc.Profiles) > 0 {
		s += " granting exactly " + strings.Join(cc.Profiles, ",")
	}
	return s
}

// secretsImportRemoteCommand is `envvault secrets import FILE.env`.
func (m *Main) secretsImportRemoteCommand() *ffcli.Command {
	c, fs := m.remoteCommand(cmdSecretsImportC)
	grantFlags(c, fs.Func)
	return m.remoteLeaf(c, fs, 1, 1, &ffcli.Command{
		ShortUsage: "envvault secrets import FILE.env [--scope all|agents] [--profile NAME-or-ID]... [--json]",
		ShortHelp:  "create or update many secrets from a dotenv file, all or nothing",
		LongHelp: `Sends the file's NAME=value lines (the dotenv grammar of the README's Import
section; - reads stdin) to the server, which imports them in one
transaction: all of them, or, if any line is bad, none, naming every bad
line by number, never its value. With --scope all (the default) a line
updates your secret of that name given to all profiles, or creates one;
with --scope agents, the one granted to exactly the --profile profiles.`,
		Exec: func(context.Context, []string) error { return checkGrants(c) },
	})
}

// runSecretsImportRemote is `envvault secrets import`.
func (m *Main) runSecretsImportRemote(ctx context.Context, api *vclient.Client) error {
	cc := &m.Config.Client
	file := cc.Args[0]
	var data []byte
	var err error
	if file == "-" {
		data, err = io.ReadAll(io.LimitReader(m.Stdin, 16<<20))
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return fmt.Errorf("secrets import: %w", err) // names the file, never its content
	}
	profiles, err := m.profileIDs(ctx, api, cc.Profiles)
	if err != nil {
		return err
	}
	content := string(data)
	body := vclient.ImportSecrets{Content: &content}
	scope := vclient.ImportSecretsScope(cc.Scope)
	body.Scope = &scope
	if cc.Scope == "agents" {
		body.ProfileIds = &profiles
	}
	res, err := api.ImportSecrets(ctx, body)
	var ae *vclient.APIError
	if errors.As(err, &ae) && len(ae.Lines) > 0 {
		// The server-side import's message, line by line.
		var b strings.Builder
		fmt.Fprintf(&b, "%s: %d bad lines, nothing imported:", file, len(ae.Lines))
		for _, l := range ae.Lines {
			fmt.Fprintf(&b, "\n  line %d: %s", l.Line, l.Message)
		}
		return invalidError(errors.New(b.String()))
	}
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if cc.JSON {
		return m.printJSON(res)
	}
	_, err = fmt.Fprintf(m.Stdout, "Imported %s (scope %s): %d created, %d updated, %d unchanged.\n", file, cc.Scope, res.Created, res.Updated, res.Unchanged)
	return err
}

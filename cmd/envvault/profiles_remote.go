package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/peterbourgon/ff/v3/ffcli"

	vclient "github.com/envvault/envvault/client"
)

// The client's profiles commands.
const (
	cmdProfilesCreate = "profiles create"
	cmdProfilesList   = "profiles list"
	cmdProfilesGet    = "profiles get"
	cmdProfilesUpdate = "profiles update"
	cmdProfilesDelete = "profiles delete"
	cmdProfilesEnv    = "profiles env"
	cmdProfilesKeys   = "profiles keys"
)

// profilesCommand is `envvault profiles`.
func (m *Main) profilesCommand() *ffcli.Command {
	return m.group(&ffcli.Command{
		Name:       "profiles",
		ShortUsage: "envvault profiles create|list|get|update|delete|env|keys [flags]",
		ShortHelp:  "manage your agent profiles: the image, command and env of a task",
		Subcommands: []*ffcli.Command{
			m.profilesCreateCommand(), m.profilesListCommand(), m.profilesGetCommand(),
			m.profilesUpdateCommand(), m.profilesDeleteCommand(), m.profilesEnvCommand(), m.profilesKeysCommand(),
		},
	})
}

// profileFlags are the flags of create and update.
func profileFlags(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&c.Client.Image, "image", "", "the container image, e.g. busybox:1.36")
	fs.Func("env", "a non-secret NAME=VALUE of the task's env; repeat for several (update: replaces the whole env)", func(s string) error {
		if !strings.Contains(s, "=") {
			return errors.New("must be NAME=VALUE")
		}
		c.Client.Env = append(c.Client.Env, s)
		return nil
	})
	fs.Func("setup", "a shell line run before the command; repeat for several (update: replaces them)", func(s string) error {
		c.Client.Setup = append(c.Client.Setup, s)
		return nil
	})
	fs.StringVar(&c.Client.FromJSON, "from-json", "", "a file (- for stdin) holding the API's request body, for fields without a flag (sandbox); flags win")
}

const profileHelp = `The task's command is everything after --, e.g.
  envvault profiles create coder --image busybox:1.36 --env MODE=review -- sh -c 'echo "$TASK_PROMPT"'
Fields without a flag (sandbox) come from --from-json FILE, a body as the
API's createProfile/updateProfile takes it.`

// profilesCreateCommand is `envvault profiles create NAME`.
func (m *Main) profilesCreateCommand() *ffcli.Command {
	c, fs := m.remoteCommand(cmdProfilesCreate)
	profileFlags(fs, c)
	return m.remoteLeaf(c, fs, 1, 1, &ffcli.Command{
		ShortUsage: "envvault profiles create NAME --image IMAGE [--env NAME=VALUE]... [--setup LINE]... [-- COMMAND...]",
		ShortHelp:  "create a profile",
		LongHelp:   profileHelp,
	})
}

// runProfilesCreate is `envvault profiles create`.
func (m *Main) runProfilesCreate(ctx context.Context, api *vclient.Client) error {
	cc := &m.Config.Client
	var body vclient.CreateProfile
	if err := readBody(m.Stdin, cc.FromJSON, &body); err != nil {
		return err
	}
	body.Name = cc.Args[0]
	if cc.set["image"] {
		body.Image = cc.Image
	}
	if err := applyProfileFlags(cc, &body.Env, &body.SetupCommands, &body.Command); err != nil {
		return err
	}
	p, err := api.CreateProfile(ctx, body)
	if err != nil {
		return err
	}
	return m.printProfile(p, "Created")
}

// applyProfileFlags sets the env, setup lines and command given by flags.
func applyProfileFlags(cc *clientConfig, env **map[string]string, setup, command **[]string) error {
	if cc.set["env"] {
		e := map[string]string{}
		for _, kv := range cc.Env {
			k, v, _ := strings.Cut(kv, "=")
			if _, dup := e[k]; dup {
				return invalidError(fmt.Errorf("--env: %s given twice", k))
			}
			e[k] = v
		}
		*env = &e
	}
	if cc.set["setup"] {
		s := cc.Setup
		*setup = &s
	}
	if cc.Command != nil {
		cmd := cc.Command
		*command = &cmd
	}
	return nil
}

// readBody decodes the JSON body in path (- for stdin) into v, refusing
// keys v does not have; "" leaves v as it is.
func readBody(stdin io.Reader, path string, v any) error {
	if path == "" {
		return nil
	}
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(io.LimitReader(stdin, 1<<20))
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return fmt.Errorf("--from-json: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalidError(fmt.Errorf("--from-json %s: %w", path, err))
	}
	return nil
}

// printProfile prints a profile as JSON or text; verb ("Created", ...)
// heads the text when not "".
func (m *Main) printProfile(p *vclient.Profile, verb string) error {
	if m.Config.Client.JSON {
		return m.printJSON(p)
	}
	if verb != "" {
		fmt.Fprintf(m.Stdout, "%s profile %s (%s).\n", verb, p.Name, p.Id)
		return nil
	}
	w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	cmd, _ := json.Marshal(p.Command)
	setup, _ := json.Marshal(p.SetupCommands)
	env := make([]string, 0, len(p.Env))
	for k, v := range p.Env {
		env = append(env, k+"="+v)
	}
	fmt.Fprintf(w, "name:\t%s\nid:\t%s\nimage:\t%s\ncommand:\t%s\nsetup:\t%s\nenv:\t%s\nupdated:\t%s\n",
		p.Name, p.Id, p.Image, cmd, setup, strings.Join(slices.Sorted(slices.Values(env)), " "), p.UpdatedAt.Format("2006-01-02 15:04:05Z"))
	return w.Flush()
}

// profilesListCommand is `envvault profiles list`.
func (m *Main) profilesListCommand() *ffcli.Command {
	c, fs := m.remoteCommand(cmdProfilesList)
	return m.remoteLeaf(c, fs, 0, 0, &ffcli.Command{
		ShortUsage: "envvault profiles list [--json]",
		ShortHelp:  "list your profiles",
	})
}

// allProfiles is every profile of the user.
func allProfiles(ctx context.Context, api *vclient.Client) ([]vclient.Profile, error) {
	return vclient.All(ctx, func(ctx context.Context, cursor string) (vclient.Page[vclient.Profile], error) {
		limit := 200
		return api.ListProfiles(ctx, &vclient.ListProfilesParams{Limit: &limit, Cursor: nonEmpty(cursor)})
	})
}

// runProfilesList is `envvault profiles list`.
func (m *Main) runProfilesList(ctx context.Context, api *vclient.Client) error {
	profiles, err := allProfiles(ctx, api)
	if err != nil {
		return err
	}
	if m.Config.Client.JSON {
		return m.printJSON(nonNil(profiles))
	}
	w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tIMAGE\tUPDATED\tID")
	for _, p := range profiles {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", p.Name, p.Image, p.UpdatedAt.Format("2006-01-02 15:04:05Z"), p.Id)
	}
	return w.Flush()
}

// profileNames maps the user's profile ids to names.
func (m *Main) profileNames(ctx context.Context, api *vclient.Client) (map[string]string, error) {
	profiles, err := allProfiles(ctx, api)
	if err != nil {
		return nil, err
	}
	names := make(map[string]string, len(profiles))
	for _, p := range profiles {
		names[p.Id] = p.Name
	}
	return names, nil
}

// profile finds the profile ref names: an id (prof_…) or a name.
func (m *Main) profile(ctx context.Context, api *vclient.Client, ref string) (*vclient.Profile, error) {
	if strings.HasPrefix(ref, "prof_") {
		return api.GetProfile(ctx, ref)
	}
	profiles, err := allProfiles(ctx, api)
	if err != nil {
		return nil, err
	}
	for _, p := range profiles {
		if p.Name == ref {
			return &p, nil
		}
	}
	return nil, notFoundError(fmt.Errorf("no profile named %s (profiles list shows yours)", ref))
}

// profileIDs turns profile names or ids into ids.
func (m *Main) profileIDs(ctx context.Context, api *vclient.Client, refs []string) ([]string, error) {
	ids := make([]string, 0, len(refs))
	for _, ref := range refs {
		p, err := m.profile(ctx, api, ref)
		if err != nil {
			return nil, fmt.Errorf("--profile %s: %w", ref, err)
		}
		ids = append(ids, p.Id)
	}
	return ids, nil
}

// profilesGetCommand is `envvault profiles get NAME-or-ID`.
func (m *Main) profilesGetCommand() *ffcli.Command {
	c, fs := m.remoteCommand(cmdProfilesGet)
	return m.remoteLeaf(c, fs, 1, 1, &ffcli.Command{
		ShortUsage: "envvault profiles get NAME-or-ID [--json]",
		ShortHelp:  "show a profile",
	})
}

// runProfilesGet is `envvault profiles get`.
func (m *Main) runProfilesGet(ctx context.Context, api *vclient.Client) error {
	p, err := m.profile(ctx, api, m.Config.Client.Args[0])
	if err != nil {
		return err
	}
	return m.printProfile(p, "")
}

// profilesUpdateCommand is `envvault profiles update NAME-or-ID`.
func (m *Main) profilesUpdateCommand() *ffcli.Command {
	c, fs := m.remoteCommand(cmdProfilesUpdate)
	profileFlags(fs, c)
	fs.StringVar(&c.Client.Name, "name", "", "a new name")
	return m.remoteLeaf(c, fs, 1, 1, &ffcli.Command{
		ShortUsage: "envvault profiles update NAME-or-ID [--name NEW] [--image IMAGE] [--env NAME=VALUE]... [--setup LINE]... [-- COMMAND...]",
		ShortHelp:  "change a profile: only what is given changes",
		LongHelp:   profileHelp,
	})
}

// runProfilesUpdate is `envvault profiles update`.
func (m *Main) runProfilesUpdate(ctx context.Context, api *vclient.Client) error {
	cc := &m.Config.Client
	p, err := m.profile(ctx, api, cc.Args[0])
	if err != nil {
		return err
	}
	var body vclient.UpdateProfile
	if err := readBody(m.Stdin, cc.FromJSON, &body); err != nil {
		return err
	}
	if cc.set["name"] {
		body.Name = &cc.Name
	}
	if cc.set["image"] {
		body.Image = &cc.Image
	}
	if err := applyProfileFlags(cc, &body.Env, &body.SetupCommands, &body.Command); err != nil {
		return err
	}
	p, err = api.UpdateProfile(ctx, p.Id, body)
	if err != nil {
		return err
	}
	return m.printProfile(p, "Updated")
}

// profilesDeleteCommand is `envvault profiles delete NAME-or-ID`.
func (m *Main) profilesDeleteCommand() *ffcli.Command {
	c, fs := m.remoteCommand(cmdProfilesDelete)
	return m.remoteLeaf(c, fs, 1, 1, &ffcli.Command{
		ShortUsage: "envvault profiles delete NAME-or-ID [--json]",
		ShortHelp:  "delete a profile (its grants go; secrets stay)",
	})
}

// runProfilesDelete is `envvault profiles delete`.
func (m *Main) runProfilesDelete(ctx context.Context, api *vclient.Client) error {
	p, err := m.profile(ctx, api, m.Config.Client.Args[0])
	if err != nil {
		return err
	}
	if err := api.DeleteProfile(ctx, p.Id); err != nil {
		return err
	}
	return m.printDeleted("profile", p.Name, p.Id)
}

// profilesEnvCommand is `envvault profiles env NAME-or-ID`.
func (m *Main) profilesEnvCommand() *ffcli.Command {
	c, fs := m.remoteCommand(cmdProfilesEnv)
	return m.remoteLeaf(c, fs, 1, 1, &ffcli.Command{
		ShortUsage: "envvault profiles env NAME-or-ID [--json]",
		ShortHelp:  "the secret names a task of the profile gets, and which secret gives each (never a value)",
	})
}

// runProfilesEnv is `envvault profiles env`.
func (m *Main) runProfilesEnv(ctx context.Context, api *vclient.Client) error {
	p, err := m.profile(ctx, api, m.Config.Client.Args[0])
	if err != nil {
		return err
	}
	env, err := api.GetProfileEnv(ctx, p.Id)
	if err != nil {
		return err
	}
	if m.Config.Client.JSON {
		return m.printJSON(nonNil(env))
	}
	w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tSCOPE\tVERSION\tSECRET")
	for _, e := range env {
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", e.Name, e.Scope, e.Version, e.SecretId)
	}
	return w.Flush()
}

// profilesKeysCommand is `envvault profiles keys NAME-or-ID`.
func (m *Main) profilesKeysCommand() *ffcli.Command {
	c, fs := m.remoteCommand(cmdProfilesKeys)
	return m.remoteLeaf(c, fs, 1, 1, &ffcli.Command{
		ShortUsage: "envvault profiles keys NAME-or-ID [--json]",
		ShortHelp:  "every name the profile requires or a task of it gets: has it a value, from where (never the value)",
	})
}

// runProfilesKeys is `envvault profiles keys`.
func (m *Main) runProfilesKeys(ctx context.Context, api *vclient.Client) error {
	p, err := m.profile(ctx, api, m.Config.Client.Args[0])
	if err != nil {
		return err
	}
	keys, err := api.GetProfileSecretKeys(ctx, p.Id)
	if err != nil {
		return err
	}
	if m.Config.Client.JSON {
		return m.printJSON(nonNil(keys))
	}
	w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tVALUE\tSOURCE\tREQUIRED\tDESCRIPTION")
	for _, k := range keys {
		value, required := "missing", ""
		if k.HasValue {
			value = "set"
		}
		if k.Required {
			required = "yes"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", k.Name, value, k.Source, required, k.Description)
	}
	return w.Flush()
}

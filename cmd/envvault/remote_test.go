package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envvault/envvault/seal"
)

// The client commands, driven as users drive them: the built binary, as a
// separate process, against a server on 127.0.0.1 over HTTP.

// cliRun is one run of the built binary.
type cliRun struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r cliRun) String() string {
	return fmt.Sprintf("envvault %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// cliEnv runs the binary with a home and config directory of its own and
// the given ENVVAULT_* variables; every run's output and arguments are
// checked for the canary.
type cliEnv struct {
	t    *testing.T
	bin  string
	env  map[string]string
	home string
}

func newCLI(t *testing.T, url, token string) *cliEnv {
	t.Helper()
	home := t.TempDir()
	return &cliEnv{t: t, bin: staticBinary(t), home: home, env: map[string]string{"ENVVAULT_URL": url, "ENVVAULT_TOKEN": token}}
}

// run runs envvault args with stdin.
func (c *cliEnv) run(stdin string, args ...string) cliRun {
	c.t.Helper()
	cmd := exec.CommandContext(c.t.Context(), c.bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + c.home, "XDG_CONFIG_HOME=" + filepath.Join(c.home, ".config")}
	for k, v := range c.env {
		if v != "" {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := cliRun{args: args, stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		c.t.Fatalf("run envvault %v: %v", args, err)
	}
	for _, a := range args {
		if strings.Contains(a, canary) {
			c.t.Fatalf("test bug: the canary is in argv: %v", args)
		}
	}
	if strings.Contains(r.stdout, canary) || strings.Contains(r.stderr, canary) {
		c.t.Errorf("the canary value was printed: %s", r)
	}
	return r
}

// ok runs envvault and fails the test unless it exits 0.
func (c *cliEnv) ok(stdin string, args ...string) cliRun {
	c.t.Helper()
	r := c.run(stdin, args...)
	if r.code != 0 {
		c.t.Fatalf("%s", r)
	}
	return r
}

// exits runs envvault and fails the test unless it exits code with an
// error on stderr holding want and nothing on stdout.
func (c *cliEnv) exits(code int, want, stdin string, args ...string) cliRun {
	c.t.Helper()
	r := c.run(stdin, args...)
	if r.code != code || !strings.Contains(r.stderr, want) || r.stdout != "" {
		c.t.Fatalf("want exit %d, %q on stderr and nothing on stdout; got %s", code, want, r)
	}
	return r
}

// jsonOf runs envvault with --json and decodes its stdout into v.
func (c *cliEnv) jsonOf(v any, stdin string, args ...string) {
	c.t.Helper()
	// --json goes before "--", after which every word is the command.
	at := slices.Index(args, "--")
	if at < 0 {
		at = len(args)
	}
	r := c.ok(stdin, slices.Insert(slices.Clone(args), at, "--json")...)
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		c.t.Fatalf("%s\nnot JSON: %v", r, err)
	}
}

// devServer serves a fresh SQLite store in process on 127.0.0.1:0 with a
// user; it returns the URL and the user's token.
func devServer(t *testing.T, extra ...string) (string, string) {
	t.Helper()
	env := map[string]string{"ENCRYPTION_KEY": seal.GenerateKey()}
	dir := t.TempDir()
	token := createUser(t, env, "alice", "--data-dir", dir)
	srv := mustStart(t, env, append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dir}, extra...)...)
	return srv.url(), token
}

type secretOut struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Scope      string   `json:"scope"`
	ProfileIDs []string `json:"profile_ids"`
	Version    int      `json:"version"`
	Desc       string   `json:"description"`
}

func TestClientSecrets(t *testing.T) {
	t.Parallel()
	url, token := devServer(t, "--no-worker")
	c := newCLI(t, url, token)

	var s secretOut
	c.jsonOf(&s, canary+"\n", "secrets", "set", "GITHUB_TOKEN", "--description", "CI token")
	if s.Name != "GITHUB_TOKEN" || s.Scope != "all" || s.Version != 1 || s.Desc != "CI token" || !strings.HasPrefix(s.ID, "sec_") {
		t.Fatalf("secrets set --json: %+v", s)
	}
	// Again: an update, a new version; the description stays.
	r := c.ok(canary+"-2", "secrets", "set", "GITHUB_TOKEN")
	if !strings.Contains(r.stdout, "Updated secret GITHUB_TOKEN ("+s.ID+", scope all, version 2)") {
		t.Fatalf("second set: %s", r)
	}

	// A value as an argument is refused (exit 4), printed nowhere, and
	// changes nothing.
	for _, args := range [][]string{{"secrets", "set", "GITHUB_TOKEN", "ghp_in_argv_1234"}, {"secrets", "set", "OTHER=ghp_in_argv_1234"}} {
		r := c.exits(exitInvalid, "never as an argument", "", args...)
		if strings.Contains(r.stderr, "ghp_in_argv") {
			t.Errorf("the refused value was printed: %s", r)
		}
	}

	var list []secretOut
	c.jsonOf(&list, "", "secrets", "list")
	if len(list) != 1 || list[0].ID != s.ID || list[0].Version != 2 || list[0].Desc != "CI token" {
		t.Fatalf("secrets list --json after refusals: %+v", list)
	}
	r = c.ok("", "secrets", "list")
	if !strings.HasPrefix(r.stdout, "NAME") || !strings.Contains(r.stdout, "GITHUB_TOKEN  all") {
		t.Fatalf("secrets list table: %s", r)
	}

	// agents scope, granted by profile name.
	var p struct{ ID string }
	c.jsonOf(&p, "", "profiles", "create", "coder", "--image", "busybox:1.36")
	var a secretOut
	c.jsonOf(&a, canary+"-agents", "secrets", "set", "GITHUB_TOKEN", "--scope", "agents", "--profile", "coder")
	if a.Scope != "agents" || len(a.ProfileIDs) != 1 || a.ProfileIDs[0] != p.ID || a.ID == s.ID {
		t.Fatalf("agents secret: %+v", a)
	}
	// The name now names two secrets: by name is refused, by id works.
	c.exits(exitInvalid, "names 2 secrets", "", "secrets", "get", "GITHUB_TOKEN")
	var got secretOut
	c.jsonOf(&got, "", "secrets", "get", a.ID)
	if got.ID != a.ID || got.Version != 1 {
		t.Fatalf("secrets get %s: %+v", a.ID, got)
	}

	var versions []struct {
		Version int  `json:"version"`
		Current bool `json:"current"`
	}
	c.jsonOf(&versions, "", "secrets", "versions", s.ID)
	if len(versions) != 2 || versions[0].Version != 2 || !versions[0].Current {
		t.Fatalf("versions: %+v", versions)
	}
	var rolled secretOut
	c.jsonOf(&rolled, "", "secrets", "rollback", s.ID, "1")
	if rolled.Version != 3 {
		t.Fatalf("rollback: %+v", rolled)
	}
	c.exits(exitInvalid, "VERSION: must be a version number", "", "secrets", "rollback", s.ID, "one")

	var del map[string]any
	c.jsonOf(&del, "", "secrets", "delete", a.ID)
	if del["id"] != a.ID || del["deleted"] != true {
		t.Fatalf("delete --json: %v", del)
	}
	c.exits(exitNotFound, "secret not found", "", "secrets", "get", a.ID)
	c.exits(exitNotFound, "no secret named NOPE", "", "secrets", "delete", "NOPE")
	c.exits(exitInvalid, "name: must match", "x-value-1234", "secrets", "set", "lower_case")
	c.exits(exitInvalid, "--profile: required with --scope agents", "", "secrets", "set", "X", "--scope", "agents")
	c.exits(exitInvalid, "value: is empty", "", "secrets", "set", "EMPTY")
	c.exits(exitNotFound, "no profile named ghost", "v-1234", "secrets", "set", "X", "--scope", "agents", "--profile", "ghost")
}

func TestClientProfilesAndTasks(t *testing.T) {
	t.Parallel()
	url, token := devServer(t, "--no-worker")
	c := newCLI(t, url, token)

	type profileOut struct {
		ID      string            `json:"id"`
		Name    string            `json:"name"`
		Image   string            `json:"image"`
		Command []string          `json:"command"`
		Env     map[string]string `json:"env"`
		Setup   []string          `json:"setup_commands"`
	}
	var p profileOut
	c.jsonOf(&p, "", "profiles", "create", "coder", "--image", "busybox:1.36", "--env", "MODE=review", "--setup", "true", "--", "sh", "-c", "echo $MODE")
	if p.Name != "coder" || p.Image != "busybox:1.36" || strings.Join(p.Command, "|") != "sh|-c|echo $MODE" || p.Env["MODE"] != "review" || len(p.Setup) != 1 {
		t.Fatalf("profiles create --json: %+v", p)
	}
	c.exits(exitConflict, "name: you already have a profile of this name", "", "profiles", "create", "coder", "--image", "x")
	c.exits(exitInvalid, "image: ", "", "profiles", "create", "noimage")
	c.exits(exitUsage, "usage: envvault profiles create", "", "profiles", "create")

	var up profileOut
	c.jsonOf(&up, "", "profiles", "update", "coder", "--name", "reviewer")
	if up.ID != p.ID || up.Name != "reviewer" || up.Image != p.Image || up.Env["MODE"] != "review" {
		t.Fatalf("update changed more than the name: %+v", up)
	}
	var list []profileOut
	c.jsonOf(&list, "", "profiles", "list")
	if len(list) != 1 || list[0].Name != "reviewer" {
		t.Fatalf("profiles list: %+v", list)
	}
	c.ok(canary, "secrets", "set", "API_KEY")
	var env []struct {
		Name  string `json:"name"`
		Scope string `json:"scope"`
	}
	c.jsonOf(&env, "", "profiles", "env", "reviewer")
	if len(env) != 1 || env[0].Name != "API_KEY" || env[0].Scope != "all" {
		t.Fatalf("profiles env: %+v", env)
	}
	var keys []struct {
		Name     string `json:"name"`
		HasValue bool   `json:"has_value"`
		Source   string `json:"source"`
	}
	c.jsonOf(&keys, "", "profiles", "keys", "reviewer")
	if len(keys) != 2 || keys[0].Name != "API_KEY" || !keys[0].HasValue || keys[0].Source != "all" || keys[1].Name != "MODE" || keys[1].Source != "profile_env" {
		t.Fatalf("profiles keys: %+v", keys)
	}
	if r := c.ok("", "profiles", "get", p.ID); !strings.Contains(r.stdout, "image:") || !strings.Contains(r.stdout, "MODE=review") {
		t.Fatalf("profiles get: %s", r)
	}

	type taskOut struct {
		ID        string `json:"id"`
		Status    string `json:"status"`
		ProfileID string `json:"profile_id"`
		Prompt    string `json:"prompt"`
	}
	var task taskOut
	c.jsonOf(&task, "", "tasks", "start", "reviewer", "--prompt", "review PR 7")
	if task.Status != "queued" || task.ProfileID != p.ID || task.Prompt != "review PR 7" {
		t.Fatalf("tasks start --json: %+v", task)
	}
	var tasks []taskOut
	c.jsonOf(&tasks, "", "tasks", "list")
	if len(tasks) != 1 || tasks[0].ID != task.ID {
		t.Fatalf("tasks list: %+v", tasks)
	}
	var one taskOut
	c.jsonOf(&one, "", "tasks", "get", task.ID)
	if one.ID != task.ID {
		t.Fatalf("tasks get: %+v", one)
	}
	var stopped taskOut
	c.jsonOf(&stopped, "", "tasks", "stop", task.ID)
	if stopped.Status != "stopped" {
		t.Fatalf("tasks stop of a queued task: %+v", stopped)
	}
	c.exits(exitNotFound, "not found", "", "tasks", "get", "tsk_nope")
	c.exits(exitNotFound, "no profile named ghost", "", "tasks", "start", "ghost")

	var del map[string]any
	c.jsonOf(&del, "", "profiles", "delete", "reviewer")
	if del["id"] != p.ID {
		t.Fatalf("profiles delete: %v", del)
	}
	c.exits(exitNotFound, "no profile named reviewer", "", "profiles", "get", "reviewer")
}

// TestClientExitCodes: each class of failure has its code, its message on
// stderr and nothing on stdout.
func TestClientExitCodes(t *testing.T) {
	t.Parallel()
	url, token := devServer(t, "--no-worker")
	c := newCLI(t, url, token)
	c.exits(exitUsage, "unknown command \"secrets lst\"", "", "secrets", "lst")
	c.exits(exitUsage, "flag provided but not defined", "", "secrets", "list", "--bogus")
	c.exits(exitUsage, "takes no --user; on the server, for any user: envvault admin secrets list --user NAME", "", "secrets", "list", "--user", "dev")
	c.exits(exitNotFound, "secret not found", "", "secrets", "get", "sec_nope")
	c.exits(exitInvalid, "name: must match", "v-1234", "secrets", "set", "bad-name")
	c.ok("", "profiles", "create", "p", "--image", "i")
	c.exits(exitConflict, "name:", "", "profiles", "create", "p", "--image", "i")

	bad := newCLI(t, url, "tok_wrong")
	bad.exits(exitAuth, "refused the token", "", "secrets", "list")
	none := newCLI(t, url, "")
	none.exits(exitAuth, "no token for "+url, "", "secrets", "list")
	nourl := newCLI(t, "", "")
	nourl.exits(exitAuth, "no server: set ENVVAULT_URL", "", "profiles", "list")

	// A server that is not there: exit 7.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := "http://" + l.Addr().String()
	l.Close()
	newCLI(t, gone, token).exits(exitServer, "connection refused", "", "secrets", "list")
}

// TestClientLogin: the token comes from stdin, never argv; the file is
// 0600; a file others may read is refused; ENVVAULT_* win over it.
func TestClientLogin(t *testing.T) {
	t.Parallel()
	url, token := devServer(t, "--no-worker")
	c := newCLI(t, "", "")
	c.exits(exitAuth, "refused the token", "tok_wrong\n", "login", "--url", url)
	r := c.ok(token+"\n", "login", "--url", url)
	if strings.Contains(r.stdout+r.stderr, token) {
		t.Fatalf("login printed the token: %s", r)
	}
	path := filepath.Join(c.home, ".config", "envvault", "login.json")
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("%s has mode %v, want 0600", path, info.Mode().Perm())
	}
	c.ok(canary, "secrets", "set", "FROM_LOGIN")
	var list []secretOut
	c.jsonOf(&list, "", "secrets", "list")
	if len(list) != 1 || list[0].Name != "FROM_LOGIN" {
		t.Fatalf("list after login: %+v", list)
	}
	// ENVVAULT_TOKEN wins over the saved one.
	c.env["ENVVAULT_TOKEN"] = "tok_wrong"
	c.exits(exitAuth, "refused the token", "", "secrets", "list")
	delete(c.env, "ENVVAULT_TOKEN")

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	c.exits(exitAuth, "others may read the token", "", "secrets", "list")
	c.ok("", "logout")
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("logout left %s: %v", path, err)
	}
	c.exits(exitAuth, "no server", "", "secrets", "list")
}

// TestClientConventions: help on stdout with exit 0, grouped, --flag;
// version; completion scripts that bash loads and that complete.
func TestClientConventions(t *testing.T) {
	t.Parallel()
	c := newCLI(t, "", "")
	r := c.ok("", "--help")
	client, server := strings.Index(r.stdout, "Client commands"), strings.Index(r.stdout, "Server-side commands")
	if client < 0 || server < client || !strings.Contains(r.stdout[client:server], "  secrets") || !strings.Contains(r.stdout[server:], "  serve") || r.stderr != "" {
		t.Fatalf("--help is not grouped on stdout: %s", r)
	}
	for _, args := range [][]string{{"help", "secrets", "set"}, {"secrets", "set", "--help"}, {"serve", "-h"}} {
		r := c.ok("", args...)
		if !strings.Contains(r.stdout, "USAGE") || !strings.Contains(r.stdout, "  --") || strings.Contains(r.stdout, "\n  -addr") {
			t.Errorf("%v: help without --flags on stdout: %s", args, r)
		}
	}
	if r := c.ok("", "help", "secrets", "set"); !strings.Contains(r.stdout, "--scope") || !strings.Contains(r.stdout, "EXIT CODES") {
		t.Errorf("help secrets set: %s", r)
	}
	c.exits(exitUsage, "unknown command \"nope\"", "", "help", "nope")
	for _, args := range [][]string{{"version"}, {"--version"}} {
		if r := c.ok("", args...); !strings.HasPrefix(r.stdout, "envvault ") || !strings.Contains(r.stdout, "go1.") {
			t.Errorf("%v: %s", args, r)
		}
	}
	var v map[string]string
	c.jsonOf(&v, "", "version")
	if v["version"] == "" || v["commit"] == "" || !strings.HasPrefix(v["go"], "go1.") {
		t.Errorf("version --json: %v", v)
	}

	// bash: load the script and complete "envvault sec" and the flags of
	// "envvault secrets set".
	script := c.ok("", "completion", "bash").stdout
	complete := func(words string) string {
		cmd := exec.CommandContext(t.Context(), "bash", "-c", script+`
COMP_WORDS=(`+words+`); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _envvault; echo "${COMPREPLY[*]}"`)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bash completion %q: %v\n%s", words, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := complete("envvault sec"); got != "secrets" {
		t.Errorf("completing \"envvault sec\": %q", got)
	}
	if got := complete(`envvault secrets set NAME --sc`); got != "--scope" {
		t.Errorf("completing \"envvault secrets set NAME --sc\": %q", got)
	}
	if got := complete(`envvault tasks l`); got != "list logs" {
		t.Errorf("completing \"envvault tasks l\": %q", got)
	}
	if z := c.ok("", "completion", "zsh").stdout; !strings.Contains(z, "bashcompinit") || !strings.Contains(z, "complete -o default -F _envvault envvault") {
		t.Errorf("zsh completion: %s", z)
	}
	if f := c.ok("", "completion", "fish").stdout; !strings.Contains(f, `complete -c envvault -n "__fish_seen_subcommand_from secrets; and __fish_seen_subcommand_from set" -l scope`) {
		t.Errorf("fish completion: %s", f)
	}
	c.exits(exitUsage, "bash, zsh or fish", "", "completion", "tcsh")
}

// TestClientFollow runs a task on Docker with --follow: the logs on
// stdout, the secret masked, exit 0; a failing task exits 1.
func TestClientFollow(t *testing.T) {
	t.Parallel()
	_, _, shellImage := dockerImages(t)
	url, token := devServer(t)
	c := newCLI(t, url, token)
	c.ok(canary, "secrets", "set", "GITHUB_TOKEN")
	c.ok("", "profiles", "create", "echo", "--image", shellImage, "--", "sh", "-c", `echo "hello $TASK_PROMPT"; echo "token=$GITHUB_TOKEN"`)
	r := c.ok("", "tasks", "start", "echo", "--prompt", "world", "--follow")
	if !strings.Contains(r.stdout, "hello world") || !strings.Contains(r.stdout, "token=") || !strings.Contains(r.stderr, "succeeded (exit code 0)") {
		t.Fatalf("tasks start --follow: %s", r)
	}
	c.ok("", "profiles", "create", "fail", "--image", shellImage, "--", "sh", "-c", "echo bye; exit 3")
	r = c.run("", "tasks", "start", "fail", "--follow")
	if r.code != exitFailure || !strings.Contains(r.stdout, "bye") || !strings.Contains(r.stderr, "failed (exit code 3)") {
		t.Fatalf("a failing task under --follow: %s", r)
	}
	var tasks []struct {
		ID string `json:"id"`
	}
	c.jsonOf(&tasks, "", "tasks", "list")
	if len(tasks) != 2 {
		t.Fatalf("tasks: %+v", tasks)
	}
	if r := c.ok("", "tasks", "logs", tasks[1].ID); !strings.Contains(r.stdout, "hello world") {
		t.Fatalf("tasks logs: %s", r)
	}
}

// TestClientImport: secrets import over the API, all or nothing, every
// bad line named as the server-side import names it, no value printed.
func TestClientImport(t *testing.T) {
	t.Parallel()
	url, token := devServer(t, "--no-worker")
	c := newCLI(t, url, token)
	good := writeTemp(t, "app.env", "# app\nexport API_KEY='"+canary+"'\nREGION=eu-west-1 # inline comment\n")
	r := c.ok("", "secrets", "import", good)
	if !strings.Contains(r.stdout, "Imported "+good+" (scope all): 2 created, 0 updated, 0 unchanged.") {
		t.Fatalf("import: %s", r)
	}
	var res map[string]int
	c.jsonOf(&res, "", "secrets", "import", good)
	if res["created"] != 0 || res["unchanged"] != 2 {
		t.Fatalf("import again --json: %v", res)
	}
	bad := writeTemp(t, "bad.env", "NEW_ONE="+canary+"\nnot a line\nLD_PRELOAD=/tmp/x.so\nAPI_KEY="+canary+"-changed\n")
	r = c.exits(exitInvalid, bad+": 2 bad lines, nothing imported:\n  line 2: expected NAME=value\n  line 3: name: LD_PRELOAD changes how programs load code", "", "secrets", "import", bad)
	var list []secretOut
	c.jsonOf(&list, "", "secrets", "list")
	if len(list) != 2 || list[0].Version != 1 || list[1].Version != 1 {
		t.Fatalf("a refused import changed the secrets: %+v", list)
	}
	// From stdin, with scope agents granted by profile name.
	c.ok("", "profiles", "create", "coder", "--image", "i")
	r = c.ok("API_KEY="+canary+"-coder\n", "secrets", "import", "-", "--scope", "agents", "--profile", "coder")
	if !strings.Contains(r.stdout, "1 created") {
		t.Fatalf("import - --scope agents: %s", r)
	}
	c.exits(exitFailure, "no such file or directory", "", "secrets", "import", filepath.Join(t.TempDir(), "missing.env"))
}

// TestClientTokens: a new token's secret alone on stdout, scopes enforced,
// never listed, revoked by name.
func TestClientTokens(t *testing.T) {
	t.Parallel()
	url, token := devServer(t, "--no-worker")
	c := newCLI(t, url, token)
	r := c.ok("", "tokens", "create", "ci reader", "--scope", "read", "--expires-in", "720h")
	read := strings.TrimSpace(r.stdout)
	if !strings.HasPrefix(read, "tok_") || strings.Count(r.stdout, "\n") != 1 || !strings.Contains(r.stderr, `Created token "ci reader"`) || strings.Contains(r.stderr, read) {
		t.Fatalf("tokens create: %s", r)
	}
	reader := newCLI(t, url, read)
	reader.ok("", "secrets", "list")
	reader.exits(exitAuth, "needs scope", "v-1234", "secrets", "set", "X")

	var tokens []struct {
		ID        string  `json:"id"`
		Name      string  `json:"name"`
		Scope     string  `json:"scope"`
		ExpiresAt *string `json:"expires_at"`
	}
	r = c.run("", "tokens", "list", "--json")
	if strings.Contains(r.stdout, read) || strings.Contains(r.stdout, token) {
		t.Fatalf("tokens list shows a secret: %s", r)
	}
	c.jsonOf(&tokens, "", "tokens", "list")
	if len(tokens) != 2 {
		t.Fatalf("tokens list: %+v", tokens)
	}
	var created struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	c.jsonOf(&created, "", "tokens", "create", "runner", "--scope", "tasks")
	if !strings.HasPrefix(created.Token, created.ID+".") {
		t.Fatalf("tokens create --json: %+v", created)
	}
	c.ok("", "tokens", "revoke", "ci reader")
	reader.exits(exitAuth, "refused the token", "", "secrets", "list")
	c.exits(exitNotFound, "no token named", "", "tokens", "revoke", "ci reader")
	c.exits(exitUsage, "must be full, read or tasks", "", "tokens", "create", "x", "--scope", "admin")
}

// TestClientPrompt types a value at the hidden prompt of secrets set, in a
// terminal (script(1) gives the binary a pseudo-terminal): the prompt is
// shown, the value is not echoed, and it is saved.
func TestClientPrompt(t *testing.T) {
	t.Parallel()
	scriptPath, err := exec.LookPath("script")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("script (util-linux) is missing: apt-get install -y util-linux")
		}
		t.Skip("script (util-linux) is missing: the prompt needs a terminal")
	}
	url, token := devServer(t, "--no-worker")
	c := newCLI(t, url, token)
	cmd := exec.CommandContext(t.Context(), scriptPath, "-qec", c.bin+" secrets set PROMPTED", "/dev/null")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + c.home, "ENVVAULT_URL=" + url, "ENVVAULT_TOKEN=" + token, "TERM=dumb"}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	chunks := make(chan string)
	go func() {
		defer close(chunks)
		buf := make([]byte, 4096)
		for {
			n, err := stdout.Read(buf)
			if n > 0 {
				chunks <- string(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	var out strings.Builder
	await := func(what string) {
		t.Helper()
		timeout := time.After(60 * time.Second)
		for !strings.Contains(out.String(), what) {
			select {
			case c, ok := <-chunks:
				if !ok {
					t.Fatalf("output ended before %q:\n%s", what, out.String())
				}
				out.WriteString(c)
			case <-timeout:
				t.Fatalf("timed out waiting for %q:\n%s", what, out.String())
			}
		}
	}
	// Type only once the prompt is up (it ends no line): the terminal
	// echoes what comes before envvault turns echo off.
	await("Value of PROMPTED (not shown): ")
	if _, err := io.WriteString(stdin, canary+"\r"); err != nil {
		t.Fatal(err)
	}
	await("Created secret PROMPTED")
	stdin.Close()
	for c := range chunks {
		out.WriteString(c)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("script: %v\n%s", err, out.String())
	}
	if strings.Contains(out.String(), canary) {
		t.Fatalf("the typed value was echoed:\n%s", out.String())
	}
	var list []secretOut
	c.jsonOf(&list, "", "secrets", "list")
	if len(list) != 1 || list[0].Name != "PROMPTED" {
		t.Fatalf("secrets after the prompt: %+v", list)
	}
}

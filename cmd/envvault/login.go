package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"

	vclient "github.com/envvault/envvault/client"
)

const (
	cmdLogin  = "login"
	cmdLogout = "logout"
)

// login is the file `envvault login` writes: the server and its token.
type login struct {
	URL   string `json:"url"`
	Token string `json:"token"`
}

// loginPath is os.UserConfigDir()/envvault/login.json
// ($XDG_CONFIG_HOME/envvault/login.json, ~/.config/envvault/login.json).
func loginPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the config directory for envvault login: %w", err)
	}
	return filepath.Join(dir, "envvault", "login.json"), nil
}

// readLogin reads the login file; a missing file is an empty login. A file
// others may read is refused, as ssh refuses such a key: it holds a token.
func readLogin() (login, string, error) {
	path, err := loginPath()
	if err != nil {
		return login{}, "", err
	}
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return login{}, path, nil
	} else if err != nil {
		return login{}, path, fmt.Errorf("login file: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return login{}, path, authError(fmt.Errorf("login file %s has mode %04o: others may read the token in it; run chmod 600 %s (or envvault login again)",
			path, info.Mode().Perm(), path))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return login{}, path, fmt.Errorf("login file: %w", err)
	}
	var l login
	if err := json.Unmarshal(b, &l); err != nil {
		// The file's content is not quoted: it holds a token.
		return login{}, path, fmt.Errorf("login file %s is not the JSON envvault login writes: run envvault login again", path)
	}
	return l, path, nil
}

// writeLogin replaces the login file with l, mode 0600 in a 0700
// directory, by rename so that no reader sees half a file.
func writeLogin(l login) (string, error) {
	path, err := loginPath()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("login file: %w", err)
	}
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".login-*.json")
	if err != nil {
		return "", fmt.Errorf("login file: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, there is nothing to remove
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", fmt.Errorf("login file: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return "", fmt.Errorf("login file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("login file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("login file: %w", err)
	}
	return path, nil
}

// loginCommand is `envvault login`.
func (m *Main) loginCommand() *ffcli.Command {
	c, fs := m.remoteCommand(cmdLogin)
	fs.StringVar(&c.Client.Name, "url", "", "the server, http(s)://host:port (default ENVVAULT_URL, else http://127.0.0.1:8080)")
	return m.remoteLeaf(c, fs, 0, 0, &ffcli.Command{
		ShortUsage: "envvault login [--url URL] < token-file",
		ShortHelp:  "save a server and its API token for the client commands",
		LongHelp: `Reads an API token (tok_…) from stdin, or asks for it without echo at a
terminal, checks it against the server, and saves both in
$XDG_CONFIG_HOME/envvault/login.json (~/.config/envvault/login.json), mode
0600. The token is never an argument: it would stay in shell history and ps.
ENVVAULT_URL and ENVVAULT_TOKEN, when set, win over the saved ones.`,
	})
}

// runLogin is `envvault login`.
func (m *Main) runLogin(ctx context.Context, _ *vclient.Client) error {
	url := m.Config.Client.Name
	if url == "" {
		url = m.Config.Client.URL
	}
	if url == "" {
		url = "http://127.0.0.1:8080"
	}
	url = strings.TrimSuffix(url, "/")
	token, err := m.readHidden("API token (tok_…): ", "token")
	if err != nil {
		return err
	}
	c, err := vclient.New(url, token, vclient.Options{})
	if err != nil {
		return invalidError(fmt.Errorf("--url: %w", err))
	}
	one := 1
	if _, err := c.ListSecrets(ctx, &vclient.ListSecretsParams{Limit: &one}); err != nil {
		return fmt.Errorf("check the token against %s: %w", url, err)
	}
	path, err := writeLogin(login{URL: url, Token: token})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(m.Stderr, "Logged in to %s; saved in %s (mode 0600).\n", url, path)
	return err
}

// logoutCommand is `envvault logout`.
func (m *Main) logoutCommand() *ffcli.Command {
	c := &Config{Command: cmdLogout}
	c.Client.local = true
	return m.leaf(c, m.flagSet("envvault logout"), &ffcli.Command{
		ShortUsage: "envvault logout",
		ShortHelp:  "remove the server and token envvault login saved",
	})
}

// runLogout is `envvault logout`.
func (m *Main) runLogout(context.Context) error {
	path, err := loginPath()
	if err != nil {
		return err
	}
	if err := os.Remove(path); errors.Is(err, fs.ErrNotExist) {
		_, err = fmt.Fprintf(m.Stderr, "Not logged in (no %s).\n", path)
		return err
	} else if err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	_, err = fmt.Fprintf(m.Stderr, "Removed %s.\n", path)
	return err
}

// maxSecretInput bounds what is read from stdin for one value: the API's
// largest value and a little more, so that a larger one gets the API's
// message.
const maxSecretInput = 64<<10 + 1024

// readHidden reads a value: at a terminal from a prompt on stderr without
// echo, else all of stdin without one trailing newline. what names the
// value in errors. The value is never echoed, printed or logged.
func (m *Main) readHidden(prompt, what string) (string, error) {
	if f, ok := m.stdinTerminal(); ok {
		b, err := readNoEcho(f, m.Stderr, prompt)
		fmt.Fprintln(m.Stderr)
		if err != nil {
			return "", fmt.Errorf("read the %s: %w", what, err)
		}
		return m.nonEmpty(string(b), what)
	}
	if m.Stdin == nil {
		return "", invalidError(fmt.Errorf("no %s on stdin", what))
	}
	b, err := io.ReadAll(io.LimitReader(m.Stdin, maxSecretInput))
	if err != nil {
		return "", fmt.Errorf("read the %s from stdin: %w", what, err)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	return m.nonEmpty(string(b), what)
}

func (m *Main) nonEmpty(v, what string) (string, error) {
	if v == "" {
		return "", invalidError(fmt.Errorf("%s: is empty (give it on stdin, e.g. printf %%s \"$VALUE\" | envvault …, or at the prompt)", what))
	}
	return v, nil
}

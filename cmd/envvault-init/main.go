// Command envvault-init is the first program of a task container whose env
// is delivered over stdin (env_delivery "stdin"): it reads the task's env
// as one block (package envblock) from stdin, or from a file with -f, lays
// it over the env the engine gave the container, and execs the command, so
// that the command becomes PID 1 with its env set and no value ever stands
// in the container's configuration or on its command line.
//
//	envvault-init [-f FILE] [-t TIMEOUT] -- COMMAND [ARG...]
//
// TIMEOUT (a Go duration) replaces ReadTimeout.
//
// It must be static (CGO_ENABLED=0): it runs in any image, FROM scratch
// ones included. Exit codes, as shells and `docker run` use them: 125 the
// env block is missing, late (ReadTimeout) or malformed; 126 the command
// cannot be executed; 127 it is not found. Messages go to stderr and name
// the command, never a value.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/envvault/envvault/runner/envblock"
)

// ReadTimeout bounds the wait for the block: envvault writes it right
// after the start, so a block this late is never coming.
const ReadTimeout = 60 * time.Second

func main() {
	a, err := parseArgs(os.Args[1:])
	if err != nil {
		fail(envblock.ExitNoBlock, err.Error())
	}
	file, argv := a.file, a.argv
	timer := time.AfterFunc(a.timeout, func() {
		fail(envblock.ExitNoBlock, fmt.Sprintf("no env block within %s", a.timeout))
	})
	entries, err := readBlock(file)
	if err != nil {
		fail(envblock.ExitNoBlock, err.Error())
	}
	timer.Stop()
	env := overlay(os.Environ(), entries)
	path, code, err := lookPath(argv[0], env)
	if err != nil {
		fail(code, err.Error())
	}
	err = syscall.Exec(path, argv, env)
	code = 126
	if err == syscall.ENOENT {
		code = 127
	}
	fail(code, fmt.Sprintf("exec %s: %v", argv[0], err))
}

type args struct {
	file    string
	timeout time.Duration
	argv    []string
}

func parseArgs(in []string) (args, error) {
	a := args{timeout: ReadTimeout}
	usage := fmt.Errorf("usage: envvault-init [-f FILE] [-t TIMEOUT] -- COMMAND [ARG...]")
	for len(in) >= 2 && in[0] != "--" {
		switch in[0] {
		case "-f":
			a.file = in[1]
		case "-t":
			d, err := time.ParseDuration(in[1])
			if err != nil || d <= 0 {
				return a, usage
			}
			a.timeout = d
		default:
			return a, usage
		}
		in = in[2:]
	}
	if len(in) < 2 || in[0] != "--" {
		return a, usage
	}
	a.argv = in[1:]
	return a, nil
}

func readBlock(file string) ([]string, error) {
	var r io.Reader = os.Stdin
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	return envblock.Read(r)
}

// overlay returns base with every name of entries set to its entry, as
// the engine lays a container's env over its image's.
func overlay(base, entries []string) []string {
	set := make(map[string]bool, len(entries))
	for _, kv := range entries {
		name, _, _ := strings.Cut(kv, "=")
		set[name] = true
	}
	out := make([]string, 0, len(base)+len(entries))
	for _, kv := range base {
		name, _, _ := strings.Cut(kv, "=")
		if !set[name] {
			out = append(out, kv)
		}
	}
	return append(out, entries...)
}

// lookPath finds name as the engine's runtime does: as given if it holds
// a '/', else in the PATH of env.
func lookPath(name string, env []string) (string, int, error) {
	if strings.Contains(name, "/") {
		return name, 0, nil
	}
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range strings.Split(path, ":") {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + name
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, 0, nil
		}
	}
	return "", 127, fmt.Errorf("%s: not found in PATH", name)
}

func fail(code int, msg string) {
	fmt.Fprintln(os.Stderr, envblock.InitPrefix+msg)
	os.Exit(code)
}

// Command envprobe is the program inside envvault's test images: a static
// binary that shows what a container received and behaves in the ways the
// runner must cope with (long output, split writes, exit codes, sleeping
// until stopped).
//
// Its arguments are steps separated by "--", run in order:
//
//	env                 print the environment, sorted, one NAME=value per line
//	envjson             print the environment, sorted, as one JSON array of "NAME=value"
//	pid1envjson         the same for PID 1's environment (/proc/1/environ): run by docker exec,
//	                    what the container's process got, not what the exec got
//	echo NAME...        print the value of each NAME on its own line (stdout)
//	echoerr NAME...     the same on stderr
//	print TEXT...       print TEXT (words joined by spaces) and a newline
//	split NAME [PAUSE]  print the value of NAME in two writes, PAUSE (default 50ms) apart, then a newline
//	straddle NAME       print filler and the value of NAME so that the value crosses
//	                    Docker's 16 KiB log buffer: Docker delivers it in two log messages
//	base64 NAME         print the value of NAME as standard, raw standard, URL-safe and
//	                    raw URL-safe base64, one per line
//	lines N             print N lines "line 1" … "line N"
//	cmdline             print PID 1's command line (/proc/1/cmdline), its words joined by spaces
//	sleep DURATION      sleep (a Go duration, or "forever"); SIGTERM ends it with exit code 143
//	hang                ignore SIGTERM and sleep forever (only SIGKILL ends it)
//	touch PATH          create the file PATH (and its directories)
//	wait-for-file PATH  wait until PATH exists
//	exit N              exit with code N
//
// An unset NAME prints "<unset>". A malformed step exits with code 2.
package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// dockerLogBuf is the size of the buffer Docker's log copier splits long
// lines at (daemon/logger/copier.go, defaultBufSize).
const dockerLogBuf = 16 * 1024

func main() {
	args := os.Args[1:]
	if len(args) == 0 {
		args = []string{"env"}
	}
	// As PID 1 a process only gets the signals it handles; handle SIGTERM
	// so that a graceful stop ends the probe at once with the conventional
	// code, and say so in the logs.
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-term
		fmt.Fprintln(os.Stderr, "envprobe: terminated")
		os.Exit(143)
	}()
	for _, step := range steps(args) {
		run(step)
	}
}

func steps(args []string) [][]string {
	var out [][]string
	cur := []string{}
	for _, a := range args {
		if a == "--" {
			out = append(out, cur)
			cur = []string{}
			continue
		}
		cur = append(cur, a)
	}
	return append(out, cur)
}

// stepFunc carries out one step with its arguments.
type stepFunc func(args []string)

// stepKinds are the steps by name, each with the fewest arguments it
// takes.
var stepKinds = map[string]struct {
	need int
	do   stepFunc
}{
	"env":           {0, func([]string) { printEnv() }},
	"envjson":       {0, func([]string) { printEnvJSON(environ()) }},
	"pid1envjson":   {0, func([]string) { printEnvJSON(pid1Environ()) }},
	"echo":          {0, func(args []string) { echo(os.Stdout, args) }},
	"echoerr":       {0, func(args []string) { echo(os.Stderr, args) }},
	"print":         {0, func(args []string) { write(os.Stdout, strings.Join(args, " ")+"\n") }},
	"split":         {1, split},
	"straddle":      {1, straddle},
	"base64":        {1, printBase64},
	"lines":         {1, lines},
	"cmdline":       {0, func([]string) { cmdline() }},
	"sleep":         {1, sleep},
	"hang":          {0, func([]string) { hang() }},
	"touch":         {1, touch},
	"wait-for-file": {1, waitForFile},
	"exit":          {1, exit},
}

func run(step []string) {
	if len(step) == 0 {
		return
	}
	mode, args := step[0], step[1:]
	kind, ok := stepKinds[mode]
	if !ok {
		fail("unknown step %q", mode)
	}
	if len(args) < kind.need {
		fail("%s needs %d argument(s)", mode, kind.need)
	}
	kind.do(args)
}

func printEnv() {
	for _, kv := range environ() {
		write(os.Stdout, kv+"\n")
	}
}

func printEnvJSON(env []string) {
	b, err := json.Marshal(env)
	if err != nil {
		fail("envjson: %v", err)
	}
	write(os.Stdout, string(b)+"\n")
}

func echo(w *os.File, names []string) {
	for _, name := range names {
		write(w, value(name)+"\n")
	}
}

// split prints the value of args[0] in two writes, a pause apart.
func split(args []string) {
	pause := 50 * time.Millisecond
	if len(args) > 1 {
		pause = duration(args[1])
	}
	v := value(args[0])
	write(os.Stdout, v[:len(v)/2])
	time.Sleep(pause)
	write(os.Stdout, v[len(v)/2:]+"\n")
}

// straddle prints the value of args[0] across Docker's log buffer.
func straddle(args []string) {
	v := value(args[0])
	fill := max(dockerLogBuf-len(v)/2, 0)
	write(os.Stdout, strings.Repeat(".", fill)+v+"\n")
}

func printBase64(args []string) {
	v := []byte(value(args[0]))
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		write(os.Stdout, enc.EncodeToString(v)+"\n")
	}
}

func lines(args []string) {
	n, err := strconv.Atoi(args[0])
	if err != nil {
		fail("lines: %v", err)
	}
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	write(os.Stdout, b.String())
}

func cmdline() {
	b, err := os.ReadFile("/proc/1/cmdline")
	if err != nil {
		fail("cmdline: %v", err)
	}
	write(os.Stdout, strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))+"\n")
}

func sleep(args []string) {
	if args[0] == "forever" {
		select {}
	}
	time.Sleep(duration(args[0]))
}

// hang sleeps forever, deaf to SIGTERM: only SIGKILL ends it.
func hang() {
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT)
	select {}
}

func touch(args []string) {
	if err := os.MkdirAll(filepath.Dir(args[0]), 0o755); err != nil {
		fail("touch: %v", err)
	}
	if err := os.WriteFile(args[0], nil, 0o644); err != nil {
		fail("touch: %v", err)
	}
}

func waitForFile(args []string) {
	for {
		if _, err := os.Stat(args[0]); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func exit(args []string) {
	n, err := strconv.Atoi(args[0])
	if err != nil {
		fail("exit: %v", err)
	}
	os.Exit(n)
}

func environ() []string {
	env := os.Environ()
	slices.Sort(env)
	return env
}

func pid1Environ() []string {
	b, err := os.ReadFile("/proc/1/environ")
	if err != nil {
		fail("pid1envjson: %v", err)
	}
	env := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	slices.Sort(env)
	return env
}

func value(name string) string {
	v, ok := os.LookupEnv(name)
	if !ok {
		return "<unset>"
	}
	return v
}

func duration(s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		fail("bad duration %q", s)
	}
	return d
}

// write makes exactly one write call, so that a test controls where the
// stream is cut.
func write(f *os.File, s string) {
	if _, err := f.WriteString(s); err != nil {
		os.Exit(3)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "envprobe: "+format+"\n", args...)
	os.Exit(2)
}

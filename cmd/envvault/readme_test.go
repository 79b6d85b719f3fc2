package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envvault/envvault/internal/testenv"
)

// TestREADME runs the README's command blocks marked <!-- readme-test … -->
// in order, in one bash, in a fresh directory, with the built binary as
// envvault on PATH, as a newcomer would type them: it fails when a command
// fails or an answer shown in a console block changes shape (ids, times
// and container names aside). Markers:
//
//	<!-- readme-test -->             run the block: sh (its last status must be 0), console ($ lines; the lines after each are its output)
//	<!-- readme-test background -->  run the block's command in the background (stopping the one before), await its "listening"
//	<!-- readme-test exports -->     instead of the block, run the export lines the background command printed
//	… docker                         added to any of them: the block needs Docker (skipped without it, failed with CI=true)
//
// ENVVAULT_README_UPDATE=1 writes the outputs of the steps whose shape
// changed into README.md instead of failing, for a deliberate change of an
// answer (review the diff); ENVVAULT_README names another file to check.
func TestREADME(t *testing.T) {
	readme := filepath.Join("..", "..", "README.md")
	if p := os.Getenv("ENVVAULT_README"); p != "" {
		readme = p // another copy, e.g. to update one without the working tree's edits
	}
	text, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeBlocks(string(text))
	if len(blocks) < 5 {
		t.Fatalf("README.md has %d blocks marked readme-test", len(blocks))
	}
	bin := staticBinary(t)
	sh := newReadmeShell(t, filepath.Dir(bin))
	update := os.Getenv("ENVVAULT_README_UPDATE") == "1"
	dockerChecked, haveDocker := false, false
	out := string(text)
	for _, b := range blocks {
		if b.docker && !dockerChecked {
			dockerChecked = true
			haveDocker = t.Run("docker", func(t *testing.T) { testenv.RequireDocker(t) })
		}
		if b.docker && !haveDocker {
			t.Logf("README line %d: skipped, needs Docker", b.line)
			continue
		}
		switch b.kind {
		case "background":
			sh.background(b)
		case "exports":
			sh.exports(b)
		default:
			if b.lang == "console" {
				out = sh.console(b, out, update)
			} else {
				sh.script(b)
			}
		}
	}
	if update && out != string(text) {
		if err := os.WriteFile(readme, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("README.md updated with the outputs of this run: review the diff")
	}
}

// readmeBlock is a marked fenced block of the README.
type readmeBlock struct {
	line   int    // of the opening fence, 1-based
	lang   string // sh or console
	kind   string // "", background, exports
	docker bool
	body   string // between the fences
}

var readmeMarker = regexp.MustCompile(`^<!-- readme-test((?: [a-z]+)*) -->$`)

func readmeBlocks(text string) []readmeBlock {
	lines := strings.Split(text, "\n")
	var blocks []readmeBlock
	for i := 0; i < len(lines); i++ {
		m := readmeMarker.FindStringSubmatch(lines[i])
		if m == nil || i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "```") {
			continue
		}
		b := readmeBlock{line: i + 2, lang: strings.TrimPrefix(lines[i+1], "```")}
		for _, w := range strings.Fields(m[1]) {
			if w == "docker" {
				b.docker = true
			} else {
				b.kind = w
			}
		}
		var body []string
		for i += 2; i < len(lines) && lines[i] != "```"; i++ {
			body = append(body, lines[i])
		}
		b.body = strings.Join(body, "\n")
		blocks = append(blocks, b)
	}
	return blocks
}

// readmeShell is one bash the blocks run in, in a directory of the test's
// own; its stdout and stderr are one stream.
type readmeShell struct {
	t     *testing.T
	dir   string
	stdin io.WriteCloser
	lines chan string
	n     int
	logN  int  // background commands started
	bg    bool // one runs
}

func newReadmeShell(t *testing.T, binDir string) *readmeShell {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("bash", "--noprofile", "--norc")
	cmd.Dir = dir
	cmd.Env = []string{
		"PATH=" + binDir + ":" + os.Getenv("PATH"), "HOME=" + dir, "LANG=C.UTF-8",
		// Every server of the README on a free port: dev and serve read
		// ADDR as --addr, and print the URL they got.
		"ADDR=127.0.0.1:0",
	}
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		cmd.Env = append(cmd.Env, "DOCKER_HOST="+h)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &readmeShell{t: t, dir: dir, stdin: stdin, lines: make(chan string, 1024)}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
	}()
	t.Cleanup(func() {
		s.stopBackground()
		stdin.Close()
		_ = cmd.Wait()
		pw.Close()
	})
	return s
}

// run runs script in the shell and returns its output and status.
func (s *readmeShell) run(script string) (string, int) {
	s.t.Helper()
	s.n++
	end := fmt.Sprintf("__readme_end_%d__", s.n)
	// A newline first ends an output without one (curl's answers).
	fmt.Fprintf(s.stdin, "%s\n__rc=$?; echo; echo %s $__rc\n", script, end)
	var out []string
	timeout := time.After(3 * time.Minute)
	for {
		select {
		case line, ok := <-s.lines:
			if !ok {
				s.t.Fatalf("bash ended running:\n%s\n%s", script, strings.Join(out, "\n"))
			}
			if rest, found := strings.CutPrefix(line, end+" "); found {
				var rc int
				fmt.Sscan(rest, &rc)
				// Drop the newline added above.
				text := strings.Join(out, "\n")
				text = strings.TrimSuffix(text, "\n")
				return strings.TrimRight(text, "\n"), rc
			}
			out = append(out, line)
		case <-timeout:
			s.t.Fatalf("timed out running:\n%s\n%s", script, strings.Join(out, "\n"))
		}
	}
}

// script runs an sh block: its last status must be 0.
func (s *readmeShell) script(b readmeBlock) {
	s.t.Helper()
	if out, rc := s.run(b.body); rc != 0 {
		s.t.Fatalf("README line %d: the block exited %d:\n%s\n--- output:\n%s", b.line, rc, b.body, out)
	}
}

// background starts the block's one command in the background, after
// stopping the one before, and awaits the banner that says it listens.
func (s *readmeShell) background(b readmeBlock) {
	s.t.Helper()
	s.stopBackground()
	cmd := strings.TrimSpace(b.body)
	if strings.ContainsAny(cmd, "\n;&|") {
		s.t.Fatalf("README line %d: a background block holds one simple command, not %q", b.line, cmd)
	}
	s.logN++
	log := fmt.Sprintf(".readme-bg-%d.log", s.logN)
	// A simple command in the background is its own process: $! is the
	// server's pid.
	out, rc := s.run(fmt.Sprintf("%s > %s 2>&1 &\nreadme_bg=$!", cmd, log))
	if rc != 0 {
		s.t.Fatalf("README line %d: could not start %s: %s", b.line, cmd, out)
	}
	s.bg = true
	deadline := time.Now().Add(2 * time.Minute)
	for {
		data, _ := os.ReadFile(filepath.Join(s.dir, log))
		if strings.Contains(string(data), "Ctrl-C stops it") {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("README line %d: %s printed no banner:\n%s", b.line, cmd, data)
		}
		// The server writes a file; there is no event to await.
		time.Sleep(50 * time.Millisecond)
	}
}

// stopBackground stops the background command, if any, as Ctrl-C would,
// and waits for it to exit.
func (s *readmeShell) stopBackground() {
	if !s.bg {
		return
	}
	s.bg = false
	if out, rc := s.run(`kill -INT "$readme_bg"; wait "$readme_bg"`); rc != 0 && rc != 130 {
		s.t.Errorf("the background command exited %d on SIGINT: %s", rc, out)
	}
}

// exports runs the export lines the background command printed.
func (s *readmeShell) exports(b readmeBlock) {
	s.t.Helper()
	data, err := os.ReadFile(filepath.Join(s.dir, fmt.Sprintf(".readme-bg-%d.log", s.logN)))
	if err != nil {
		s.t.Fatalf("README line %d: no background command ran before: %v", b.line, err)
	}
	var exports []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "export ENVVAULT_") {
			exports = append(exports, l)
		}
	}
	// The block shows what the server prints, with the token elided.
	for _, l := range strings.Split(b.body, "\n") {
		name, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimSpace(l), "export "), "=")
		if name != "" && !strings.HasPrefix(strings.TrimSpace(l), "#") && !strings.Contains(string(data), "export "+name+"=") {
			s.t.Fatalf("README line %d: the server printed no export of %s:\n%s", b.line, name, data)
		}
	}
	if len(exports) == 0 {
		s.t.Fatalf("README line %d: the server printed no export lines:\n%s", b.line, data)
	}
	if out, rc := s.run(strings.Join(exports, "\n")); rc != 0 {
		s.t.Fatalf("README line %d: exports: %s", b.line, out)
	}
}

// console runs each "$ " command of a console block and compares its
// output with the lines after it in the README (or, updating, puts the
// output there); it returns the README text.
func (s *readmeShell) console(b readmeBlock, readme string, update bool) string {
	s.t.Helper()
	type step struct{ cmd, want string }
	var steps []step
	for _, l := range strings.Split(b.body, "\n") {
		switch {
		case strings.HasPrefix(l, "$ "):
			steps = append(steps, step{cmd: strings.TrimPrefix(l, "$ ")})
		case len(steps) > 0 && strings.HasSuffix(steps[len(steps)-1].cmd, "\\") && steps[len(steps)-1].want == "":
			steps[len(steps)-1].cmd += "\n" + l
		case len(steps) > 0:
			steps[len(steps)-1].want += l + "\n"
		default:
			s.t.Fatalf("README line %d: a console block must start with a $ line", b.line)
		}
	}
	var got strings.Builder
	changed := false
	for i, st := range steps {
		out, _ := s.run(st.cmd)
		want := strings.TrimRight(st.want, "\n")
		same := sameShape(out, want)
		changed = changed || !same
		if i > 0 {
			got.WriteString("\n")
		}
		fmt.Fprintf(&got, "$ %s\n", st.cmd)
		if out != "" {
			got.WriteString(out + "\n")
		}
		if !update && !same {
			s.t.Errorf("README line %d: $ %s\n--- README shows:\n%s\n--- got:\n%s\n--- normalised, README:\n%s\n--- got:\n%s",
				b.line, st.cmd, want, out, normalise(want), normalise(out))
		}
	}
	if !update || !changed {
		// A block whose answers kept their shape keeps its text: its
		// ids and times are as good as new ones.
		return readme
	}
	return strings.Replace(readme, "```"+b.lang+"\n"+b.body+"\n```", "```"+b.lang+"\n"+strings.TrimRight(got.String(), "\n")+"\n```", 1)
}

// What changes from run to run: ids, times, container ids and names.
var readmeVolatile = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\b(sec|prof|tsk|tok|usr|sreq)_[A-Za-z0-9_-]{21}(\.[A-Za-z0-9_-]{43})?`), "${1}_ID"},
	{regexp.MustCompile(`\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?Z`), "TIME"},
	{regexp.MustCompile(`\b[0-9a-f]{64}\b`), "CONTAINER"},
	{regexp.MustCompile(`HOSTNAME=[0-9a-f]{12}\b`), "HOSTNAME=CONTAINER"},
	{regexp.MustCompile(`http://127\.0\.0\.1:\d+`), "http://127.0.0.1:PORT"},
	{regexp.MustCompile(` +`), " "}, // tables: column widths follow the values
}

func normalise(s string) string {
	for _, v := range readmeVolatile {
		s = v.re.ReplaceAllString(s, v.with)
	}
	return strings.TrimSpace(s)
}

// sameShape compares two outputs after normalise. Lines that are JSON are
// compared as JSON values, so key order and spacing do not matter; the
// order of rows (table lines, the items of a JSON list) does not either,
// since rows of one name come in the order of their random ids.
func sameShape(got, want string) bool {
	g, w := shapeLines(got), shapeLines(want)
	slices.Sort(g)
	slices.Sort(w)
	return slices.Equal(g, w)
}

// shapeLines are the normalised lines of an output, JSON ones re-encoded
// with sorted keys and sorted lists.
func shapeLines(s string) []string {
	lines := strings.Split(normalise(s), "\n")
	for i, l := range lines {
		var v any
		if json.Unmarshal([]byte(l), &v) == nil {
			b, _ := json.Marshal(sortLists(v))
			lines[i] = string(b)
		}
	}
	return lines
}

// sortLists sorts every list in v by the JSON of its items.
func sortLists(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			v[k] = sortLists(x)
		}
	case []any:
		for i, x := range v {
			v[i] = sortLists(x)
		}
		slices.SortFunc(v, func(a, b any) int {
			ja, _ := json.Marshal(a)
			jb, _ := json.Marshal(b)
			return strings.Compare(string(ja), string(jb))
		})
	}
	return v
}

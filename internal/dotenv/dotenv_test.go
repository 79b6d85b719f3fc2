package dotenv

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	env, err := ParseMap([]byte("# platform\nANTHROPIC_API_KEY=sk-ant-123\nexport MCP_URL = http://mcp:8080/x?a=b \n\nQUOTED='a # b'\nESCAPED=\"l1\\nl2\" # note\nEMPTY=\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"ANTHROPIC_API_KEY": "sk-ant-123", "MCP_URL": "http://mcp:8080/x?a=b", "QUOTED": "a # b", "ESCAPED": "l1\nl2", "EMPTY": ""}
	if !maps.Equal(env, want) {
		t.Fatalf("env = %q", env)
	}
	entries, err := Parse([]byte("\n# c\nA=1\r\nB='2'\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []Entry{{3, "A", "1"}, {4, "B", "2"}}; len(entries) != 2 || entries[0] != want[0] || entries[1] != want[1] {
		t.Fatalf("entries = %+v, want %+v", entries, want)
	}
}

func TestParseErrors(t *testing.T) {
	bad := []struct{ in, want string }{
		{"A=1\njust words canary\n", "line 2: expected NAME=value"},
		{"A=1\nlower_canary=x\n", "line 2: name must match"},
		{"A=1\n\nA=2\n", "line 3: A is set twice (first on line 1)"},
		{"A=\"canary-secret\n", "line 1: value of A: missing closing quote"},
		{"A='canary-secret' tail\n", "line 1: value of A: unexpected text"},
		{"A=\"canary\\q\"\n", "line 1: value of A: unknown escape"},
		{"A=canary\x00\n", "line 1: value of A contains a NUL byte"},
		{"A=" + strings.Repeat("canary", MaxLineLen/6) + "\n", "line 1: longer than"},
	}
	for _, tt := range bad {
		_, err := Parse([]byte(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%.40q) = %v, want %q", tt.in, err, tt.want)
		}
		if err != nil && (strings.Contains(err.Error(), "canary") || strings.Contains(err.Error(), `\q`)) {
			t.Errorf("error leaks the value: %v", err)
		}
		if _, err := ParseMap([]byte(tt.in)); err == nil {
			t.Errorf("ParseMap(%.40q) succeeded", tt.in)
		}
	}
}

// TestParseEveryBadLine: every bad line is named, in order, and the good
// ones are still returned.
func TestParseEveryBadLine(t *testing.T) {
	in := "GOOD=1\nbad line canary\nALSO_GOOD='x'\nB=\"canary\n" + "C=" + strings.Repeat("canary", MaxLineLen/6) + "\nD=4\nGOOD=2\n"
	entries, err := Parse([]byte(in))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("err = %v, want Errors", err)
	}
	var lines []int
	for _, e := range errs {
		lines = append(lines, e.Line)
	}
	if want := []int{2, 4, 5, 7}; !slices.Equal(lines, want) {
		t.Errorf("bad lines = %v, want %v (%v)", lines, want, err)
	}
	if strings.Contains(err.Error(), "canary") {
		t.Errorf("error leaks a value: %v", err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name)
	}
	if want := []string{"GOOD", "ALSO_GOOD", "D"}; !slices.Equal(names, want) {
		t.Errorf("good entries = %v, want %v", names, want)
	}
}

package dotenv

import (
	"errors"
	"strings"
	"testing"
)

// pem is a multi-line value as people keep a key in a .env file.
const pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nlHRucQ+Fe7L5fExgBtkNqjUCAwEAAQ==\n-----END PRIVATE KEY-----"

// TestToolsAgree: for each input, tool is what docker compose (env_file)
// and joho/godotenv give a program, from their documented behaviour:
//
//   - compose: https://docs.docker.com/compose/env-file/ ("Syntax for
//     environment files": VAR=VAL # comment -> VAL; VAR=VAL# not a comment;
//     VAR="VAL" # comment -> VAL; single quotes literal; \n \r \t \\ in
//     double quotes; VAR='Let\'s go!' -> Let's go!; interpolation of
//     unquoted and double-quoted values);
//   - godotenv: github.com/joho/godotenv fixtures/quoted.env,
//     fixtures/comments.env, fixtures/multiline.env and the "various-comments"
//     and "exported-newline" cases of its parser tests (qux=thud # fred # other
//     -> thud; thud=fred#qux # other -> fred#qux; baz="foo"#bar -> foo;
//     export OPTION_B='\n' -> \n literally), and its parser.go (\t in double
//     quotes gives t; \' in single quotes keeps the backslash; $NAME and
//     ${NAME} are expanded).
//
// Where they agree, envvault gives the same value. Where they or other
// readers differ, refused holds the start of envvault's reason (the
// README's divergence table).
func TestToolsAgree(t *testing.T) {
	tests := []struct {
		name, in, tool, refused string
	}{
		{"inline comment after a space", "API_URL=https://x.example # production", "https://x.example", ""},
		{"inline comment after a tab", "A=bar\t# baz", "bar", ""},
		{"only the first ' #' counts", "QUX=thud # fred # other", "thud", ""},
		{"export prefix", "export OPTION_A=2", "2", ""},
		{"export with a literal \\n", "export OPTION_B='\\n'", `\n`, ""},
		{"spaces around =", "OPTION_I = \"echo 'asd'\"", "echo 'asd'", ""},
		{"value trimmed", "A=   spaced out   ", "spaced out", ""},
		{"empty", "OPTION_C=''", "", ""},
		{"empty unquoted", "A=", "", ""},
		{"single quotes literal", "A='$OTHER'", "$OTHER", ""},
		{"single quotes keep braces", "A='${OTHER}'", "${OTHER}", ""},
		{"single quotes keep \\t", "A='some\\tvalue'", `some\tvalue`, ""},
		{"# inside double quotes", `A="VAL # not a comment"`, "VAL # not a comment", ""},
		{"# inside single quotes", `A='p#ss # word'`, "p#ss # word", ""},
		{"comment after closing quote", `A="VAL" # comment`, "VAL", ""},
		{"comment glued to closing quote", `BAZ="foo"#bar`, "foo", ""},
		{"escaped quotes in double quotes", `A="{\"hello\": \"json\"}"`, `{"hello": "json"}`, ""},
		{"single quotes in double quotes", `A="it's"`, "it's", ""},
		{"double quotes in single quotes", `A='say "hi"'`, `say "hi"`, ""},
		{"quotes inside an unquoted value", `A=it's "x"`, `it's "x"`, ""},
		{"\\n and \\\\ in double quotes", `A="l1\nl2\\"`, "l1\nl2\\", ""},
		{"PEM key in double quotes", "KEY=\"" + pem + "\"", pem, ""},
		{"PEM key in single quotes", "KEY='" + pem + "' # deploy key", pem, ""},
		{"PEM key with \\n", `KEY="` + strings.ReplaceAll(pem, "\n", `\n`) + `"`, pem, ""},
		{"multi-line with escaped quotes", "OPTION_M=\"line one\nthis is \\\"quoted\\\"\none more line\"", "line one\nthis is \"quoted\"\none more line", ""},
		{"CRLF line ends", "A='l1\r\nl2'\r\n", "l1\nl2", ""},
		{"a lone $ stays", "A=cost$ 5$", "cost$ 5$", ""},
		// Where the tools differ.
		{"# glued to an unquoted value", "THUD=fred#qux # other", "fred#qux", "a # glued"},
		{"unquoted value starting with #", "A=#notacomment", "#notacomment", "an unquoted value that starts with #"},
		{"$NAME unquoted", "A=$HOME/x", "(expanded)", "$NAME or ${NAME}"},
		{"${NAME} in double quotes", `A="${HOME}/x"`, "(expanded)", "$NAME or ${NAME}"},
		{"\\t in double quotes", `A="some\tvalue"`, "tab (compose), t (godotenv)", "unknown escape"},
		{"\\' in single quotes", `A='Let\'s go!'`, "Let's go! (compose), Let\\'s go! (godotenv)", `\' inside single quotes`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := ParseMap([]byte(tt.in))
			if tt.refused != "" {
				var errs Errors
				if !errors.As(err, &errs) || len(errs) != 1 || errs[0].Line != 1 || !strings.Contains(errs[0].Reason, tt.refused) {
					t.Fatalf("Parse = %v, %v; want line 1 refused with %q (tools: %q)", env, err, tt.refused, tt.tool)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(env) != 1 {
				t.Fatalf("env = %q, want one entry", env)
			}
			for _, v := range env {
				if v != tt.tool {
					t.Errorf("value = %q, want %q", v, tt.tool)
				}
			}
		})
	}
}

// TestMultiLineNumbers: an entry is named by its first line, and the lines
// after a multi-line value keep their numbers.
func TestMultiLineNumbers(t *testing.T) {
	in := "A=1\nKEY=\"" + pem + "\"\nbad canary line\nB='x\ny' tail\nC=3\nD=\"open canary\n"
	entries, err := Parse([]byte(in))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("err = %v", err)
	}
	var lines []int
	for _, e := range errs {
		lines = append(lines, e.Line)
	}
	if len(lines) != 3 || lines[0] != 6 || lines[1] != 7 || lines[2] != 10 {
		t.Errorf("bad lines = %v, want [6 7 10] (%v)", lines, err)
	}
	if strings.Contains(err.Error(), "canary") || strings.Contains(err.Error(), "MII") {
		t.Errorf("error leaks a value: %v", err)
	}
	if len(entries) != 3 || entries[1].Line != 2 || entries[1].Value != pem || entries[2].Name != "C" || entries[2].Line != 9 {
		t.Errorf("entries = %+v", entries)
	}
}

// FuzzParse: the parser never panics, every error names a line of the
// input, and every value it returns is free of NUL bytes.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"A=1", "export A = 'x'", "A=\"" + pem + "\"", "A=\"x\\\"y\" # c", "A='\\'", "A=\"\\", "A=#", "A=$", "A=${", "\r\n", "A=\"x\ny",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := Parse(data)
		lines := strings.Count(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n") + 1
		var errs Errors
		if err != nil && !errors.As(err, &errs) {
			t.Fatalf("err = %v, want Errors", err)
		}
		for _, e := range errs {
			if e.Line < 1 || e.Line > lines {
				t.Fatalf("error on line %d of %d", e.Line, lines)
			}
		}
		for _, e := range entries {
			if e.Line < 1 || e.Line > lines || strings.IndexByte(e.Value, 0) >= 0 {
				t.Fatalf("entry %+v of %d lines", e, lines)
			}
		}
	})
}

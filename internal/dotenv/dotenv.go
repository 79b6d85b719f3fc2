// Package dotenv reads dotenv files: the operator's baseline env
// (orchestrator.LoadBaseline) and the files `envvault secrets import`
// takes. It is the one parser of the grammar the README documents.
//
// It is written here rather than taken from a dotenv library because the
// errors of the one at hand quote the file's content (a secret, here) and
// give no line number.
package dotenv

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/envvault/envvault/vault"
)

// MaxLineLen is the longest line Parse reads: a name and a value at the
// vault's limits, with room for quotes, escapes and "export ".
const MaxLineLen = vault.MaxValueLen + vault.MaxNameLen + 64

// Entry is one NAME=value line.
type Entry struct {
	Line  int // 1-based
	Name  string
	Value string
}

// LineError is what is wrong with one line. Reason never contains a value.
type LineError struct {
	Line   int
	Reason string
}

func (e LineError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Reason) }

// Errors are the errors of every bad line of a file, in line order.
type Errors []LineError

func (e Errors) Error() string {
	s := make([]string, len(e))
	for i, le := range e {
		s[i] = le.Error()
	}
	return strings.Join(s, "; ")
}

// Parse parses a dotenv file:
//
//	# a comment, and blank lines, are skipped
//	NAME=value           unquoted: the rest of the line, trimmed
//	export NAME=value    "export " is allowed and ignored
//	NAME='literal value' single quotes: taken as written
//	NAME="a\nb"          double quotes: \n \r \t \" \\ are escapes
//
// Each value is on one line, of at most MaxLineLen bytes. A name must
// match vault.NamePattern and appear once; a value must not contain a NUL
// byte. It reads the whole file and returns the entries of the good lines,
// in order, and, if any line is bad, an Errors naming every bad line.
func Parse(data []byte) ([]Entry, error) {
	var entries []Entry
	var errs Errors
	seen := map[string]int{}
	for n := 1; len(data) > 0; n++ {
		raw := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			raw, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(raw) > MaxLineLen {
			errs = append(errs, LineError{n, fmt.Sprintf("longer than %d bytes", MaxLineLen)})
			continue
		}
		e, reason := parseLine(string(raw))
		switch {
		case reason != "":
			errs = append(errs, LineError{n, reason})
			continue
		case e.Name == "":
			continue // blank or comment
		}
		if first, dup := seen[e.Name]; dup {
			errs = append(errs, LineError{n, fmt.Sprintf("%s is set twice (first on line %d)", e.Name, first)})
			continue
		}
		seen[e.Name] = n
		e.Line = n
		entries = append(entries, e)
	}
	if len(errs) > 0 {
		return entries, errs
	}
	return entries, nil
}

// ParseMap is Parse into a map of name to value, for a file that is taken
// whole or not at all.
func ParseMap(data []byte) (map[string]string, error) {
	entries, err := Parse(data)
	if err != nil {
		return nil, err
	}
	env := make(map[string]string, len(entries))
	for _, e := range entries {
		env[e.Name] = e.Value
	}
	return env, nil
}

// parseLine parses one line: an entry, a zero entry for a blank line or a
// comment, or the reason it is bad.
func parseLine(line string) (Entry, string) {
	line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
	if line == "" || strings.HasPrefix(line, "#") {
		return Entry{}, ""
	}
	line = strings.TrimPrefix(line, "export ")
	name, raw, ok := strings.Cut(line, "=")
	if !ok {
		return Entry{}, "expected NAME=value"
	}
	name = strings.TrimSpace(name)
	if vault.ValidateName("name", name) != nil {
		// The name is not quoted: a line that is not NAME=value may be a
		// value.
		return Entry{}, "name must match " + vault.NamePattern
	}
	value, err := parseValue(strings.TrimSpace(raw))
	if err != nil {
		return Entry{}, fmt.Sprintf("value of %s: %v", name, err)
	}
	if strings.IndexByte(value, 0) >= 0 {
		return Entry{}, fmt.Sprintf("value of %s contains a NUL byte", name)
	}
	return Entry{Name: name, Value: value}, ""
}

func parseValue(raw string) (string, error) {
	if raw == "" || (raw[0] != '"' && raw[0] != '\'') {
		return raw, nil
	}
	q := raw[0]
	var b strings.Builder
	for i := 1; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == q:
			if rest := strings.TrimSpace(raw[i+1:]); rest != "" && !strings.HasPrefix(rest, "#") {
				return "", fmt.Errorf("unexpected text after the closing quote")
			}
			return b.String(), nil
		case c == '\\' && q == '"':
			if i+1 >= len(raw) {
				return "", fmt.Errorf("unterminated escape")
			}
			i++
			switch raw[i] {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case '"', '\\':
				b.WriteByte(raw[i])
			default:
				// The character is not quoted: it is part of the value.
				return "", fmt.Errorf(`unknown escape: only \n \r \t \" \\ are escapes`)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", fmt.Errorf("missing closing quote")
}

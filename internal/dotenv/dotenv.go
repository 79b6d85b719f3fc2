// Package dotenv reads dotenv files: the operator's baseline env
// (orchestrator.LoadBaseline) and the files `envvault secrets import`
// takes. It is the one parser of the grammar the README documents.
//
// It is written here rather than taken from a dotenv library because the
// errors of the one at hand quote the file's content (a secret, here) and
// give no line number.
package dotenv

import (
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

// Parse parses a dotenv file in the grammar docker compose's env_file and
// the dotenv libraries agree on (the README's table lists each reading
// where they do not, and why):
//
//	# a comment, and blank lines, are skipped
//	NAME=value           unquoted: the rest of the line, trimmed; a # after
//	                     a space or tab starts a comment
//	export NAME = value  "export" and spaces around = are allowed
//	NAME='literal value' single quotes: taken as written
//	NAME="a\nb"          double quotes: \n \r \" \\ are escapes
//
// A quoted value may span lines (a PEM key); after its closing quote only
// spaces and a # comment may follow. Where the tools read a line
// differently (a # glued to an unquoted value, $NAME or ${NAME}, other
// escapes, \' in single quotes), the line is refused with
// a reason that says how to write it unambiguously.
//
// Each entry is at most MaxLineLen bytes. A name must match
// vault.NamePattern and appear once; a value must not contain a NUL byte.
// It reads the whole file and returns the entries of the good lines, in
// order, and, if any line is bad, an Errors naming every bad line by its
// number (the first line of a multi-line value), never its value.
func Parse(data []byte) ([]Entry, error) {
	p := parser{src: strings.ReplaceAll(string(data), "\r\n", "\n"), line: 1, seen: map[string]int{}}
	for p.src != "" {
		p.statement()
	}
	if len(p.errs) > 0 {
		return p.entries, p.errs
	}
	return p.entries, nil
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

// parser reads a file statement by statement.
type parser struct {
	src     string // what is left to read, from the start of a line
	line    int    // the number of the line src starts on
	entries []Entry
	errs    Errors
	seen    map[string]int
}

// statement reads one line, or the lines of one multi-line value, and
// records its entry or what is wrong with it.
func (p *parser) statement() {
	n, before := p.line, len(p.src)
	e, reason := p.entry()
	switch {
	case reason == "" && before-len(p.src) > MaxLineLen+1:
		reason = fmt.Sprintf("longer than %d bytes", MaxLineLen)
	case reason == "" && e.Name == "":
		return // blank or comment
	}
	if reason != "" {
		p.errs = append(p.errs, LineError{n, reason})
		return
	}
	if first, dup := p.seen[e.Name]; dup {
		p.errs = append(p.errs, LineError{n, fmt.Sprintf("%s is set twice (first on line %d)", e.Name, first)})
		return
	}
	p.seen[e.Name] = n
	e.Line = n
	p.entries = append(p.entries, e)
}

// skip moves past the first n bytes of src and the rest of the line they
// end on.
func (p *parser) skip(n int) {
	p.line += strings.Count(p.src[:n], "\n")
	if i := strings.IndexByte(p.src[n:], '\n'); i >= 0 {
		p.src = p.src[n+i+1:]
		p.line++
		return
	}
	p.src = ""
}

// entry reads one statement: an entry, a zero entry for a blank line or a
// comment, or the reason it is bad.
func (p *parser) entry() (Entry, string) {
	whole := p.src
	line, _, _ := strings.Cut(whole, "\n")
	if len(line) > MaxLineLen {
		p.skip(0)
		return Entry{}, fmt.Sprintf("longer than %d bytes", MaxLineLen)
	}
	s := strings.TrimLeft(line, spaces)
	if s == "" || s[0] == '#' {
		p.skip(0)
		return Entry{}, ""
	}
	if rest, ok := strings.CutPrefix(s, "export"); ok && rest != "" && strings.IndexByte(spaces, rest[0]) >= 0 {
		s = strings.TrimLeft(rest, spaces)
	}
	name, raw, ok := strings.Cut(s, "=")
	if !ok {
		p.skip(0)
		return Entry{}, "expected NAME=value"
	}
	name = strings.TrimRight(name, spaces)
	if vault.ValidateName("name", name) != nil {
		// The name is not quoted: a line that is not NAME=value may be a
		// value.
		p.skip(0)
		return Entry{}, "name must match " + vault.NamePattern
	}
	raw = strings.TrimLeft(raw, spaces)
	var value, reason string
	if raw != "" && (raw[0] == '"' || raw[0] == '\'') {
		value, reason = p.quoted(whole, len(line)-len(raw))
	} else {
		p.skip(0)
		value, reason = unquoted(raw)
	}
	if reason != "" {
		return Entry{}, fmt.Sprintf("value of %s: %s", name, reason)
	}
	if strings.IndexByte(value, 0) >= 0 {
		return Entry{}, fmt.Sprintf("value of %s contains a NUL byte", name)
	}
	return Entry{Name: name, Value: value}, ""
}

const spaces = " \t\v\f\r"

// quoted reads the quoted value that starts at whole[at], possibly over
// several lines, and moves past the line of its closing quote. Without a
// closing quote it moves past the first line only, so that the lines
// after it are still read and named.
func (p *parser) quoted(whole string, at int) (string, string) {
	value, end, reason := scanQuoted(whole[at:])
	if end < 0 {
		p.skip(0)
		return "", "missing closing quote"
	}
	p.skip(at + end)
	tail, _, _ := strings.Cut(whole[at+end:], "\n")
	if tail = strings.TrimLeft(tail, spaces); tail != "" && tail[0] != '#' {
		return "", "unexpected text after the closing quote (only a # comment may follow it)"
	}
	return value, reason
}

// Reasons for what the tools read differently; each says how to write the
// value so that they all read it alike.
const (
	reasonEscape = `unknown escape: only \n \r \" \\ are escapes in double quotes (docker compose and joho/godotenv read the others, \t among them, differently); write the character itself, or single-quote the value`
	reasonSingle = `\' inside single quotes: docker compose reads a quote, joho/godotenv keeps the backslash too; write the value in double quotes`
	reasonDollar = "$NAME or ${NAME}: docker compose and joho/godotenv substitute another variable here, envvault does not; single-quote the value to keep the $ as written"
	reasonGlued  = "a # glued to an unquoted value: docker compose keeps it, older compose and godotenv releases start a comment there; quote the value"
	reasonHash   = "an unquoted value that starts with #: docker compose keeps it, a shell and python-dotenv read an empty value; quote it, or write NAME= for an empty value"
)

// scanQuoted reads the quoted value at the start of s: its value, the
// index just past its closing quote (-1 if there is none) and the first
// reason it is refused, if any.
func scanQuoted(s string) (string, int, string) {
	q := s[0]
	var b strings.Builder
	reason := ""
	refuse := func(r string) {
		if reason == "" {
			reason = r
		}
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == q:
			return b.String(), i + 1, reason
		case c == '\\' && i+1 < len(s) && q == '\'':
			if s[i+1] == '\'' {
				refuse(reasonSingle)
				i++
				continue
			}
			b.WriteByte(c)
		case c == '\\' && i+1 < len(s):
			i++
			switch s[i] {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case '"', '\\':
				b.WriteByte(s[i])
			default:
				refuse(reasonEscape)
			}
		case c == '$' && q == '"' && expands(s[i+1:]):
			refuse(reasonDollar)
		default:
			b.WriteByte(c)
		}
	}
	return "", -1, ""
}

// expands reports whether the text after a $ makes docker compose
// substitute a variable: $NAME or ${...}.
func expands(s string) bool {
	if s == "" {
		return false
	}
	c := s[0]
	return c == '{' || c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

// unquoted reads an unquoted value: the rest of the line up to a # after
// a space or tab, trimmed.
func unquoted(raw string) (string, string) {
	if raw != "" && raw[0] == '#' {
		return "", reasonHash
	}
	v := raw
	if i := commentStart(raw); i >= 0 {
		v = raw[:i]
	}
	v = strings.TrimRight(v, spaces)
	if strings.IndexByte(v, '#') >= 0 {
		return "", reasonGlued
	}
	for i := 0; i < len(v); i++ {
		if v[i] == '$' && expands(v[i+1:]) {
			return "", reasonDollar
		}
	}
	return v, ""
}

// commentStart is the index of the first # after a space or tab in s, or
// -1.
func commentStart(s string) int {
	for i := 1; i < len(s); i++ {
		if s[i] == '#' && (s[i-1] == ' ' || s[i-1] == '\t') {
			return i
		}
	}
	return -1
}

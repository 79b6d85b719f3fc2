package orchestrator

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/envvault/envvault/vault"
)

// Env sources, as recorded for every injected name.
const (
	SourceBaseline = "baseline"
	SourceProfile  = "profile"
	SourceSecret   = "secret"
	SourceTask     = "task"
)

// EnvSource says where one injected name came from, never its value.
// SecretID and Version are set for SourceSecret.
type EnvSource struct {
	Name     string `json:"name"`
	Source   string `json:"source"`
	SecretID string `json:"secret_id,omitempty"`
	Scope    string `json:"scope,omitempty"`
	Version  int    `json:"version,omitempty"`
}

// Baseline is the platform's env given by the operator: values every task
// receives unless overridden, and locked names no one can override.
type Baseline struct {
	Env    map[string]string
	Locked []string
}

// MergeInput is everything a task's env is made of.
type MergeInput struct {
	Baseline Baseline
	Profile  map[string]string
	Secrets  map[string]string // GetDecryptedForProfile's result
	Sources  []vault.EnvSecret // which secret supplied each of Secrets
	TaskID   string
	Prompt   string
}

// Merge builds a task's env, lowest to highest precedence: baseline,
// profile env, secrets of scope all, secrets of scope agents, locked
// baseline names, then TASK_ID and TASK_PROMPT. It returns the env and the
// source of every name, sorted by name. It is a pure function.
func Merge(in MergeInput) (map[string]string, []EnvSource) {
	env := make(map[string]string, len(in.Baseline.Env)+len(in.Profile)+len(in.Secrets)+2)
	src := make(map[string]EnvSource, len(in.Baseline.Env)+len(in.Profile)+len(in.Secrets)+2)
	set := func(name, value string, s EnvSource) {
		s.Name = name
		env[name] = value
		src[name] = s
	}
	for k, v := range in.Baseline.Env {
		set(k, v, EnvSource{Source: SourceBaseline})
	}
	for k, v := range in.Profile {
		set(k, v, EnvSource{Source: SourceProfile})
	}
	// The vault has already applied the override rule (agents over all);
	// ordering all before agents here keeps the precedence explicit.
	ordered := slices.Clone(in.Sources)
	slices.SortStableFunc(ordered, func(a, b vault.EnvSecret) int {
		return scopeRank(a.Scope) - scopeRank(b.Scope)
	})
	for _, s := range ordered {
		if v, ok := in.Secrets[s.Name]; ok {
			set(s.Name, v, EnvSource{Source: SourceSecret, SecretID: s.SecretID, Scope: string(s.Scope), Version: s.Version})
		}
	}
	for _, k := range in.Baseline.Locked {
		if v, ok := in.Baseline.Env[k]; ok {
			set(k, v, EnvSource{Source: SourceBaseline})
		} else {
			delete(env, k) // locked with no baseline value: no one sets it
			delete(src, k)
		}
	}
	set("TASK_ID", in.TaskID, EnvSource{Source: SourceTask})
	set("TASK_PROMPT", in.Prompt, EnvSource{Source: SourceTask})
	sources := make([]EnvSource, 0, len(src))
	for _, s := range src {
		sources = append(sources, s)
	}
	sort.Slice(sources, func(i, j int) bool { return sources[i].Name < sources[j].Name })
	return env, sources
}

func scopeRank(s vault.Scope) int {
	if s == vault.ScopeAgents {
		return 1
	}
	return 0
}

// LoadBaseline reads the operator's baseline dotenv file and lock list.
// An empty path gives an empty baseline. Errors name the file, the line and
// the reason, never a value.
func LoadBaseline(path string, locked []string) (Baseline, error) {
	b := Baseline{Env: map[string]string{}}
	for _, name := range locked {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if err := vault.ValidateName("locked name", name); err != nil {
			return b, fmt.Errorf("locked names: %q must match %s", name, vault.NamePattern)
		}
		b.Locked = append(b.Locked, name)
	}
	if path == "" {
		return b, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return b, fmt.Errorf("baseline env file: %w", err)
	}
	env, err := ParseDotenv(data)
	if err != nil {
		return b, fmt.Errorf("baseline env file %s: %w", path, err)
	}
	b.Env = env
	return b, nil
}

// ParseDotenv parses a dotenv file:
//
//	# a comment, and blank lines, are skipped
//	NAME=value           unquoted: the rest of the line, trimmed
//	export NAME=value    "export " is allowed and ignored
//	NAME='literal value' single quotes: taken as written
//	NAME="a\nb"          double quotes: \n \r \t \" \\ are escapes
//
// Each value is on one line. A name must match vault.NamePattern and appear
// once. Errors say "line N: reason" and never contain a value.
//
// It is written here rather than taken from a dotenv library because the
// errors of the one at hand quote the file's content (a secret, here) and
// give no line number.
func ParseDotenv(data []byte) (map[string]string, error) {
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), vault.MaxValueLen+vault.MaxNameLen+64)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(strings.TrimSuffix(sc.Text(), "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		name, raw, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: expected NAME=value", n)
		}
		name = strings.TrimSpace(name)
		if vault.ValidateName("name", name) != nil {
			return nil, fmt.Errorf("line %d: name must match %s", n, vault.NamePattern)
		}
		if _, dup := env[name]; dup {
			return nil, fmt.Errorf("line %d: %s is set twice", n, name)
		}
		value, err := parseValue(strings.TrimSpace(raw))
		if err != nil {
			return nil, fmt.Errorf("line %d: value of %s: %w", n, name, err)
		}
		if strings.IndexByte(value, 0) >= 0 {
			return nil, fmt.Errorf("line %d: value of %s contains a NUL byte", n, name)
		}
		env[name] = value
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	return env, nil
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
				return "", fmt.Errorf("unknown escape \\%c", raw[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", fmt.Errorf("missing closing quote")
}

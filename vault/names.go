package vault

import (
	"slices"
	"strings"
)

// DeniedNames are names that change how programs inside a container load
// code. A secret may not take one unless the operator allows it by name,
// because whoever can write such a secret could run code in every task.
var DeniedNames = []string{
	"BASH_ENV", "BASHOPTS", "CLASSPATH", "ENV", "GCONV_PATH", "JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS",
	"NODE_OPTIONS", "NODE_PATH", "PERL5DB", "PERL5LIB", "PERL5OPT", "PERLLIB", "PROMPT_COMMAND", "PS4",
	"PYTHONHOME", "PYTHONINSPECT", "PYTHONPATH", "PYTHONSTARTUP", "RUBYLIB", "RUBYOPT", "SHELLOPTS",
	"_JAVA_OPTIONS",
}

// DeniedPrefixes deny every name that starts with them: the dynamic
// loaders' LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT and their like.
var DeniedPrefixes = []string{"LD_", "DYLD_"}

// NamePolicy is the operator's say over secret names.
type NamePolicy struct {
	// Locked names always come from the platform's baseline env; no secret
	// may take one.
	Locked []string
	// Allowed names are taken off the denied list.
	Allowed []string
}

// Denied reports whether name is on the denied list.
func Denied(name string) bool {
	if slices.Contains(DeniedNames, name) {
		return true
	}
	for _, p := range DeniedPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// check returns EINVALID if a secret may not take name.
func (p NamePolicy) check(field, name string) error {
	if slices.Contains(p.Locked, name) {
		return Invalid(field, "%s is locked by the operator: it always comes from the platform's baseline env", name)
	}
	if Denied(name) && !slices.Contains(p.Allowed, name) {
		return Invalid(field, "%s changes how programs load code, so it is refused as a secret name unless the operator allows it (--allow-names)", name)
	}
	return nil
}

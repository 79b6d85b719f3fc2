package vault

import (
	"fmt"

	gonanoid "github.com/matoous/go-nanoid/v2"
)

// Id prefixes. Every id is its prefix plus a 21-character nanoid.
const (
	PrefixUser    = "usr_"
	PrefixToken   = "tok_"
	PrefixProfile = "prof_"
	PrefixSecret  = "sec_"
	PrefixTask    = "tsk_"
)

const idLen = 21

// NewID returns prefix followed by a fresh 21-character nanoid. It panics
// only if the system's random source fails, as crypto/rand itself does.
func NewID(prefix string) string {
	id, err := gonanoid.New(idLen)
	if err != nil {
		panic(fmt.Sprintf("vault: read random id: %v", err))
	}
	return prefix + id
}

// validID reports whether s looks like an id with the given prefix. It is a
// cheap filter for input, not a proof of existence.
func validID(prefix, s string) bool {
	if len(s) != len(prefix)+idLen || s[:len(prefix)] != prefix {
		return false
	}
	for _, c := range s[len(prefix):] {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

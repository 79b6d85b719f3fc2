// Package envblock is the format in which the runner hands a task's env to
// envvault-init over the container's stdin (or, later, a file): a 4-byte
// big-endian length, then that many bytes of "NAME=value" entries, each
// ended by a NUL byte. It has no Docker code, so that the init program,
// which imports it, stays small enough to read in one sitting.
package envblock

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// MaxSize is the largest block (entries, without the length) the runner
// sends and the init accepts: 1 MiB. Linux lets execve take at most a
// quarter of the stack limit for argv and env together (2 MiB under the
// usual 8 MiB), so a larger env could not reach the command in any mode;
// the other half is left for the command line.
const MaxSize = 1 << 20

// How envvault-init fails before it runs the command because it got no
// whole block (missing, late or malformed): it exits ExitNoBlock after
// printing one line, starting with InitPrefix, to stderr. Recovery reads
// a container that ended so as one whose command never ran.
const (
	ExitNoBlock = 125
	InitPrefix  = "envvault-init: "
)

// Encode returns env as a block, entries sorted by name. Names must be
// non-empty and hold neither '=' nor NUL, values no NUL; its errors name
// the offending name, never a value.
func Encode(env map[string]string) ([]byte, error) {
	names := make([]string, 0, len(env))
	size := 0
	for name, value := range env {
		if name == "" || strings.ContainsAny(name, "=\x00") {
			return nil, fmt.Errorf("env name %q is empty or contains '=' or NUL", name)
		}
		if strings.IndexByte(value, 0) >= 0 {
			return nil, fmt.Errorf("the value of env %s contains a NUL byte", name)
		}
		names = append(names, name)
		size += len(name) + len(value) + 2
	}
	if size > MaxSize {
		return nil, fmt.Errorf("the env is %d bytes, more than the %d bytes (1 MiB) a task's env may hold", size, MaxSize)
	}
	sort.Strings(names)
	out := make([]byte, 4, 4+size)
	binary.BigEndian.PutUint32(out, uint32(size))
	for _, name := range names {
		out = append(out, name...)
		out = append(out, '=')
		out = append(out, env[name]...)
		out = append(out, 0)
	}
	return out, nil
}

// Read reads one block from r and returns its entries as "NAME=value".
// It reads exactly the block, nothing after it. Its errors say what is
// wrong with the block (its size, where it ends, an entry's index), never
// what an entry holds.
func Read(r io.Reader) ([]string, error) {
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, fmt.Errorf("read the env block's length: %w", err)
	}
	size := binary.BigEndian.Uint32(head[:])
	if size > MaxSize {
		return nil, fmt.Errorf("the env block says it is %d bytes, more than the %d allowed", size, MaxSize)
	}
	body := make([]byte, size)
	if n, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("the env block ended after %d of its %d bytes: %w", n, size, err)
	}
	return Split(body)
}

// Split returns the entries of a block's body (without its length).
func Split(body []byte) ([]string, error) {
	if len(body) == 0 {
		return nil, nil
	}
	if body[len(body)-1] != 0 {
		return nil, errors.New("the env block's last entry is not ended by a NUL byte")
	}
	entries := strings.Split(string(body[:len(body)-1]), "\x00")
	for i, kv := range entries {
		if strings.IndexByte(kv, '=') <= 0 {
			return nil, fmt.Errorf("env block entry %d has no NAME= before its value", i)
		}
	}
	return entries, nil
}

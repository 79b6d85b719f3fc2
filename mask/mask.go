package mask

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"strings"
)

// Placeholder replaces every masked value in a log.
const Placeholder = "***"

// MinLen is the shortest value that is masked: shorter ones would
// blank out ordinary words (the API warns when such a value is saved).
const MinLen = 4

// ErrClosed is returned by a write to a closed Writer.
var ErrClosed = errors.New("mask: write to closed writer")

// maskPatterns returns the byte strings to mask for values, longest first:
// each value of at least MinLen bytes; each line of it (split at CR or
// LF, trimmed of spaces), for a value printed line by line; and its
// standard and URL-safe base64 encodings, padded and not. Strings shorter
// than MinLen are left out, as are duplicates.
//
// A task may receive 10,000 values, so this allocates little: every
// pattern is a slice of a few shared blocks, and duplicates are dropped
// after sorting rather than through a set of strings.
func maskPatterns(values []string) [][]byte {
	var (
		out  = make([][]byte, 0, 6*len(values))
		slab []byte
	)
	// add copies b into the current block and returns the copy.
	add := func(b []byte) []byte {
		if len(b) < MinLen {
			return nil
		}
		if len(b) > cap(slab)-len(slab) {
			slab = make([]byte, 0, max(64<<10, len(b)))
		}
		n := len(slab)
		slab = append(slab, b...)
		p := slab[n:len(slab):len(slab)]
		out = append(out, p)
		return p
	}
	encodings := []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding}
	var scratch []byte
	for _, v := range values {
		if len(v) < MinLen {
			continue
		}
		scratch = append(scratch[:0], v...)
		vb := add(scratch)
		if strings.ContainsAny(v, "\r\n") {
			for _, line := range bytes.FieldsFunc(vb, func(r rune) bool { return r == '\n' || r == '\r' }) {
				add(bytes.TrimSpace(line))
			}
		}
		for _, enc := range encodings {
			scratch = enc.AppendEncode(scratch[:0], vb)
			add(scratch)
		}
	}
	slices.SortFunc(out, func(a, b []byte) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return bytes.Compare(a, b)
	})
	return slices.CompactFunc(out, bytes.Equal)
}

// Writer is an io.WriteCloser that writes what it is given to another
// writer with every occurrence of a masked string replaced by Placeholder: every
// byte that lies in any occurrence of any pattern (see maskPatterns) is
// masked, and each run of masked bytes becomes one Placeholder. The output does
// not depend on how the input is cut into writes: a value split across
// two writes is masked like a whole one.
//
// To see a value that a later write may complete, the masker holds back
// the end of what it was given while that end could still begin an
// occurrence — at most the longest pattern less one byte. Close writes it
// out. A Writer is not safe for concurrent use.
//
// The search is one pass over the input whatever the number of values:
// every pattern is at least MinLen (4) bytes long, so each position's
// next four bytes are looked up in a bit filter of the patterns' first
// four bytes, and only on a hit are the patterns compared. A stream that
// keeps repeating a long stretch of a value (a periodic value such as
// "aaaa…") costs up to that value's length per byte instead.
type Writer struct {
	w       io.Writer
	match   *matcher
	buf     []byte // input not yet written out
	covered []bool // covered[i]: buf[i] lies in an occurrence
	inMask  bool   // the last byte written out was masked
	out     []byte
	err     error
	closed  bool
}

// NewWriter returns a Writer writing to w, masking values.
func NewWriter(w io.Writer, values []string) *Writer {
	return &Writer{w: w, match: newMatcher(maskPatterns(values))}
}

// Write masks p and writes out all of the result that no later write can
// change. It returns len(p) unless writing to the underlying writer fails;
// after such a failure every call returns that error.
func (m *Writer) Write(p []byte) (int, error) {
	if m.err != nil {
		return 0, m.err
	}
	if m.closed {
		return 0, ErrClosed
	}
	if len(p) == 0 {
		return 0, nil
	}
	old := len(m.buf)
	m.buf = append(m.buf, p...)
	m.covered = append(m.covered, make([]bool, len(p))...)
	m.match.mark(m.buf, m.covered, old)
	m.flush(m.match.holdFrom(m.buf))
	if m.err != nil {
		return 0, m.err
	}
	return len(p), nil
}

// Close writes out what the masker holds back. It does not close the
// underlying writer. Closing twice is no error.
func (m *Writer) Close() error {
	if m.closed {
		return m.err
	}
	m.closed = true
	if m.err == nil {
		m.flush(len(m.buf))
	}
	return m.err
}

// matcher finds occurrences of patterns of at least 4 bytes.
type matcher struct {
	maxLen int
	// filter has the bit hash4(first four bytes) set for every pattern.
	filter [1 << 16 / 64]uint64
	// byPrefix holds the patterns by their first four bytes, longest
	// first: each entry a slice of one sorted copy of the patterns.
	byPrefix map[uint32][][]byte
	// short1, short2 and short3 hold every proper prefix of 1, 2 and 3
	// bytes of a pattern, for the last bytes of the input: bit sets for 1
	// and 2 bytes, a set of the 3 bytes packed little-endian.
	short1 [256 / 64]uint64
	short2 [1 << 16 / 64]uint64
	short3 map[uint32]struct{}
}

// newMatcher indexes patterns, longest first, without an allocation per
// pattern (a task may mask 60,000).
func newMatcher(patterns [][]byte) *matcher {
	m := &matcher{byPrefix: make(map[uint32][][]byte, len(patterns)), short3: make(map[uint32]struct{}, len(patterns))}
	byKey := slices.Clone(patterns)
	slices.SortStableFunc(byKey, func(a, b []byte) int { return cmp.Compare(prefix4(a), prefix4(b)) })
	for i := 0; i < len(byKey); {
		k, j := prefix4(byKey[i]), i+1
		for j < len(byKey) && prefix4(byKey[j]) == k {
			j++
		}
		m.byPrefix[k] = byKey[i:j:j]
		i = j
	}
	for _, p := range patterns {
		m.maxLen = max(m.maxLen, len(p))
		h := hash4(prefix4(p))
		m.filter[h/64] |= 1 << (h % 64)
		m.short1[p[0]/64] |= 1 << (p[0] % 64)
		k2 := uint16(p[0]) | uint16(p[1])<<8
		m.short2[k2/64] |= 1 << (k2 % 64)
		m.short3[prefix4(p)&0xffffff] = struct{}{}
	}
	return m
}

func prefix4(p []byte) uint32 { return binary.LittleEndian.Uint32(p) }

// isShort reports whether rest, of 1 to 3 bytes, begins a pattern.
func (m *matcher) isShort(rest []byte) bool {
	switch len(rest) {
	case 1:
		return m.short1[rest[0]/64]&(1<<(rest[0]%64)) != 0
	case 2:
		k := uint16(rest[0]) | uint16(rest[1])<<8
		return m.short2[k/64]&(1<<(k%64)) != 0
	case 3:
		_, ok := m.short3[uint32(rest[0])|uint32(rest[1])<<8|uint32(rest[2])<<16]
		return ok
	}
	return false
}

func hash4(k uint32) uint32 { return (k * 0x9E3779B1) >> 16 }

// longestAt returns the length of the longest pattern at buf[s:], or 0.
func (m *matcher) longestAt(buf []byte, s int) int {
	k := binary.LittleEndian.Uint32(buf[s:])
	if h := hash4(k); m.filter[h/64]&(1<<(h%64)) == 0 {
		return 0
	}
	for _, p := range m.byPrefix[k] {
		if bytes.HasPrefix(buf[s:], p) {
			return len(p)
		}
	}
	return 0
}

// mark sets covered for every occurrence in buf that ends at or after
// buf[from]: those ending before were marked by an earlier call.
func (m *matcher) mark(buf []byte, covered []bool, from int) {
	if m.maxLen == 0 {
		return
	}
	done := 0 // covered[:done] is marked as far as this call goes
	for s := max(0, from-m.maxLen+1); s+4 <= len(buf); s++ {
		if n := m.longestAt(buf, s); n > 0 {
			for k := max(s, done); k < s+n; k++ {
				covered[k] = true
			}
			done = max(done, s+n)
		}
	}
}

// holdFrom returns the first index of buf from which the rest of buf is a
// proper prefix of a pattern: an occurrence a later write completes starts
// there or later, so everything before is final.
func (m *matcher) holdFrom(buf []byte) int {
	n := len(buf)
	for s := max(0, n-m.maxLen+1); s < n; s++ {
		rest := buf[s:]
		if len(rest) < 4 {
			if m.isShort(rest) {
				return s
			}
			continue
		}
		k := binary.LittleEndian.Uint32(rest)
		if h := hash4(k); m.filter[h/64]&(1<<(h%64)) == 0 {
			continue
		}
		for _, p := range m.byPrefix[k] {
			if len(p) > len(rest) && bytes.HasPrefix(p, rest) {
				return s
			}
		}
	}
	return n
}

// flush writes out buf[:n], masked, and keeps the rest.
func (m *Writer) flush(n int) {
	if n == 0 {
		return
	}
	out := m.out[:0]
	for i := 0; i < n; {
		if m.covered[i] {
			if !m.inMask {
				out = append(out, Placeholder...)
				m.inMask = true
			}
			for i < n && m.covered[i] {
				i++
			}
			continue
		}
		j := i
		for j < n && !m.covered[j] {
			j++
		}
		out = append(out, m.buf[i:j]...)
		m.inMask = false
		i = j
	}
	m.out = out
	rest := copy(m.buf, m.buf[n:])
	m.buf = m.buf[:rest]
	copy(m.covered, m.covered[n:])
	m.covered = m.covered[:rest]
	if len(out) > 0 {
		if _, err := m.w.Write(out); err != nil {
			m.err = err
		}
	}
}

// NewReader returns a reader of what r gives with values masked as
// a Writer masks them. Closing it closes r.
func NewReader(r io.ReadCloser, values []string) io.ReadCloser {
	mr := &maskingReader{src: r}
	mr.m = NewWriter(&mr.ready, values)
	return mr
}

type maskingReader struct {
	src   io.ReadCloser
	m     *Writer
	ready bytes.Buffer // masked, not yet read
	chunk []byte
	err   error // of src; io.EOF once it ended and the masker was closed
}

func (r *maskingReader) Read(p []byte) (int, error) {
	for r.ready.Len() == 0 && r.err == nil {
		if r.chunk == nil {
			r.chunk = make([]byte, 32<<10)
		}
		n, err := r.src.Read(r.chunk)
		_, _ = r.m.Write(r.chunk[:n]) // a bytes.Buffer does not fail
		if err == io.EOF {
			_ = r.m.Close()
		}
		r.err = err
	}
	if r.ready.Len() > 0 {
		return r.ready.Read(p)
	}
	return 0, r.err
}

func (r *maskingReader) Close() error { return r.src.Close() }

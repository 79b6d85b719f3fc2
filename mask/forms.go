package mask

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"runtime"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// encoder appends to dst a form of v a log may show instead of v.
type encoder struct {
	name string
	enc  func(dst, v []byte) []byte
}

// encoders are the forms of a value masked besides base64 (see the package
// doc for where each comes from). Each is masked where it differs from the
// value and is at least MinLen bytes long.
var encoders = []encoder{
	{"hex", hex.AppendEncode},
	{"HEX", appendHexUpper},
	{"uri", func(dst, v []byte) []byte { return appendPercent(dst, v, "-._~", false) }},
	{"uri-component", func(dst, v []byte) []byte { return appendPercent(dst, v, "-._~!'()*", false) }},
	{"form", func(dst, v []byte) []byte { return appendPercent(dst, v, "-._~", true) }},
	{"json", func(dst, v []byte) []byte { return appendJSON(dst, v, 0) }},
	{"json-newtonsoft", func(dst, v []byte) []byte { return appendJSON(dst, v, jsonLineSeps|jsonNEL) }},
	{"json-go", func(dst, v []byte) []byte { return appendJSON(dst, v, jsonHTML|jsonLineSeps) }},
	{"json-ascii", func(dst, v []byte) []byte { return appendJSON(dst, v, jsonASCII) }},
	{"xml", replacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;")},
	{"html", replacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;")},
	{"command-line", replacer(`"`, `\"`)},
	{"expression", replacer("'", "''")},
	{"backslash", appendBackslashUnescaped},
	{"trim-quotes", appendTrimmedQuotes},
	{"powershell-pre-ampersand", appendPowerShellPre},
	{"powershell-post-ampersand", appendPowerShellPost},
}

// base64Encodings are the alphabets base64 forms are masked in.
var base64Encodings = []*base64.Encoding{base64.StdEncoding, base64.URLEncoding}

// patternSet collects the byte strings to mask. A task may receive
// 10,000 values, so it allocates little: every pattern is a slice of a few
// shared blocks, a form equal to one already added for the same value is
// not copied (base64's two alphabets agree on most values), the unpadded
// base64 forms are slices of the padded one, and duplicates across values
// are dropped after sorting rather than through a set of strings.
type patternSet struct {
	out     [][]byte
	from    int // out[from:] are the current value's forms
	slab    []byte
	scratch []byte
}

// add copies b into the current block, if it is at least MinLen long and
// not yet a form of the current value, and returns the copy (else nil).
func (ps *patternSet) add(b []byte) []byte {
	if len(b) < MinLen || ps.find(b) != nil {
		return nil
	}
	if len(b) > cap(ps.slab)-len(ps.slab) {
		ps.slab = make([]byte, 0, max(64<<10, len(b)))
	}
	n := len(ps.slab)
	ps.slab = append(ps.slab, b...)
	p := ps.slab[n:len(ps.slab):len(ps.slab)]
	ps.out = append(ps.out, p)
	return p
}

// addSlice adds b, a slice of an added pattern, without copying it.
func (ps *patternSet) addSlice(b []byte) {
	if len(b) >= MinLen && ps.find(b) == nil {
		ps.out = append(ps.out, b[:len(b):len(b)])
	}
}

// find returns the form of the current value equal to b, or nil.
func (ps *patternSet) find(b []byte) []byte {
	for _, q := range ps.out[ps.from:] {
		if bytes.Equal(q, b) {
			return q
		}
	}
	return nil
}

// addForms adds v and each of its forms.
func (ps *patternSet) addForms(v []byte) {
	ps.from = len(ps.out)
	ps.add(v)
	for _, e := range encoders {
		ps.scratch = e.enc(ps.scratch[:0], v)
		if !bytes.Equal(ps.scratch, v) {
			ps.add(ps.scratch)
		}
	}
	for _, enc := range base64Encodings {
		// Shifted, where at least MinLen bytes of the value remain.
		for off := 0; off < 3 && len(v)-off >= MinLen; off++ {
			ps.scratch = enc.AppendEncode(ps.scratch[:0], v[off:])
			padded := ps.add(ps.scratch)
			if padded == nil {
				if padded = ps.find(ps.scratch); padded == nil {
					continue // too short, as its variants are
				}
			}
			// Without its padding, and without the last digit, which also
			// holds bits of what follows the value: the part that is the
			// same whatever the value is followed by.
			full := bytes.TrimRight(padded, "=")
			ps.addSlice(full)
			if (len(v)-off)%3 != 0 {
				ps.addSlice(full[:len(full)-1])
			}
		}
	}
}

// valuesPerWorker is the fewest values whose patterns patterns makes on a
// goroutine of its own: below it, starting one costs more than it saves.
const valuesPerWorker = 1024

// patterns returns the byte strings to mask for values, sorted and without
// duplicates: of every value of at least MinLen bytes, the value and each
// line of it (split at CR or LF, trimmed of spaces: a value printed line
// by line), each with every form of the package doc. Strings shorter than
// MinLen are left out. Many values are split over up to GOMAXPROCS
// goroutines, each sorting its part, and the parts merged: a task of
// 10,000 values has over 100,000 patterns, and this is most of the
// masker's build.
func patterns(values []string) [][]byte {
	workers := max(1, min(runtime.GOMAXPROCS(0), len(values)/valuesPerWorker))
	if workers == 1 {
		return sortedPatterns(values)
	}
	per := (len(values) + workers - 1) / workers
	parts := make([][][]byte, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*per, min((w+1)*per, len(values))
		wg.Go(func() { parts[w] = sortedPatterns(values[lo:hi]) })
	}
	wg.Wait()
	for len(parts) > 1 {
		var next [][][]byte
		for i := 0; i < len(parts); i += 2 {
			if i+1 == len(parts) {
				next = append(next, parts[i])
			} else {
				next = append(next, mergePatterns(parts[i], parts[i+1]))
			}
		}
		parts = next
	}
	return parts[0]
}

// mergePatterns merges two sorted lists without duplicates into one.
func mergePatterns(a, b [][]byte) [][]byte {
	out := make([][]byte, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		switch c := bytes.Compare(a[0], b[0]); {
		case c < 0:
			out, a = append(out, a[0]), a[1:]
		case c > 0:
			out, b = append(out, b[0]), b[1:]
		default:
			out, a, b = append(out, a[0]), a[1:], b[1:]
		}
	}
	return append(append(out, a...), b...)
}

// sortedPatterns is patterns on one goroutine.
func sortedPatterns(values []string) [][]byte {
	ps := &patternSet{out: make([][]byte, 0, 16*len(values))}
	var v []byte
	for _, s := range values {
		if len(s) < MinLen {
			continue
		}
		v = append(v[:0], s...)
		ps.addForms(v)
		if strings.ContainsAny(s, "\r\n") {
			for _, line := range bytes.FieldsFunc(v, func(r rune) bool { return r == '\n' || r == '\r' }) {
				if line = bytes.TrimSpace(line); len(line) >= MinLen {
					ps.addForms(line)
				}
			}
		}
	}
	sortPatterns(ps.out)
	return slices.CompactFunc(ps.out, bytes.Equal)
}

// sortPatterns sorts ps by bytes with a most-significant-byte radix sort:
// a task of 10,000 values has 100,000 patterns, which a comparison sort
// took 20 ms to order (a third of the masker's build), bytes.Compare on
// long common prefixes (the forms of values such as ghp_…) at each step.
func sortPatterns(ps [][]byte) {
	radixSort(ps, make([][]byte, len(ps)), 0)
}

// radixSort sorts ps, whose patterns share their first d bytes, by the
// bytes from d on, using tmp (as long as ps) as scratch. Small groups, and
// groups past radixMaxDepth bytes (a value repeated in many secrets), are
// left to a comparison sort, which bounds the recursion.
func radixSort(ps, tmp [][]byte, d int) {
	for {
		if len(ps) <= radixMinGroup || d >= radixMaxDepth {
			slices.SortFunc(ps, func(a, b []byte) int { return bytes.Compare(a[d:], b[d:]) })
			return
		}
		// Bucket 0 holds the patterns that end at d; bucket c+1 those
		// whose byte d is c.
		var count [257]int
		for _, p := range ps {
			count[radixKey(p, d)]++
		}
		if count[radixKey(ps[0], d)] == len(ps) {
			if len(ps[0]) <= d {
				return // all equal
			}
			d++ // one group: go on with the next byte, without recursing
			continue
		}
		var at [257]int
		for c := 1; c < len(at); c++ {
			at[c] = at[c-1] + count[c-1]
		}
		next := at
		for _, p := range ps {
			k := radixKey(p, d)
			tmp[next[k]] = p
			next[k]++
		}
		copy(ps, tmp)
		for c := 1; c < len(at); c++ {
			if count[c] > 1 {
				radixSort(ps[at[c]:at[c]+count[c]], tmp[at[c]:at[c]+count[c]], d+1)
			}
		}
		return
	}
}

// radixKey is the bucket of p at byte d.
func radixKey(p []byte, d int) int {
	if d < len(p) {
		return int(p[d]) + 1
	}
	return 0
}

const (
	radixMinGroup = 32  // groups of at most this many are compared
	radixMaxDepth = 256 // deeper than this, groups are compared
)

func appendHexUpper(dst, v []byte) []byte {
	const digits = "0123456789ABCDEF"
	for _, b := range v {
		dst = append(dst, digits[b>>4], digits[b&15])
	}
	return dst
}

// appendPercent percent-encodes v with upper-case digits, leaving ASCII
// letters, digits and the bytes of keep as they are; with plus a space is
// written '+'.
func appendPercent(dst, v []byte, keep string, plus bool) []byte {
	const digits = "0123456789ABCDEF"
	for _, b := range v {
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', strings.IndexByte(keep, b) >= 0:
			dst = append(dst, b)
		case plus && b == ' ':
			dst = append(dst, '+')
		default:
			dst = append(dst, '%', digits[b>>4], digits[b&15])
		}
	}
	return dst
}

// JSON escaping variants: which characters beyond '"', '\\' and the
// control characters are written \uXXXX.
const (
	jsonHTML     = 1 << iota // <, > and & (Go's encoding/json)
	jsonLineSeps             // U+2028 and U+2029 (Go, Newtonsoft.Json)
	jsonNEL                  // U+0085 (Newtonsoft.Json)
	jsonASCII                // everything not ASCII (Python's json.dumps)
)

// appendJSON appends v as the inside of a JSON string literal: '"' and
// '\\' escaped, \b \f \n \r \t for those controls, \u00xx for the others,
// and \uxxxx for the characters flags name (a pair of surrogates beyond
// U+FFFF). Invalid UTF-8 stays as it is.
func appendJSON(dst, v []byte, flags int) []byte {
	i := 0
	for i < len(v) && v[i] >= 0x20 && v[i] < utf8.RuneSelf && v[i] != '"' && v[i] != '\\' && v[i] != '<' && v[i] != '>' && v[i] != '&' {
		i++ // bytes no variant escapes: most values are all such bytes
	}
	dst = append(dst, v[:i]...)
	for i < len(v) {
		r, size := rune(v[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRune(v[i:])
		}
		switch {
		case r == '"' || r == '\\':
			dst = append(dst, '\\', byte(r))
		case r == '\b':
			dst = append(dst, `\b`...)
		case r == '\f':
			dst = append(dst, `\f`...)
		case r == '\n':
			dst = append(dst, `\n`...)
		case r == '\r':
			dst = append(dst, `\r`...)
		case r == '\t':
			dst = append(dst, `\t`...)
		case r < 0x20,
			flags&jsonHTML != 0 && (r == '<' || r == '>' || r == '&'),
			flags&jsonLineSeps != 0 && (r == 0x2028 || r == 0x2029),
			flags&jsonNEL != 0 && r == 0x85,
			flags&jsonASCII != 0 && r >= utf8.RuneSelf && (r != utf8.RuneError || size > 1):
			dst = appendUnicodeEscape(dst, r)
		default:
			dst = append(dst, v[i:i+size]...)
		}
		i += size
	}
	return dst
}

func appendUnicodeEscape(dst []byte, r rune) []byte {
	const digits = "0123456789abcdef"
	if r > 0xFFFF {
		r -= 0x10000
		dst = appendUnicodeEscape(dst, 0xD800+(r>>10))
		return appendUnicodeEscape(dst, 0xDC00+(r&0x3FF))
	}
	return append(dst, '\\', 'u', digits[r>>12&15], digits[r>>8&15], digits[r>>4&15], digits[r&15])
}

// replacer returns an encoder replacing each old string of oldnew with
// the new one that follows it, in one pass.
func replacer(oldnew ...string) func(dst, v []byte) []byte {
	r := strings.NewReplacer(oldnew...)
	var firsts string
	for i := 0; i < len(oldnew); i += 2 {
		firsts += oldnew[i][:1]
	}
	return func(dst, v []byte) []byte {
		if !bytes.ContainsAny(v, firsts) {
			return append(dst, v...) // most values: no string to allocate
		}
		return append(dst, r.Replace(string(v))...)
	}
}

// appendBackslashUnescaped undoes backslash escapes as Azure Pipelines'
// BackslashEscape does: one replacement after the other, \\ then \' then
// \" then \t.
func appendBackslashUnescaped(dst, v []byte) []byte {
	if bytes.IndexByte(v, '\\') < 0 {
		return append(dst, v...)
	}
	s := strings.ReplaceAll(string(v), `\\`, `\`)
	s = strings.ReplaceAll(s, `\'`, `'`)
	s = strings.ReplaceAll(s, `\"`, `"`)
	return append(dst, strings.ReplaceAll(s, `\t`, "\t")...)
}

// appendTrimmedQuotes appends the inside of a value of more than 8 bytes
// in double quotes (GitHub's TrimDoubleQuotes), else nothing.
func appendTrimmedQuotes(dst, v []byte) []byte {
	if len(v) > 8 && v[0] == '"' && v[len(v)-1] == '"' {
		return append(dst, v[1:len(v)-1]...)
	}
	return dst
}

// powerShellSection is the shortest section around a '&' masked, as in
// GitHub's runner: PowerShell may print the parts of a value around an
// '&' apart, coloured.
const powerShellSection = 6

// appendPowerShellPre appends the part of v up to its first "&+", or else
// up to its last '&', if that part is at least powerShellSection long.
func appendPowerShellPre(dst, v []byte) []byte {
	var section []byte
	if i := bytes.Index(v, []byte("&+")); i >= 0 {
		section = v[:i+2]
	} else if i := bytes.LastIndexByte(v, '&'); i >= 0 {
		section = v[:i+1]
	}
	if len(section) < powerShellSection {
		return dst
	}
	return append(dst, section...)
}

// appendPowerShellPost appends the part of v after its first "&+" and the
// one character after it (the one PowerShell colours), or else after its
// last '&', if that part is at least powerShellSection long.
func appendPowerShellPost(dst, v []byte) []byte {
	var section []byte
	if i := bytes.Index(v, []byte("&+")); i >= 0 {
		rest := v[i+2:]
		_, size := utf8.DecodeRune(rest)
		section = rest[size:]
	} else if i := bytes.LastIndexByte(v, '&'); i >= 0 {
		section = v[i+1:]
	}
	if len(section) < powerShellSection {
		return dst
	}
	return append(dst, section...)
}

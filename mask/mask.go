// Package mask masks secret values in task logs: a Writer copies a stream
// with every occurrence of a value, or of a form of it, replaced by
// Placeholder, however the stream is cut into writes.
//
// # What is masked
//
// Every value of at least MinLen bytes, and each line of a multi-line
// value (split at CR or LF, trimmed of spaces), each in these forms (a
// form is masked where it is at least MinLen bytes long):
//
//   - as it is;
//   - base64, standard and URL-safe alphabets, with and without padding,
//     of the value and of the value less its first one or two bytes where
//     MinLen bytes remain (the value base64-encoded after a prefix of 3k+2
//     or 3k+1 bytes, as in base64("user:" + password)), each also without
//     its last digit where that holds bits of what follows the value;
//   - hex, lower and upper case;
//   - percent-encoded: RFC 3986 (all but letters, digits and -._~), as
//     JavaScript's encodeURIComponent (also !'()* kept), and as a form
//     (a space as '+');
//   - inside a JSON string: '"', '\\' and control characters escaped; also
//     with U+2028, U+2029 and U+0085 as \uXXXX (Newtonsoft.Json), with <, >, &,
//     U+2028 and U+2029 as \uXXXX (Go's encoding/json), and with everything
//     not ASCII as \uXXXX (Python's json.dumps);
//   - XML-escaped (&amp; &lt; &gt; &quot; &apos;) and HTML-escaped as Go's
//     html.EscapeString (&#34; &#39;);
//   - '"' written \" (a command line), each "'" doubled (an expression or
//     SQL string), backslash escapes undone (\\ \' \" \t, one after the
//     other);
//   - a value of more than 8 bytes in double quotes, without them;
//   - for a value holding '&', the part up to its first "&+" (or its last
//     '&') and the part after it (after "&+", less one character), each if
//     at least 6 bytes long: PowerShell prints them apart, coloured.
//
// These are every transformation the log maskers of GitHub Actions and
// Azure Pipelines are written to catch, plus hex, the JSON variants beyond
// Newtonsoft's, the percent variants beyond .NET's Uri.EscapeDataString
// and the HTML form. GitHub Actions' runner (actions/runner,
// src/Sdk/DTLogging/Logging/ValueEncoders.cs, registered in
// src/Runner.Common/HostContext.cs): Base64StringEscape and its Shift1 and
// Shift2 (EnumerateBase64Variations: both alphabets, no padding, offsets
// 0-2), CommandLineArgumentEscape, ExpressionStringEscape,
// JsonStringEscape (Newtonsoft.Json), UriDataEscape
// (Uri.EscapeDataString), XmlDataEscape (SecurityElement.Escape),
// TrimDoubleQuotes, PowerShellPreAmpersandEscape and
// PowerShellPostAmpersandEscape; each line of a multi-line secret is
// masked too. Azure Pipelines' agent (microsoft/azure-pipelines-agent,
// src/Agent.Sdk/SecretMasking/LiteralEncoders.cs, registered in
// src/Microsoft.VisualStudio.Services.Agent/HostContext.cs): JsonStringEscape, UriDataEscape and
// BackslashEscape. Left out: the agent's ShellExpansionMasker, which
// guesses what $$ and $RANDOM in a value expand to (a list of made-up
// numbers, not a transformation of the value), and both systems' regular
// expressions for well-known token shapes (this package masks values it
// is given, not shapes).
//
// # Cost
//
// All patterns go into one Aho–Corasick automaton (matcher.go), each
// only up to its anchor, a prefix of at least 8 bytes no other pattern
// shares, and is followed past it by its own Knuth–Morris–Pratt automaton
// (long.go): building costs about 8 trie states per pattern, and masking
// reads each byte once, in time linear in the output and nearly
// independent of the number of values. No stream, periodic values
// included, makes it compare a byte more than once per pattern whose
// anchor is a suffix of what it just read: one for values of random
// bytes, more only for values chosen to nest in each other, and then only
// in their owner's log (BenchmarkMaskerWorstCase).
// BenchmarkMaskerManyValues reports the rate against a plain copy.
package mask

import (
	"bytes"
	"errors"
	"io"
)

// Placeholder replaces every masked value in a log.
const Placeholder = "***"

// MinLen is the shortest value that is masked: shorter ones would
// blank out ordinary words (the API warns when such a value is saved).
const MinLen = 4

// ErrClosed is returned by a write to a closed Writer.
var ErrClosed = errors.New("mask: write to closed writer")

// Writer is an io.WriteCloser that writes what it is given to another
// writer with every occurrence of a masked string replaced by Placeholder:
// every byte that lies in any occurrence of any pattern (see patterns) is
// masked, and each run of masked bytes becomes one Placeholder. The output
// does not depend on how the input is cut into writes: a value split
// across two writes is masked like a whole one.
//
// To see a value that a later write may complete, the Writer holds back
// the end of what it was given while that end could still begin an
// occurrence — at most the longest pattern less one byte. Close writes it
// out. A Writer is not safe for concurrent use.
type Writer struct {
	w      io.Writer
	m      *matcher
	state  uint32 // code of the automaton's state (see matcher)
	buf    []byte // buf[start:] is the input held back, from stream offset base
	start  int
	base   int
	cover  []interval // covered stream ranges not yet written out, in order, apart
	longAt []int32    // matched prefix of each long pattern followed (see long.go)
	active []int32    // the long patterns followed
	inMask bool       // the last byte written out was masked
	out    []byte
	err    error
	closed bool
}

// interval is the stream range [from, to).
type interval struct{ from, to int }

// NewWriter returns a Writer writing to w, masking values.
func NewWriter(w io.Writer, values []string) *Writer {
	return newWriter(w, newMatcher(patterns(values)))
}

// newWriter returns a Writer writing to w, masking m's patterns.
func newWriter(w io.Writer, m *matcher) *Writer { return &Writer{w: w, m: m} }

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
	end := m.base + len(m.buf) - m.start
	m.scan(p, end)
	m.buf = append(m.buf, p...)
	end += len(p)
	m.flush(end - max(m.m.holdOf(m.state), m.held()))
	if m.err != nil {
		return 0, m.err
	}
	return len(p), nil
}

// scan feeds p, which begins at stream offset pos, to the automaton and
// records the range of every occurrence: the longest pattern ending at a
// byte covers every shorter one ending there.
func (m *Writer) scan(p []byte, pos int) {
	mt, c := m.m, m.state
	dense, classes, denseCells, out := mt.dense, &mt.classes, mt.denseCells, mt.out
	for i, b := range p {
		if len(m.active) != 0 {
			m.advance(b, pos+i+1)
		}
		// The dense step is inlined: most bytes of a log take it.
		var t uint32
		if c < denseCells {
			t = dense[c+uint32(classes[b])]
		} else {
			t = mt.next(c, b)
		}
		if c = t &^ outFlag; t&outFlag == 0 {
			continue
		}
		// Only a sparse state has an out (see matcher).
		s := c - denseCells
		if o := out[s]; o != 0 {
			if n := int(o & lenMask); n != 0 {
				m.covered(pos+i+1-n, pos+i+1)
			}
			if o&anchorBit != 0 {
				m.activate(s)
			}
		}
	}
	m.state = c
}

// covered records [from, to); to is never below an earlier one's, so it
// merges with the last ranges it reaches or touches.
func (m *Writer) covered(from, to int) {
	for k := len(m.cover) - 1; k >= 0 && from <= m.cover[k].to; k-- {
		from = min(from, m.cover[k].from)
		m.cover = m.cover[:k]
	}
	m.cover = append(m.cover, interval{from, to})
}

// Close writes out what the masker holds back. It does not close the
// underlying writer. Closing twice is no error.
func (m *Writer) Close() error {
	if m.closed {
		return m.err
	}
	m.closed = true
	if m.err == nil {
		m.flush(m.base + len(m.buf) - m.start)
	}
	return m.err
}

// flush writes out the stream up to offset upto, masked, and keeps the
// rest: no occurrence a later byte completes can begin before upto.
func (m *Writer) flush(upto int) {
	if upto == m.base {
		return
	}
	out := m.out[:0]
	for i := m.base; i < upto; {
		if len(m.cover) > 0 && m.cover[0].from <= i {
			if !m.inMask {
				out = append(out, Placeholder...)
				m.inMask = true
			}
			if i = min(m.cover[0].to, upto); i == m.cover[0].to {
				m.cover = m.cover[1:]
			}
			continue
		}
		next := upto
		if len(m.cover) > 0 {
			next = min(next, m.cover[0].from)
		}
		out = append(out, m.buf[m.start+i-m.base:m.start+next-m.base]...)
		m.inMask = false
		i = next
	}
	m.out = out
	m.start += upto - m.base
	m.base = upto
	// Move what is held to the front only once it is at most half the
	// buffer: a copy per write would cost the held length per write.
	if m.start > len(m.buf)/2 {
		m.buf = m.buf[:copy(m.buf, m.buf[m.start:])]
		m.start = 0
	}
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

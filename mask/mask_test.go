package mask

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

func TestMaskPatterns(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []string
		want   []string
	}{
		{"short values are not masked", []string{"", "a", "abc"}, nil},
		// Base64 of "abc" alone ("YWJj"), or shifted ("bcd"), would mask
		// fewer than MinLen bytes of the value.
		{"value and its base64 forms", []string{"abcd"}, []string{"YWJjZA==", "YWJjZA", "YWJjZ", "abcd", "61626364"}},
		{"url-safe differs", []string{"\xfb\xff\xbfx"}, []string{
			"+/+/eA==", "-_-_eA==", "+/+/eA", "-_-_eA", "+/+/e", "-_-_e", "\xfb\xff\xbfx",
			"fbffbf78", "FBFFBF78", "%FB%FF%BFx",
		}},
		{"duplicates once", []string{"abcd", "abcd"}, []string{"YWJjZA==", "YWJjZA", "YWJjZ", "abcd", "61626364"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, p := range patterns(tc.values) {
				got = append(got, string(p))
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tc.want))
			if !slices.Equal(got, want) {
				t.Errorf("patterns = %q, want %q", got, want)
			}
		})
	}
	t.Run("lines of a multi-line value, trimmed, short ones left", func(t *testing.T) {
		got := map[string]bool{}
		for _, p := range patterns([]string{"line one\r\n  two2 \nab\n"}) {
			got[string(p)] = true
		}
		for _, want := range []string{"bGluZSBvbmUNCiAgdHdvMiAKYWIK", "line one\r\n  two2 \nab\n", "line one", "two2", "dHdvMg=="} {
			if !got[want] {
				t.Errorf("patterns lack %q", want)
			}
		}
		for _, short := range []string{"ab", "YWI=", "6162"} {
			if got[short] {
				t.Errorf("patterns hold %q, a form of the line \"ab\", shorter than MinLen", short)
			}
		}
	})
}

// maskWhole is the reference the Masker must agree with, written the
// obvious way: mark every byte inside any occurrence of any pattern, then
// replace each run of marked bytes by Placeholder.
func maskWhole(in []byte, values []string) []byte {
	covered := make([]bool, len(in))
	for _, p := range patterns(values) {
		for i := 0; i+len(p) <= len(in); i++ {
			if bytes.Equal(in[i:i+len(p)], p) {
				for k := i; k < i+len(p); k++ {
					covered[k] = true
				}
			}
		}
	}
	var out []byte
	for i := range in {
		switch {
		case !covered[i]:
			out = append(out, in[i])
		case i == 0 || !covered[i-1]:
			out = append(out, Placeholder...)
		}
	}
	return out
}

// maskChunks writes in to a Masker in the given chunks and returns the
// output and how many bytes were written out before Close.
func maskChunks(t testing.TB, chunks [][]byte, values []string) (out []byte, beforeClose int) {
	t.Helper()
	var buf bytes.Buffer
	m := NewWriter(&buf, values)
	for _, c := range chunks {
		if n, err := m.Write(c); n != len(c) || err != nil {
			t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(c))
		}
	}
	beforeClose = buf.Len()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), beforeClose
}

func TestMasker(t *testing.T) {
	const secret = "s3cr3t-token"
	multi := "-----BEGIN KEY-----\nMIIEabc\n-----END KEY-----\n"
	b64 := func(enc *base64.Encoding, s string) string { return enc.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		name   string
		values []string
		in     []string // chunks
		want   string
	}{
		{"nothing to mask", nil, []string{"hello ", "world"}, "hello world"},
		{"whole value", []string{secret}, []string{"token=" + secret + "\n"}, "token=***\n"},
		{"split across two writes", []string{secret}, []string{"token=s3cr3", "t-token\n"}, "token=***\n"},
		{"split in every byte", []string{secret}, strings.Split("a "+secret+" b", ""), "a *** b"},
		{"two adjacent values are one mask", []string{secret, "other-val"}, []string{secret + "other-val"}, "***"},
		{"overlapping values", []string{"abcdef", "defghi"}, []string{"xabcdefghix"}, "x***x"},
		{"repeated", []string{"aaaa"}, []string{"aaaaaaa b aaa"}, "*** b aaa"},
		{"short value left", []string{"abc"}, []string{"abc abcd"}, "abc abcd"},
		{"prefix that never completes is released on close", []string{secret}, []string{"s3cr3t-toke"}, "s3cr3t-toke"},
		{"each line of a multi-line value", []string{multi}, []string{"MIIEabc\n", "-----END KEY-----"}, "***\n***"},
		{"multi-line value whole", []string{multi}, []string{"x" + multi + "y"}, "x***y"},
		{"standard base64", []string{"\xfb\xff\xbfx-abc"}, []string{b64(base64.StdEncoding, "\xfb\xff\xbfx-abc") + "."}, "***."},
		{"url-safe base64", []string{"\xfb\xff\xbfx-abc"}, []string{b64(base64.URLEncoding, "\xfb\xff\xbfx-abc") + "."}, "***."},
		{"raw url-safe base64 split", []string{secret}, []string{"a " + b64(base64.RawURLEncoding, secret)[:5], b64(base64.RawURLEncoding, secret)[5:] + " b"}, "a *** b"},
		{"padded base64 masks its padding", []string{"abcd"}, []string{"YWJjZA==!"}, "***!"},
		{"empty writes", []string{secret}, []string{"", secret, ""}, "***"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var chunks [][]byte
			for _, c := range tc.in {
				chunks = append(chunks, []byte(c))
			}
			got, _ := maskChunks(t, chunks, tc.values)
			if string(got) != tc.want {
				t.Errorf("masked %q = %q, want %q", strings.Join(tc.in, ""), got, tc.want)
			}
			if ref := maskWhole([]byte(strings.Join(tc.in, "")), tc.values); !bytes.Equal(ref, got) {
				t.Errorf("reference gives %q", ref)
			}
		})
	}
}

// TestMaskerHoldsBackOnlyAPossiblePrefix checks that a streaming log is not
// delayed by more than the start of a value it may be showing.
func TestMaskerHoldsBackOnlyAPossiblePrefix(t *testing.T) {
	values := []string{"s3cr3t-token", strings.Repeat("x", 500)}
	_, early := maskChunks(t, [][]byte{[]byte("line one\nline two\n")}, values)
	if early != len("line one\nline two\n") {
		t.Errorf("wrote %d bytes before Close, want all %d", early, len("line one\nline two\n"))
	}
	var buf bytes.Buffer
	m := NewWriter(&buf, values)
	_, _ = m.Write([]byte("ok s3cr"))
	if buf.String() != "ok " {
		t.Errorf("before the value completes, wrote %q, want %q", buf.String(), "ok ")
	}
}

func TestMaskerErrors(t *testing.T) {
	boom := errors.New("boom")
	m := NewWriter(failWriter{boom}, []string{"abcd"})
	if _, err := m.Write([]byte("hello")); !errors.Is(err, boom) {
		t.Errorf("Write = %v, want %v", err, boom)
	}
	if _, err := m.Write([]byte("x")); !errors.Is(err, boom) {
		t.Errorf("second Write = %v, want %v", err, boom)
	}
	m = NewWriter(io.Discard, nil)
	_ = m.Close()
	if err := m.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := m.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

func TestMaskingReader(t *testing.T) {
	const secret = "s3cr3t-token"
	in := "a " + secret + " b\n" + base64.StdEncoding.EncodeToString([]byte(secret)) + "\n"
	for _, tc := range []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"whole", func(r io.Reader) io.Reader { return r }},
		{"one byte at a time", iotest.OneByteReader},
		{"data with EOF", iotest.DataErrReader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &closeCounter{Reader: tc.wrap(strings.NewReader(in))}
			r := NewReader(src, []string{secret})
			got, err := io.ReadAll(iotest.OneByteReader(r))
			if err != nil {
				t.Fatal(err)
			}
			if want := "a *** b\n***\n"; string(got) != want {
				t.Errorf("read %q, want %q", got, want)
			}
			if err := r.Close(); err != nil || src.closed != 1 {
				t.Errorf("Close = %v, source closed %d times", err, src.closed)
			}
		})
	}
	t.Run("source error", func(t *testing.T) {
		boom := errors.New("boom")
		r := NewReader(io.NopCloser(iotest.ErrReader(boom)), []string{secret})
		if _, err := io.ReadAll(r); !errors.Is(err, boom) {
			t.Errorf("ReadAll = %v, want %v", err, boom)
		}
	})
}

type closeCounter struct {
	io.Reader
	closed int
}

func (c *closeCounter) Close() error { c.closed++; return nil }

// FuzzMasker builds a stream out of two values, their encodings, parts of
// them and noise, cuts it into writes, and checks that the output is the
// whole-stream reference however the stream is cut, and that no masked
// pattern survives in it.
func FuzzMasker(f *testing.F) {
	f.Add("s3cr3t-token", "line1\nline2-long", []byte("noise"), []byte{0, 5, 1, 2, 3, 4, 6, 7}, []byte{3, 1, 7})
	f.Add("aaaa", "aaab", []byte("a"), []byte{0, 1, 5, 0, 0, 6, 1}, []byte{1})
	f.Add("abcdef", "defghi", []byte("x"), []byte{0, 5, 1, 6, 6, 7}, []byte{2, 0, 5})
	f.Add("\xfb\xff\xbf", "+/+/", []byte("YWJj"), []byte{2, 3, 0, 1}, []byte{4})
	f.Fuzz(func(t *testing.T, v1, v2 string, noise, layout, cuts []byte) {
		// Small sizes keep each run fast: the reference is quadratic.
		v1, v2 = v1[:min(len(v1), 80)], v2[:min(len(v2), 80)]
		noise, layout, cuts = noise[:min(len(noise), 256)], layout[:min(len(layout), 64)], cuts[:min(len(cuts), 64)]
		values := []string{v1, v2}
		var in []byte
		for i, b := range layout {
			switch v := values[i%2]; b % 8 {
			case 0:
				in = append(in, v1...)
			case 1:
				in = append(in, v2...)
			case 2:
				in = base64.StdEncoding.AppendEncode(in, []byte(v))
			case 3:
				in = base64.RawURLEncoding.AppendEncode(in, []byte(v))
			case 4:
				line, _, _ := strings.Cut(v, "\n")
				in = append(in, line...)
			case 5:
				in = append(in, noise...)
			case 6:
				in = append(in, v[:len(v)/2]...)
			case 7:
				in = append(in, b)
			}
		}
		// Cut the stream as cuts say; 0 is an empty write (then one byte).
		var chunks [][]byte
		for rest, i := in, 0; len(rest) > 0; i++ {
			n := len(rest)
			if len(cuts) > 0 {
				n = int(cuts[i%len(cuts)])
			}
			if n == 0 {
				chunks = append(chunks, nil)
				n = 1
			}
			n = min(n, len(rest))
			chunks = append(chunks, rest[:n])
			rest = rest[n:]
		}
		got, _ := maskChunks(t, chunks, values)
		want := maskWhole(in, values)
		if !bytes.Equal(got, want) {
			t.Fatalf("streamed output %q differs from whole-stream output %q", got, want)
		}
		for _, p := range patterns(values) {
			// A pattern holding '*' can be spelt by masks and the text
			// around them; one without can only survive unmasked.
			if !bytes.Contains(p, []byte("*")) && bytes.Contains(got, p) {
				t.Fatalf("output %q still holds %q", got, p)
			}
		}
	})
}

// BenchmarkMasker masks 1 MiB of log lines with 100 values, some of them
// present, written in the chunk sizes a log stream gives.
func BenchmarkMasker(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	word := func(n int) string {
		w := make([]byte, n)
		for i := range w {
			w[i] = alnum[rng.IntN(len(alnum))]
		}
		return string(w)
	}
	values := make([]string, 100)
	for i := range values {
		values[i] = word(16 + rng.IntN(48))
	}
	var in bytes.Buffer
	for in.Len() < 1<<20 {
		fmt.Fprintf(&in, "2026-05-07T12:00:00Z INFO request %s done in %dms", word(8), rng.IntN(1000))
		if rng.IntN(20) == 0 {
			in.WriteString(" key=" + values[rng.IntN(len(values))])
		}
		in.WriteByte('\n')
	}
	data := in.Bytes()[:1<<20]
	for _, size := range []int{32 << 10, 256} {
		b.Run(fmt.Sprintf("write=%d", size), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				m := NewWriter(io.Discard, values)
				for rest := data; len(rest) > 0; {
					n := min(size, len(rest))
					_, _ = m.Write(rest[:n])
					rest = rest[n:]
				}
				_ = m.Close()
			}
		})
	}
}

// BenchmarkMaskerWorstCase masks a stream that keeps repeating the start of
// a long periodic value: every held-back position is a candidate, so each
// write re-compares up to the value's length per position.
func BenchmarkMaskerWorstCase(b *testing.B) {
	b.Run("prefixes=100", func(b *testing.B) {
		// 100 values each a prefix of the next share one anchor: a stream
		// of that letter keeps all 100 followed.
		values := make([]string, 100)
		for i := range values {
			values[i] = strings.Repeat("a", minAnchor+1+i)
		}
		data := bytes.Repeat([]byte("a"), 1<<20)
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			m := NewWriter(io.Discard, values)
			_, _ = m.Write(data)
			_ = m.Close()
		}
	})
	for _, n := range []int{64, 4096} {
		b.Run(fmt.Sprintf("value=%d", n), func(b *testing.B) {
			values := []string{strings.Repeat("a", n-1) + "b"}
			data := bytes.Repeat([]byte("a"), 1<<20)
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				m := NewWriter(io.Discard, values)
				for rest := data; len(rest) > 0; {
					k := min(16<<10, len(rest))
					_, _ = m.Write(rest[:k])
					rest = rest[k:]
				}
				_ = m.Close()
			}
		})
	}
}

// TestMaskerManyValues masks with thousands of values, many sharing their
// first bytes (as tokens of one kind do), and agrees with maskWhole.
func TestMaskerManyValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	values := make([]string, 3000)
	for i := range values {
		values[i] = fmt.Sprintf("ghp_%d%x", rng.IntN(50), rng.Uint64())[:4+rng.IntN(12)]
	}
	var in bytes.Buffer
	for range 400 {
		fmt.Fprintf(&in, "line %d %s gh", rng.IntN(100), values[rng.IntN(len(values))])
		if rng.IntN(3) == 0 {
			in.WriteString(base64.StdEncoding.EncodeToString([]byte(values[rng.IntN(len(values))])))
		}
		in.WriteByte('\n')
	}
	got, _ := maskChunks(t, [][]byte{in.Bytes()[:in.Len()/3], in.Bytes()[in.Len()/3:]}, values)
	if want := maskWhole(in.Bytes(), values); !bytes.Equal(got, want) {
		t.Fatalf("masked output differs from the reference:\n got %q\nwant %q", got[:min(len(got), 300)], want[:min(len(want), 300)])
	}
}

// BenchmarkNewMasker builds the masker of a task given 10,000 values of
// 40 bytes: ones that share a prefix (ghp_ and digits) and random ones
// (ghp_ and 36 random letters and digits, as BenchmarkReleaseRLS), some
// 100,000 patterns.
func BenchmarkNewMasker(b *testing.B) {
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	rng := rand.New(rand.NewPCG(5, 6))
	sequential, random := make([]string, 10_000), make([]string, 10_000)
	for i := range sequential {
		sequential[i] = fmt.Sprintf("ghp_%036d", i)
		v := []byte("ghp_")
		for len(v) < 40 {
			v = append(v, alnum[rng.IntN(len(alnum))])
		}
		random[i] = string(v)
	}
	for _, c := range []struct {
		name   string
		values []string
	}{{"sequential", sequential}, {"random", random}} {
		b.Run("values="+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = NewWriter(io.Discard, c.values)
			}
		})
	}
}

// TestMaskerLongValues masks values longer than the trie holds whole
// (anchorLen), periodic ones and ones sharing their anchor included,
// printed whole, in base64, cut short, and with their anchor repeated,
// in writes of every size, and agrees with maskWhole.
func TestMaskerLongValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	shared := strings.Repeat("k", anchorLen)
	values := []string{
		strings.Repeat("ab", 150) + "c",
		shared + "-first-long-value",
		shared + "-second-long-value",
		randomValues(rng, 1)[0] + strings.Repeat("x", 200),
	}
	var in bytes.Buffer
	for range 200 {
		v := values[rng.IntN(len(values))]
		switch rng.IntN(5) {
		case 0:
			in.WriteString(v)
		case 1:
			in.WriteString(base64.StdEncoding.EncodeToString([]byte("u:" + v + "\n")))
		case 2:
			in.WriteString(v[:rng.IntN(len(v))])
		case 3:
			in.WriteString(strings.Repeat(v[:anchorLen+rng.IntN(8)], 1+rng.IntN(3)))
		case 4:
			in.WriteString(" noise ")
		}
	}
	want := maskWhole(in.Bytes(), values)
	for _, size := range []int{1, 7, 129, 4096, in.Len()} {
		var chunks [][]byte
		for rest := in.Bytes(); len(rest) > 0; rest = rest[min(size, len(rest)):] {
			chunks = append(chunks, rest[:min(size, len(rest))])
		}
		if got, _ := maskChunks(t, chunks, values); !bytes.Equal(got, want) {
			t.Fatalf("writes of %d: masked output differs from the reference:\n got %q\nwant %q", size, got[:min(len(got), 400)], want[:min(len(want), 400)])
		}
	}
	if !bytes.Contains(want, []byte(Placeholder)) || len(patterns(values)) == 0 || len(newMatcher(patterns(values)).long) < 4 {
		t.Fatal("the test no longer masks long patterns")
	}
}

// TestMaskerAnchorsInsideOtherPatterns masks values over two letters, so
// that the anchor of one (the prefix of it the trie holds, long.go) is
// often a suffix of a longer prefix of another, in logs of values,
// fragments and repeats, in writes of every size, and agrees with
// maskWhole: a follower must start wherever an anchor ends, also inside
// another pattern's path.
func TestMaskerAnchorsInsideOtherPatterns(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	values := make([]string, 60)
	for i := range values {
		v := make([]byte, minAnchor+1+rng.IntN(16))
		for k := range v {
			v[k] = "01"[rng.IntN(2)]
		}
		values[i] = string(v)
	}
	var in bytes.Buffer
	for range 300 {
		v := values[rng.IntN(len(values))]
		switch rng.IntN(4) {
		case 0:
			in.WriteString(v)
		case 1:
			in.WriteString(v[rng.IntN(len(v)):])
		case 2:
			in.WriteString(v[:rng.IntN(len(v))])
		case 3:
			in.WriteString(" ")
		}
	}
	want := maskWhole(in.Bytes(), values)
	for _, size := range []int{1, 5, 64, in.Len()} {
		var chunks [][]byte
		for rest := in.Bytes(); len(rest) > 0; rest = rest[min(size, len(rest)):] {
			chunks = append(chunks, rest[:min(size, len(rest))])
		}
		if got, _ := maskChunks(t, chunks, values); !bytes.Equal(got, want) {
			t.Fatalf("writes of %d: masked output differs from the reference:\n got %q\nwant %q", size, got[:min(len(got), 300)], want[:min(len(want), 300)])
		}
	}
	if m := newMatcher(patterns(values)); len(m.long) < len(values) {
		t.Fatalf("%d long patterns of %d values: the test no longer masks by anchors", len(m.long), len(values))
	}
}

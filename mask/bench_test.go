package mask

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// logOf returns size bytes of log lines of random words; one line in
// twenty also prints a value, as it is or in one of its forms.
func logOf(rng *rand.Rand, size int, values []string) []byte {
	const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	word := func(n int) []byte {
		w := make([]byte, n)
		for i := range w {
			w[i] = alnum[rng.IntN(len(alnum))]
		}
		return w
	}
	var in bytes.Buffer
	for in.Len() < size {
		fmt.Fprintf(&in, "2026-05-07T12:00:00Z INFO request %s done in %dms", word(8), rng.IntN(1000))
		if rng.IntN(20) == 0 {
			v := []byte(values[rng.IntN(len(values))])
			switch rng.IntN(3) {
			case 0:
				in.WriteString(" key=" + string(v))
			case 1:
				in.WriteString(" auth=" + base64.StdEncoding.EncodeToString(append([]byte("user:"), v...)))
			case 2:
				in.WriteString(" sum=" + hex.EncodeToString(v))
			}
		}
		in.WriteByte('\n')
	}
	return in.Bytes()[:size]
}

// randomValues returns n values of 16 to 64 bytes, tokens of many kinds.
func randomValues(rng *rand.Rand, n int) []string {
	const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~+/=&\"'<>%\\ "
	values := make([]string, n)
	for i := range values {
		v := make([]byte, 16+rng.IntN(49))
		for k := range v {
			v[k] = chars[rng.IntN(len(chars))]
		}
		values[i] = string(v)
	}
	return values
}

// maskAll writes data to w in chunks of the size a log stream gives.
func maskAll(w io.WriteCloser, data []byte) {
	for rest := data; len(rest) > 0; {
		n := min(32<<10, len(rest))
		_, _ = w.Write(rest[:n])
		rest = rest[n:]
	}
	_ = w.Close()
}

// BenchmarkMaskerManyValues masks 8 MiB of log with 1,000 values (every
// form of each: 15,000 patterns or so), the automaton built once, against
// two floors measured in the same op on the same data: a plain copy
// through the same writes (x-copy) and one bytes.Index scan for a single
// value (x-index, what masking one value costs at the least). The
// issue's figure is MiB/s-masker >= 100 on one core:
//
//	go test ./mask -run '^$' -bench ManyValues -benchtime 20x -cpu 1
func BenchmarkMaskerManyValues(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	values := randomValues(rng, 1000)
	data := logOf(rng, 8<<20, values)
	m := newMatcher(patterns(values))
	absent := []byte("not-a-value-in-this-log")
	var tMask, tCopy, tIndex []time.Duration
	for b.Loop() {
		start := time.Now()
		var sink bytes.Buffer
		sink.Grow(len(data))
		maskAll(nopCloser{&sink}, data)
		copied := time.Now()
		if bytes.Contains(data, absent) {
			b.Fatal("the absent value is in the log")
		}
		indexed := time.Now()
		maskAll(newWriter(io.Discard, m), data)
		tCopy, tIndex, tMask = append(tCopy, copied.Sub(start)), append(tIndex, indexed.Sub(copied)), append(tMask, time.Since(indexed))
	}
	mib := float64(len(data)) / (1 << 20)
	b.ReportMetric(mib/median(tMask).Seconds(), "MiB/s-masker")
	b.ReportMetric(mib/median(tCopy).Seconds(), "MiB/s-copy")
	b.ReportMetric(float64(median(tMask))/float64(median(tCopy)), "x-copy")
	b.ReportMetric(float64(median(tMask))/float64(median(tIndex)), "x-index")
}

// BenchmarkMaskerTask is what a task costs envvault: its masker built and
// 1 MiB of output masked, with 28 values as in the issue (48 s before the
// automaton): of 40 bytes, and of 64 KiB (the largest value the vault
// takes) with the output printing them whole and in base64.
//
//	go test ./mask -run '^$' -bench MaskerTask -benchtime 5x -cpu 1
func BenchmarkMaskerTask(b *testing.B) {
	for _, size := range []int{40, 64 << 10} {
		b.Run(fmt.Sprintf("values=28x%d", size), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(7, 8))
			values := make([]string, 28)
			for i := range values {
				v := make([]byte, size)
				for k := range v {
					v[k] = byte('!' + rng.IntN(94))
				}
				values[i] = string(v)
			}
			data := logOf(rng, 1<<20, values)
			b.SetBytes(int64(len(data)))
			var ms []time.Duration
			for b.Loop() {
				start := time.Now()
				maskAll(NewWriter(io.Discard, values), data)
				ms = append(ms, time.Since(start))
			}
			b.ReportMetric(float64(median(ms).Microseconds())/1000, "ms-task")
		})
	}
}

func median(d []time.Duration) time.Duration {
	d = slices.Clone(d)
	slices.Sort(d)
	return d[len(d)/2]
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

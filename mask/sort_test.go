package mask

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestSortPatterns: the radix sort orders as bytes.Compare does, with
// duplicates, patterns that are prefixes of others, bytes of every value,
// groups small and large, and common prefixes past radixMaxDepth.
func TestSortPatterns(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	long := strings.Repeat("x", radixMaxDepth+10)
	for _, n := range []int{0, 1, 2, radixMinGroup, radixMinGroup + 1, 1000, 20_000} {
		ps := make([][]byte, n)
		for i := range ps {
			var p []byte
			switch rng.IntN(5) {
			case 0: // a long common prefix, the rest short
				p = append([]byte(long), byte(rng.IntN(3)))
			case 1: // a prefix of another, or a duplicate
				p = []byte("ghp_abc"[:rng.IntN(8)])
			case 2: // any bytes
				p = make([]byte, rng.IntN(40))
				for j := range p {
					p[j] = byte(rng.IntN(256))
				}
			default: // few distinct bytes: deep groups
				p = make([]byte, 4+rng.IntN(30))
				for j := range p {
					p[j] = "ab\x00\xff"[rng.IntN(4)]
				}
			}
			ps[i] = p
		}
		want := slices.Clone(ps)
		slices.SortFunc(want, bytes.Compare)
		sortPatterns(ps)
		if !slices.EqualFunc(ps, want, bytes.Equal) {
			t.Fatalf("%d patterns: radix order differs from bytes.Compare's", n)
		}
	}
}

// TestPatternsInParallel: patterns split over goroutines and merged gives
// what one goroutine gives, duplicates across the parts dropped once.
func TestPatternsInParallel(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	values := randomValues(rng, 3*valuesPerWorker)
	// The same values again, in the other parts: duplicates across them.
	values = append(values, values[:valuesPerWorker]...)
	got, want := patterns(values), sortedPatterns(values)
	if len(want) < 10*len(values)/2 || !slices.EqualFunc(got, want, bytes.Equal) {
		t.Fatalf("patterns of %d values: %d in parallel, %d on one goroutine, not the same", len(values), len(got), len(want))
	}
}

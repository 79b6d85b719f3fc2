package mask

import (
	"bytes"
	"slices"
)

// A pattern is laid out in the trie only up to its anchor (anchorOf): a
// prefix of at least minAnchor bytes that its neighbours in sorted order
// do not begin with, at most anchorLen bytes. The trie then holds about
// minAnchor states per pattern, not one per byte: the states, not the
// bytes read, are what building costs (10,000 random values of 40 bytes
// have some 100,000 forms of 40 to 60 bytes: 3.1 million states whole,
// 112,000 cut to anchors; 28 values of 64 KiB have some 500 forms of up to
// 175 KiB). Where an anchor ends, in the state the trie is in or at a
// suffix of it (an anchor can end inside another pattern's path), the
// Writer follows each pattern it begins with the Knuth–Morris–Pratt
// automaton of that pattern, one per pattern however often the anchor
// recurs, until the pattern's matched prefix falls below its anchor.
// Patterns each a prefix of the next share an anchor and are followed as
// one (cutToAnchors). A byte costs one step more per pattern so followed:
// as an anchor is its own pattern's (or chain's), one, or as many as
// there are patterns sharing the anchorLen bytes the output just
// repeated. Any prefix would do as an anchor: the choice only bounds that
// number.
const (
	minAnchor = 8
	anchorLen = 128
)

// anchorOf returns the length of the anchor of patterns[i] (sorted,
// without duplicates): past its common prefix with each neighbour but one
// it is a prefix of or that is a prefix of it, at least minAnchor bytes,
// at most anchorLen, and its whole length where that is shorter.
func anchorOf(patterns [][]byte, i int) int {
	p, n := patterns[i], minAnchor
	if i > 0 {
		if k := commonPrefix(patterns[i-1], p); k < len(patterns[i-1]) {
			n = max(n, k+1)
		}
	}
	if i+1 < len(patterns) {
		if k := commonPrefix(p, patterns[i+1]); k < len(p) {
			n = max(n, k+1)
		}
	}
	return min(n, anchorLen, len(p))
}

// cutToAnchors sets the patterns the Writer follows past their anchor and
// returns what the trie holds: every pattern no longer than its anchor
// whole, and the anchors, sorted, without duplicates. Patterns each a
// prefix of the next (a base64 form and the same less its last digit, or
// values aaaaaaaaa, aaaaaaaaaa, …) form a chain with one anchor, the
// longest of theirs, and are followed as one: the longest with its
// Knuth–Morris–Pratt automaton, which passes through every shorter one.
func (m *matcher) cutToAnchors(patterns [][]byte) [][]byte {
	keys := make([][]byte, 0, len(patterns))
	for i := 0; i < len(patterns); {
		j, a := i+1, anchorOf(patterns, i)
		for ; j < len(patterns) && bytes.HasPrefix(patterns[j], patterns[j-1]); j++ {
			a = max(a, anchorOf(patterns, j))
		}
		k := i
		for ; k < j && len(patterns[k]) <= a; k++ {
			keys = append(keys, patterns[k])
		}
		if k < j {
			m.endsFrom = append(m.endsFrom, int32(len(m.ends)))
			for q := k; q < j && j-k > 1; q++ {
				m.ends = append(m.ends, int32(len(patterns[q])))
			}
			m.long = append(m.long, patterns[j-1])
			m.longAnchor = append(m.longAnchor, int32(a))
			keys = append(keys, patterns[j-1][:a])
		}
		i = j
	}
	m.endsFrom = append(m.endsFrom, int32(len(m.ends)))
	// Cut to their anchors, patterns are mostly still in order: only
	// neighbours of a chain can swap.
	if !slices.IsSortedFunc(keys, bytes.Compare) {
		slices.SortFunc(keys, bytes.Compare)
	}
	return slices.CompactFunc(keys, bytes.Equal)
}

const (
	anchorBit = 1 << 30 // in out: a long pattern's anchor ends in this state or a suffix of it
	lenMask   = anchorBit - 1
)

// anchorLong marks the trie state of every long pattern's anchor, and
// clears its out where no short pattern ends there. patterns are all the
// patterns, sorted.
func (m *matcher) anchorLong(patterns [][]byte) {
	if len(m.long) == 0 {
		return
	}
	m.anchorHead = make([]int32, len(m.out))
	m.anchorUp = make([]uint32, len(m.out))
	m.anchorNext = make([]int32, len(m.long))
	for i, p := range m.long {
		a := p[:m.longAnchor[i]]
		s := uint32(0)
		for _, b := range a {
			s = m.child(s, b)
		}
		if _, short := slicesBinarySearch(patterns, a); !short {
			m.out[s] &^= lenMask
		}
		m.out[s] |= anchorBit
		m.anchorNext[i] = m.anchorHead[s] - 1
		m.anchorHead[s] = int32(i) + 1
	}
}

// child returns the trie child of s by b, which must exist.
func (m *matcher) child(s uint32, b byte) uint32 {
	for k := m.first[s]; k < m.first[s+1]; k++ {
		if m.edgeByte[k] == b {
			return m.edgeTo[k] &^ outFlag
		}
	}
	panic("mask: anchor not in the trie")
}

func slicesBinarySearch(sorted [][]byte, p []byte) (int, bool) {
	lo, hi := 0, len(sorted)
	for lo < hi {
		mid := lo + (hi-lo)/2
		if bytes.Compare(sorted[mid], p) < 0 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, lo < len(sorted) && bytes.Equal(sorted[lo], p)
}

// kmpFail returns long pattern i's failure function (f[j]: the longest
// proper border of its first j+1 bytes), built the first time it is
// needed: most long values are never printed.
func (m *matcher) kmpFail(i int32) []int32 {
	if f := m.longFail[i]; f != nil {
		return f
	}
	p := m.long[i]
	f := make([]int32, len(p))
	for j, k := 1, int32(0); j < len(p); j++ {
		for k > 0 && p[j] != p[k] {
			k = f[k-1]
		}
		if p[j] == p[k] {
			k++
		}
		f[j] = k
	}
	m.longFail[i] = f
	return f
}

// endAt returns the length of the longest pattern of chain i that ends
// where the first j bytes of its longest pattern do, or 0.
func (m *matcher) endAt(i, j int32) int32 {
	ends := m.ends[m.endsFrom[i]:m.endsFrom[i+1]]
	if len(ends) == 0 {
		if int(j) == len(m.long[i]) {
			return j
		}
		return 0
	}
	best := m.longBest[i]
	if best == nil {
		// best[j]: the longest pattern of the chain among the borders of
		// the first j bytes, which are the prefixes that end there too.
		f := m.kmpFail(i)
		best = make([]int32, len(m.long[i])+1)
		for _, n := range ends {
			best[n] = n
		}
		for n := 1; n < len(best); n++ {
			if best[n] == 0 {
				best[n] = best[f[n-1]]
			}
		}
		m.longBest[i] = best
	}
	return best[j]
}

// activate starts following the long patterns whose anchor ends in state
// s or is a suffix of it (an anchor can be a suffix of another pattern's
// prefix), those not followed yet.
func (w *Writer) activate(s uint32) {
	m := w.m
	if w.longAt == nil {
		w.longAt = make([]int32, len(m.long))
	}
	if m.longFail == nil {
		m.longFail, m.longBest = make([][]int32, len(m.long)), make([][]int32, len(m.long))
	}
	for t := m.anchorUp[s]; t != 0; t = m.anchorUp[m.id(m.fail[t])] {
		for i := m.anchorHead[t] - 1; i >= 0; i = m.anchorNext[i] {
			if w.longAt[i] == 0 {
				w.longAt[i] = m.longAnchor[i]
				w.active = append(w.active, i)
			}
		}
	}
}

// linkAnchor sets the anchorUp of state s, whose failure link is set and
// shallower: s itself if an anchor ends there, else its failure link's;
// and marks s in out if an anchor ends in it or a suffix of it.
func (m *matcher) linkAnchor(s uint32) {
	if m.anchorUp == nil {
		return
	}
	if m.anchorHead[s] != 0 {
		m.anchorUp[s] = s
	} else {
		m.anchorUp[s] = m.anchorUp[m.id(m.fail[s])]
	}
	if m.anchorUp[s] != 0 {
		m.out[s] |= anchorBit
	}
}

// advance feeds b, ending at stream offset end, to every long pattern
// followed: where one of its chain ends, it covers that one's range; one whose matched
// prefix falls below its anchor is dropped (the trie finds the anchor
// again if it recurs).
func (w *Writer) advance(b byte, end int) {
	for k := 0; k < len(w.active); {
		i := w.active[k]
		p, f, j, a := w.m.long[i], w.m.kmpFail(i), w.longAt[i], w.m.longAnchor[i]
		for j >= a && p[j] != b {
			j = f[j-1]
		}
		if j >= a {
			j++
			if n := w.m.endAt(i, j); n != 0 {
				w.covered(end-int(n), end)
			}
			if int(j) == len(p) {
				j = f[j-1]
			}
		}
		if j < a {
			w.longAt[i] = 0
			w.active[k] = w.active[len(w.active)-1]
			w.active = w.active[:len(w.active)-1]
			continue
		}
		w.longAt[i] = j
		k++
	}
}

// held returns how many of the last bytes a long pattern followed may
// still cover.
func (w *Writer) held() int {
	var n int32
	for _, i := range w.active {
		n = max(n, w.longAt[i])
	}
	return int(n)
}

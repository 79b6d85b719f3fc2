package mask

import "bytes"

// A pattern longer than anchorLen (a long value, or a form of one) is not
// laid out in the trie whole: only its first anchorLen bytes are, as its
// anchor, so the trie stays within anchorLen states per pattern (28
// values of 64 KiB have some 500 forms of up to 175 KiB). Where an anchor
// ends, the Writer follows each pattern it begins with the
// Knuth–Morris–Pratt automaton of that pattern, one per pattern however
// often the anchor recurs, until the pattern's matched prefix falls below
// its anchor. A byte costs one step more per pattern so followed: one, or
// as many as there are long patterns sharing the anchorLen bytes the
// output just repeated.
const anchorLen = 128

const (
	anchorBit = 1 << 30 // in out: a long pattern's anchor ends in this state
	lenMask   = anchorBit - 1
)

// anchorLong marks the trie state of every long pattern's anchor, and
// clears its out where no short pattern ends there. patterns are all the
// patterns, sorted.
func (m *matcher) anchorLong(patterns [][]byte) {
	if len(m.long) == 0 {
		return
	}
	m.anchors = make(map[uint32][]int32)
	m.longFail = make([][]int32, len(m.long))
	for i, p := range m.long {
		s := uint32(0)
		for _, b := range p[:anchorLen] {
			s = m.child(s, b)
		}
		if _, short := slicesBinarySearch(patterns, p[:anchorLen]); !short {
			m.out[s] = 0
		}
		m.out[s] |= anchorBit
		m.anchors[s] = append(m.anchors[s], int32(i))
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

// activate starts following the long patterns whose anchor ends in state
// s, those not followed yet.
func (w *Writer) activate(s uint32) {
	if w.longAt == nil {
		w.longAt = make([]int32, len(w.m.long))
	}
	for _, i := range w.m.anchors[s] {
		if w.longAt[i] == 0 {
			w.longAt[i] = anchorLen
			w.active = append(w.active, i)
		}
	}
}

// advance feeds b, ending at stream offset end, to every long pattern
// followed: one that reaches its end covers its range, one whose matched
// prefix falls below its anchor is dropped (the trie finds the anchor
// again if it recurs).
func (w *Writer) advance(b byte, end int) {
	for k := 0; k < len(w.active); {
		i := w.active[k]
		p, f, j := w.m.long[i], w.m.kmpFail(i), w.longAt[i]
		for j >= anchorLen && p[j] != b {
			j = f[j-1]
		}
		if j >= anchorLen {
			if j++; int(j) == len(p) {
				w.covered(end-len(p), end)
				j = f[j-1]
			}
		}
		if j < anchorLen {
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

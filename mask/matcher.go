package mask

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"slices"
)

// matcher is an Aho–Corasick automaton over a set of patterns: fed the
// input a byte at a time, it is in the state of the longest suffix of the
// input that begins some pattern, and tells for that state the longest
// pattern ending there (out) and how much of the input a later byte could
// still extend into an occurrence (hold).
//
// States are numbered breadth first, so the shallow ones come first. The
// states of depth at most denseDepth (up to maxDenseCells transitions) have a
// full transition row over byte classes, failure links already followed:
// most bytes of a log are read there in one load. Deeper states keep their
// children sparse, sorted by byte, and fall back along their failure link
// when none fits. Each byte raises the depth by at most one and each
// fallback lowers it, so reading n bytes costs O(n) steps whatever the
// number of patterns; memory is about 21 bytes per trie state plus the
// dense rows.
type matcher struct {
	classes  [256]uint16 // byte -> class (0: in no pattern)
	stride   int         // classes in a dense row
	nDense   uint32      // states 0..nDense-1 have a dense row
	dense    []uint32    // dense[s*stride+classes[b]]: next state, | outFlag if its out is not 0
	first    []uint32    // state s's children: edge first[s] to first[s+1]-1
	edgeByte []byte
	edgeTo   []uint32 // child, | outFlag as in dense
	fail     []uint32
	out      []uint32 // length of the longest pattern ending in the state (lenMask), | anchorBit
	long     [][]byte // patterns longer than anchorLen, sorted
	longFail [][]int32
	anchors  map[uint32][]int32 // anchor state -> its patterns in long
	hold     []uint32           // length of the longest suffix that is a proper prefix of a pattern
	maxLen   int
}

// outFlag marks a dense transition to a state where a pattern ends.
const outFlag = 1 << 31

const (
	denseDepth = 3
	// maxDenseCells bounds the dense rows: 16 MiB of transitions.
	maxDenseCells = 1 << 22
)

// span is the range of sorted patterns that share a trie state's prefix.
type span struct{ lo, hi uint32 }

// newMatcher builds the automaton of patterns, which must be sorted,
// without duplicates and not empty. It allocates per array, not per state
// or pattern: a task of 10,000 values has over 100,000 patterns.
func newMatcher(patterns [][]byte) *matcher {
	m := &matcher{}
	keys := make([][]byte, 0, len(patterns))
	for _, p := range patterns {
		m.maxLen = max(m.maxLen, len(p))
		if len(p) > anchorLen {
			m.long = append(m.long, p)
			p = p[:anchorLen]
		}
		keys = append(keys, p)
	}
	// Cutting sorted patterns to their first anchorLen bytes keeps them
	// sorted (a < b implies a[:n] <= b[:n]): no second sort, only an
	// anchor equal to another key to drop.
	keys = slices.CompactFunc(keys, bytes.Equal)
	depth := m.buildTrie(keys)
	m.buildClasses(keys)
	m.anchorLong(patterns)
	m.link(depth)
	for k, t := range m.edgeTo {
		if m.out[t] != 0 {
			m.edgeTo[k] |= outFlag
		}
	}
	return m
}

// buildTrie lays out the trie breadth first from the sorted patterns (the
// patterns below a state are a range of them) and returns each state's
// depth; a state's out is its depth where a pattern ends there.
func (m *matcher) buildTrie(patterns [][]byte) []uint32 {
	// One state per byte of each pattern beyond what it shares with the
	// one before: the arrays are allocated once, at their size. A
	// state's children start where the common prefix of two neighbours
	// is the state's depth: the walk reads lcp, not the patterns.
	lcp := make([]uint32, len(patterns)+1)
	n := 1
	for i, p := range patterns {
		if i > 0 {
			lcp[i] = uint32(commonPrefix(patterns[i-1], p))
		}
		n += len(p) - int(lcp[i])
	}
	spans := append(make([]span, 0, n), span{0, uint32(len(patterns))})
	depth := append(make([]uint32, 0, n), 0)
	m.out = append(make([]uint32, 0, n), 0)
	m.first = make([]uint32, 0, n+1)
	m.edgeByte = make([]byte, 0, n)
	m.edgeTo = make([]uint32, 0, n)
	for s := 0; s < len(spans); s++ {
		m.first = append(m.first, uint32(len(m.edgeTo)))
		lo, hi, d := spans[s].lo, spans[s].hi, depth[s]
		if lo < hi && uint32(len(patterns[lo])) == d {
			m.out[s] = d
			lo++
		}
		for i := lo; i < hi; {
			j := i + 1
			for j < hi && lcp[j] > d {
				j++
			}
			m.edgeByte = append(m.edgeByte, patterns[i][d])
			m.edgeTo = append(m.edgeTo, uint32(len(spans)))
			spans = append(spans, span{i, j})
			depth = append(depth, d+1)
			m.out = append(m.out, 0)
			i = j
		}
	}
	m.first = append(m.first, uint32(len(m.edgeTo)))
	return depth
}

// commonPrefix returns the length of the longest common prefix of a and b,
// comparing eight bytes at a time.
func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	k := 0
	for ; k+8 <= n; k += 8 {
		if x := binary.LittleEndian.Uint64(a[k:]) ^ binary.LittleEndian.Uint64(b[k:]); x != 0 {
			return k + bits.TrailingZeros64(x)/8
		}
	}
	for k < n && a[k] == b[k] {
		k++
	}
	return k
}

// buildClasses gives each byte that occurs in a pattern a class of its
// own, and every other byte class 0.
func (m *matcher) buildClasses(patterns [][]byte) {
	var seen [256]bool
	for _, p := range patterns {
		for _, b := range p {
			seen[b] = true
		}
	}
	m.stride = 1
	for b := range seen {
		if seen[b] {
			m.classes[b] = uint16(m.stride)
			m.stride++
		}
	}
}

// link sets the failure links, out and hold of every state, and fills the
// dense rows, in breadth-first order: a state's failure link is shallower,
// so it is complete when the state is reached.
func (m *matcher) link(depth []uint32) {
	n := len(depth)
	m.fail = make([]uint32, n)
	m.hold = make([]uint32, n)
	for m.nDense < uint32(min(n, maxDenseCells/m.stride)) && depth[m.nDense] <= denseDepth {
		m.nDense++
	}
	m.dense = make([]uint32, int(m.nDense)*m.stride)
	for s := range uint32(n) {
		f := m.fail[s]
		lo, hi := m.first[s], m.first[s+1]
		if lo < hi {
			m.hold[s] = depth[s]
		} else if s != 0 {
			m.hold[s] = m.hold[f]
		}
		for k := lo; k < hi; k++ {
			t := m.edgeTo[k]
			if s != 0 {
				m.fail[t] = m.next(f, m.edgeByte[k]) &^ outFlag
			}
			if m.out[t]&lenMask == 0 {
				m.out[t] |= m.out[m.fail[t]] & lenMask
			}
		}
		if s < m.nDense {
			row := m.dense[int(s)*m.stride : int(s+1)*m.stride]
			if s != 0 {
				copy(row, m.dense[int(f)*m.stride:int(f+1)*m.stride])
			}
			for k := lo; k < hi; k++ {
				t := m.edgeTo[k]
				if m.out[t] != 0 {
					t |= outFlag
				}
				row[m.classes[m.edgeByte[k]]] = t
			}
		}
	}
}

// next returns the state after reading b in state s, | outFlag if a
// pattern or an anchor ends there.
func (m *matcher) next(s uint32, b byte) uint32 {
	for s >= m.nDense {
		lo, hi := m.first[s], m.first[s+1]
		if hi-lo > 8 {
			// Children are sorted by byte: search them.
			for lo < hi {
				mid := lo + (hi-lo)/2
				if m.edgeByte[mid] < b {
					lo = mid + 1
				} else {
					hi = mid
				}
			}
			if lo < m.first[s+1] && m.edgeByte[lo] == b {
				return m.edgeTo[lo]
			}
		} else {
			for k := lo; k < hi; k++ {
				if m.edgeByte[k] == b {
					return m.edgeTo[k]
				}
			}
		}
		s = m.fail[s]
	}
	return m.dense[int(s)*m.stride+int(m.classes[b])]
}

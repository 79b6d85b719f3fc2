package mask

import (
	"encoding/binary"
	"math/bits"
)

// matcher is an Aho–Corasick automaton over a set of patterns: fed the
// input a byte at a time, it is in the state of the longest suffix of the
// input that begins some pattern, and tells for that state the longest
// pattern ending there (out) and how much of the input a later byte could
// still extend into an occurrence (hold).
//
// States are numbered in depth-first preorder (build.go), so a chain of
// single children — most of a pattern — lies in consecutive entries of
// every array and a match walks memory in order. The states of depth at
// most denseDepth (up to maxDenseCells transitions) also have a full
// transition row over byte classes, failure links already followed: most
// bytes of a log are read there in one load. A transition holds a code,
// not a state number: a dense state's code is the offset of its row, so a
// dense step is one indexed load and no multiply; a deeper state's code is
// denseCells plus its number. Deeper states keep their children sparse,
// sorted by byte, and fall back along their failure link when none fits.
// Each byte raises the depth by at most one and each fallback lowers it,
// so reading n bytes costs O(n) steps whatever the number of patterns;
// memory is about 21 bytes per trie state plus the dense rows (and 4
// bytes per dense row); building needs 5 bytes per state and 28 per
// pattern more for a while.
type matcher struct {
	classes    [256]uint16 // byte -> class (0: in no pattern)
	stride     int         // classes in a dense row
	denseCells uint32      // codes below it are dense rows' offsets
	dense      []uint32    // dense[code+classes[b]]: next code, | outFlag if a pattern or anchor ends there
	rowID      []uint32    // state of each dense row
	first      []uint32    // state s's children: edge first[s] to first[s+1]-1
	edgeByte   []byte
	edgeTo     []uint32  // child's code, | outFlag as in dense
	fail       []uint32  // code
	out        []uint32  // length of the longest pattern ending in the state (lenMask), | anchorBit
	long       [][]byte  // the longest pattern of each chain followed past its anchor (long.go)
	longAnchor []int32   // the length of each one's anchor
	endsFrom   []int32   // chain i's lengths are ends[endsFrom[i]:endsFrom[i+1]], if it has more than one pattern
	ends       []int32   // the lengths of the patterns of each chain
	longFail   [][]int32 // made at the first anchor found (kmpFail)
	longBest   [][]int32 // made at the first anchor found (endAt)
	anchorHead []int32   // state -> 1 + its anchor's first pattern in long, or 0
	anchorNext []int32   // the next long pattern of the same anchor, or -1
	anchorUp   []uint32  // state -> the deepest state of its failure chain, itself included, where an anchor ends, or 0
	hold       []uint32  // length of the longest suffix that is a proper prefix of a pattern
	maxLen     int
}

// outFlag marks a transition to a state where a pattern ends.
const outFlag = 1 << 31

const (
	denseDepth = 3
	// maxDenseCells bounds the dense rows: 16 MiB of transitions.
	maxDenseCells = 1 << 22
)

// No pattern ends in a dense state, so a transition with outFlag always
// leads to a sparse one (its state number is its code less denseCells).
var _ [MinLen - denseDepth - 1]struct{}

// newMatcher builds the automaton of patterns, which must be sorted,
// without duplicates and not empty. It allocates per array, not per state
// or pattern: a task of 10,000 values has over 100,000 patterns.
func newMatcher(patterns [][]byte) *matcher {
	m := &matcher{}
	for _, p := range patterns {
		m.maxLen = max(m.maxLen, len(p))
	}
	keys := m.cutToAnchors(patterns)
	depth := m.buildTrie(keys)
	m.buildClasses(keys)
	m.anchorLong(patterns)
	order := m.encode(depth)
	m.link(order, depth)
	for k, t := range m.edgeTo {
		if m.outOf(t) != 0 {
			m.edgeTo[k] |= outFlag
		}
	}
	return m
}

// id returns the state of code c.
func (m *matcher) id(c uint32) uint32 {
	if c < m.denseCells {
		return m.rowID[c/uint32(m.stride)]
	}
	return c - m.denseCells
}

// outOf returns the out of the state of code c: 0 for a dense one.
func (m *matcher) outOf(c uint32) uint32 {
	if c < m.denseCells {
		return 0
	}
	return m.out[c-m.denseCells]
}

// holdOf returns the hold of the state of code c.
func (m *matcher) holdOf(c uint32) int { return int(m.hold[m.id(c)]) }

// next returns the code after reading b in the state of code c, | outFlag
// if a pattern or an anchor ends there.
func (m *matcher) next(c uint32, b byte) uint32 {
	for c >= m.denseCells {
		s := c - m.denseCells
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
		c = m.fail[s]
	}
	return m.dense[c+uint32(m.classes[b])]
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

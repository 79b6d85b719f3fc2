package mask

// buildTrie lays out the trie of the sorted patterns in depth-first
// preorder: pattern i adds one state per byte past its common prefix
// with pattern i-1, numbered in order, so the arrays are allocated once,
// at their size, and a chain of single children is consecutive. Children
// are added in byte order. It returns each state's depth (at most
// anchorLen); a state's out is its depth where a pattern ends there.
// Edges hold state numbers until encode.
func (m *matcher) buildTrie(patterns [][]byte) []uint8 {
	lcp := make([]uint32, len(patterns))
	n := 1
	for i, p := range patterns {
		if i > 0 {
			lcp[i] = uint32(commonPrefix(patterns[i-1], p))
		}
		n += len(p) - int(lcp[i])
	}
	depth := make([]uint8, n)
	m.out = make([]uint32, n)
	m.first = make([]uint32, n+2)
	m.edgeByte = make([]byte, n-1)
	m.edgeTo = make([]uint32, n-1)
	// path[d] is the state at depth d of the pattern last added: pattern i
	// shares path[:lcp[i]+1] with it.
	var path [anchorLen + 1]uint32
	// First count each state's children (in first[s+2]), then, with
	// first[s+1] the next free edge of s, place them.
	for pass := 0; pass < 2; pass++ {
		id := uint32(1)
		for i, p := range patterns {
			for d := lcp[i]; int(d) < len(p); d++ {
				parent := path[d]
				path[d+1] = id
				if pass == 0 {
					m.first[parent+2]++
					depth[id] = uint8(d + 1)
				} else {
					k := m.first[parent+1]
					m.first[parent+1]++
					m.edgeByte[k], m.edgeTo[k] = p[d], id
				}
				id++
			}
			m.out[path[len(p)]] = uint32(len(p))
		}
		if pass == 0 {
			for s := 1; s < len(m.first); s++ {
				m.first[s] += m.first[s-1]
			}
		}
	}
	m.first = m.first[:n+1]
	return depth
}

// encode numbers the dense rows — the states of depth at most denseDepth,
// shallowest first, while maxDenseCells allows — turns the edges' state
// numbers into codes, and returns the states in breadth-first order.
func (m *matcher) encode(depth []uint8) []uint32 {
	n := len(depth)
	var start [anchorLen + 2]uint32
	for _, d := range depth {
		start[int(d)+1]++
	}
	for d := 1; d < len(start); d++ {
		start[d] += start[d-1]
	}
	rows := min(int(start[denseDepth+1]), maxDenseCells/m.stride)
	order := make([]uint32, n)
	for s, d := range depth {
		order[start[d]] = uint32(s)
		start[d]++
	}
	m.rowID = order[:rows:rows]
	m.denseCells = uint32(rows * m.stride)
	// hold is free until link: it maps states to codes meanwhile.
	m.hold = make([]uint32, n)
	for s := range m.hold {
		m.hold[s] = m.denseCells + uint32(s)
	}
	for r, s := range m.rowID {
		m.hold[s] = uint32(r * m.stride)
	}
	for k, t := range m.edgeTo {
		m.edgeTo[k] = m.hold[t]
	}
	return order
}

// link sets the failure links, out and hold of every state, and fills the
// dense rows, in breadth-first order: a state's failure link is shallower,
// so it is complete when the state is reached, and the dense rows come
// first in that order.
func (m *matcher) link(order []uint32, depth []uint8) {
	m.fail = make([]uint32, len(order))
	m.dense = make([]uint32, m.denseCells)
	for r, s := range order {
		f := m.fail[s]
		lo, hi := m.first[s], m.first[s+1]
		if lo < hi {
			m.hold[s] = uint32(depth[s])
		} else {
			m.hold[s] = uint32(m.holdOf(f))
		}
		for k := lo; k < hi; k++ {
			c := m.edgeTo[k]
			if s != 0 {
				m.fail[m.id(c)] = m.next(f, m.edgeByte[k]) &^ outFlag
			}
			if c >= m.denseCells && m.out[c-m.denseCells]&lenMask == 0 {
				m.out[c-m.denseCells] |= m.outOf(m.fail[c-m.denseCells]) & lenMask
			}
			if c >= m.denseCells {
				m.linkAnchor(c - m.denseCells)
			}
		}
		if r < len(m.rowID) {
			row := m.dense[r*m.stride : (r+1)*m.stride]
			if s != 0 {
				copy(row, m.dense[f:int(f)+m.stride])
			}
			for k := lo; k < hi; k++ {
				c := m.edgeTo[k]
				if m.outOf(c) != 0 {
					c |= outFlag
				}
				row[m.classes[m.edgeByte[k]]] = c
			}
		}
	}
}

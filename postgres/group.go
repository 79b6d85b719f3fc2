package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/envvault/envvault/vault"
)

// Group commit (issue 9). A write of one object (vault.LockedUpdater:
// a new value of a secret) may share its transaction with other callers'
// writes, of its user or of others: one BEGIN, one COMMIT and one flush
// of the write-ahead log for the group, and each round of the members'
// statements in one round trip. On two CPUs the commits of single writes,
// not the disk, were the limit: 16 clients wrote no faster than 4.
//
// What each member keeps:
//   - Its own row-level security: every run of a member's statements in a
//     round goes after set_config of its user (unless the setting holds it
//     already, from the run before), and the setting is transaction-local,
//     so a statement always runs as the member that queued it.
//   - Its own lock, and no wait for another's: no two members of the
//     groups in flight in this process hold the same object key
//     (combiner.take), and a member whose lock another transaction holds
//     (another process's write of the same secret, an import) does not
//     wait for it with the whole group: it leaves and runs again alone
//     (tx.Lock). So a group waits for the database's work only, never for
//     a lock held by a transaction outside it.
//   - All or nothing: a group commits every member or none. A member
//     whose write fails (a statement the server refuses, which aborts the
//     shared transaction, or fn failing after it wrote) spoils the group:
//     it rolls back and every member runs again alone (DB.Update), where
//     it gets the answer it would have had without the group. A member
//     that fails before it wrote anything (after its first round: the
//     lock and the read) leaves the group and returns its error at once.
//   - Its own error when the outcome is unknown: if the connection is lost
//     around the COMMIT, every member gets EUNAVAILABLE, as a lone write
//     would; none runs again.
const (
	// groupWorkers is how many groups of one process may be in flight at
	// once, each on a connection of the pool.
	groupWorkers = 2
	// groupMaxQueued bounds the writes waiting for a group in one
	// process: past it a write runs alone at once.
	groupMaxQueued = 1024
	// groupMaxMembers bounds the writes of one group.
	groupMaxMembers = 64
	// groupTimeout bounds each statement of a group, on the server
	// (statement_timeout): one that runs past it, waiting for a row
	// another transaction holds, is cancelled there, so the transaction
	// rolls back, and each member runs again alone. The bound is the
	// server's, not the client's: a client that stopped waiting could not
	// stop a COMMIT already sent after the statement, which would commit
	// once the row is free.
	groupTimeout = 30 * time.Second
	// groupLostAfter is how much longer than groupTimeout a round may take
	// before the group gives the connection up: the members then get
	// EUNAVAILABLE, the outcome unknown, as for a lost connection.
	groupLostAfter = 10 * time.Second
)

// errGroupRetry tells a member that its group rolled back: it must run
// again alone.
var errGroupRetry = errors.New("postgres: the group's transaction rolled back; the write runs again alone")

// errMemberPanicked ends the part of a member whose fn panicked.
var errMemberPanicked = errors.New("postgres: the write panicked")

// errLockBusy tells a member that another transaction holds its lock: it
// leaves the group and runs again alone (tx.Lock).
var errLockBusy = errors.New("postgres: the object's lock is held: the write runs again alone")

// UpdateLocked runs fn as Update does, in a transaction it may share with
// other callers' UpdateLocked (see vault.LockedUpdater for what fn must
// keep, and the group commit comment above for what each member keeps).
func (db *DB) UpdateLocked(ctx context.Context, userID, key string, fn func(vault.Tx) error) error {
	m, err := db.group.join(ctx, userID, userID+"/"+key)
	if err != nil {
		return err
	}
	if m == nil {
		return db.Update(ctx, userID, fn)
	}
	finished := false
	defer func() {
		if !finished {
			// fn panicked: the group goes on without this member (it
			// leaves, or the group rolls back), and the panic goes on up.
			_ = m.finish(errMemberPanicked)
		}
	}()
	err = m.finish(fn(&tx{tx: m, userID: userID, db: db}))
	finished = true
	if errors.Is(err, errGroupRetry) || errors.Is(err, errLockBusy) {
		db.group.stats.alone.Add(1)
		return db.Update(ctx, userID, fn)
	}
	if err != nil {
		return err
	}
	db.linkAfter()
	return nil
}

// combiner forms the groups of one DB: writes queue here, and each of
// groupWorkers workers takes the queued writes whose keys are free, runs
// them as one group, and frees their keys.
type combiner struct {
	db        *DB
	mu        sync.Mutex
	cond      *sync.Cond
	queue     []*joining
	busy      map[string]bool // keys of the members of the groups in flight
	started   bool
	closed    bool
	held      bool          // tests: no group forms until released
	timeout   time.Duration // of a group's statements; groupTimeout if 0
	maxQueued int           // groupMaxQueued if 0
	workers   sync.WaitGroup
	stats     struct{ groups, members, alone atomic.Int64 }
}

// GroupStats counts this process's group commits since Open.
type GroupStats struct {
	Groups  int64 // groups run
	Members int64 // writes in them
	Alone   int64 // writes that ran again alone after their group rolled back
}

// GroupStats returns this process's group commit counts.
func (db *DB) GroupStats() GroupStats {
	st := &db.group.stats
	return GroupStats{Groups: st.groups.Load(), Members: st.members.Load(), Alone: st.alone.Load()}
}

// joining is a write waiting in the queue for its group.
type joining struct {
	userID string
	key    string
	start  chan *member // its member; nil: run alone
}

// join queues a write of key and returns its member once a group takes
// it, or nil if the combiner is closed or groupMaxQueued writes wait (the
// caller runs alone).
func (c *combiner) join(ctx context.Context, userID, key string) (*member, error) {
	j := &joining{userID: userID, key: key, start: make(chan *member, 1)}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, nil
	}
	if !c.started {
		c.started = true
		c.cond = sync.NewCond(&c.mu)
		c.busy = map[string]bool{}
		for range groupWorkers {
			c.workers.Go(c.work)
		}
	}
	if len(c.queue) >= cmp.Or(c.maxQueued, groupMaxQueued) {
		// A flood (of one secret's writes, which take turns, or of many)
		// waits on the database's locks, as lone writes do, not in memory.
		c.mu.Unlock()
		return nil, nil
	}
	c.queue = append(c.queue, j)
	c.cond.Broadcast()
	c.mu.Unlock()
	select {
	case m := <-j.start:
		return m, nil
	case <-ctx.Done():
		c.mu.Lock()
		i := slices.Index(c.queue, j)
		if i >= 0 {
			c.queue = slices.Delete(c.queue, i, i+1)
		}
		c.mu.Unlock()
		if i >= 0 {
			return nil, fmt.Errorf("wait for a group commit: %w", ctx.Err())
		}
		// A worker took it just now: it is a member and must take part.
		return <-j.start, nil
	}
}

// hold stops groups from forming (on) or lets them form again: a test's
// way to put several writes in one group.
func (c *combiner) hold(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = on
	if c.cond != nil {
		c.cond.Broadcast()
	}
}

// close stops the workers once their groups end; writes still queued run
// alone.
func (c *combiner) close() {
	c.mu.Lock()
	c.closed = true
	queued := c.queue
	c.queue = nil
	if c.cond != nil {
		c.cond.Broadcast()
	}
	c.mu.Unlock()
	for _, j := range queued {
		j.start <- nil
	}
	c.workers.Wait()
}

// work runs groups until the combiner closes.
func (c *combiner) work() {
	for {
		taken := c.take()
		if taken == nil {
			return
		}
		c.stats.groups.Add(1)
		c.stats.members.Add(int64(len(taken)))
		g := newGroup(c.db, taken)
		g.run(cmp.Or(c.timeout, groupTimeout))
		c.mu.Lock()
		for _, j := range taken {
			delete(c.busy, j.key)
		}
		c.cond.Broadcast()
		c.mu.Unlock()
	}
}

// take waits for queued writes whose keys no group in flight holds and
// takes up to groupMaxMembers of them, one per key, oldest first; nil
// once the combiner is closed.
func (c *combiner) take() []*joining {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if c.closed {
			return nil
		}
		if c.held {
			c.cond.Wait()
			continue
		}
		var taken []*joining
		rest := c.queue[:0]
		for _, j := range c.queue {
			if len(taken) < groupMaxMembers && !c.busy[j.key] {
				c.busy[j.key] = true
				taken = append(taken, j)
			} else {
				rest = append(rest, j)
			}
		}
		clear(c.queue[len(rest):])
		c.queue = rest
		if len(taken) > 0 {
			return taken
		}
		c.cond.Wait()
	}
}

// A member's state in its group.
const (
	memberRunning  = iota // its fn runs
	memberWaiting         // it waits for the answers of its queued statements
	memberFinished        // fn returned nil; its statements go with COMMIT
	memberLeft            // fn failed before it wrote: it left the group
	memberFailed          // fn failed after it wrote: the group rolls back
)

// group is one shared transaction and its members.
type group struct {
	db      *DB
	mu      sync.Mutex
	cond    *sync.Cond
	members []*member
	running int             // members whose fn runs
	spoiled bool            // the transaction rolled back or will
	over    bool            // end ran: no round comes any more
	outcome error           // what end told the members
	setting string          // the user the row-level security setting holds now
	checked map[string]bool // users whose existence check has been sent
}

// member is one write of a group: the pgx.Tx its fn's store calls use, as
// pipe is for a lone write. The embedded nil pgx.Tx makes any method it
// does not have a panic, a bug of this package.
type member struct {
	pgx.Tx
	g       *group
	userID  string
	state   int
	rounds  int  // rounds of its statements sent
	checked bool // its user's existence check has been sent
	queued  []queuedStmt
	answers chan groupAnswer
}

// queuedStmt is a statement a member queued: query statements answer rows.
type queuedStmt struct {
	sql   string
	args  []any
	done  func(pgconn.CommandTag, error) error
	query bool
}

// groupAnswer is what a round tells a member: the answers of its queued
// statements in order, or err (errGroupRetry, or the group's failure).
type groupAnswer struct {
	tags []pgconn.CommandTag
	rows *bufferedRows // of the last statement, if it is a query
	err  error
}

func newGroup(db *DB, taken []*joining) *group {
	g := &group{db: db, running: len(taken), checked: map[string]bool{}}
	g.cond = sync.NewCond(&g.mu)
	for _, j := range taken {
		m := &member{g: g, userID: j.userID, answers: make(chan groupAnswer, 1)}
		g.members = append(g.members, m)
		j.start <- m
	}
	return g
}

// Defer queues sql to go with the member's next round (see pipe.Defer).
func (m *member) Defer(sql string, args []any, done func(pgconn.CommandTag, error) error) {
	m.queued = append(m.queued, queuedStmt{sql: sql, args: args, done: done})
}

// stmts sends the queued statements and list in the next round and
// returns the first error of any.
func (m *member) stmts(ctx context.Context, list ...stmt) error {
	for _, s := range list {
		m.Defer(s.sql, s.args, s.done)
	}
	_, err := m.round()
	return err
}

// Query sends the queued statements and sql in the next round; the rows
// are read already.
func (m *member) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	m.queued = append(m.queued, queuedStmt{sql: sql, args: args, query: true})
	a, err := m.round()
	if err != nil {
		return nil, err
	}
	return a.rows, nil
}

// QueryRow is Query for at most one row; pgx.ErrNoRows if none.
func (m *member) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := m.Query(ctx, sql, args...)
	return &pipelineRow{rows: rows, err: err}
}

// Exec sends the queued statements and sql in the next round.
func (m *member) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	m.Defer(sql, args, nil)
	a, err := m.round()
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	return a.tags[len(a.tags)-1], nil
}

// round waits for the group to send the member's queued statements and
// checks their answers as pipe.send does.
func (m *member) round() (groupAnswer, error) {
	g := m.g
	queued := m.queued
	g.mu.Lock()
	if g.over {
		g.mu.Unlock()
		return groupAnswer{}, g.outcome
	}
	m.state = memberWaiting
	g.running--
	g.cond.Broadcast()
	g.mu.Unlock()
	a := <-m.answers
	if a.err != nil {
		return a, a.err
	}
	for i, q := range queued {
		if q.done == nil {
			continue
		}
		if err := q.done(a.tags[i], nil); err != nil {
			return a, err
		}
	}
	return a, nil
}

// finish ends the member's part with fn's result err and returns the
// write's outcome: nil once the group committed, errGroupRetry if it
// must run again alone, or its error.
func (m *member) finish(err error) error {
	g := m.g
	g.mu.Lock()
	if g.over {
		// The group ended (its outcome told to this member in a round,
		// or not) without waiting for it.
		m.state = memberFailed
		g.mu.Unlock()
		return g.outcome
	}
	g.running--
	switch {
	case err == nil:
		m.state = memberFinished
	case m.rounds <= 1:
		// Its first round held only its user's check, its lock and its
		// read (vault.LockedUpdater): leaving writes nothing back.
		m.state = memberLeft
		m.queued = nil
	default:
		m.state = memberFailed
	}
	g.cond.Broadcast()
	g.mu.Unlock()
	if m.state == memberLeft {
		return err
	}
	// The group's last round checked the answers of the statements it
	// sent with COMMIT (deliver).
	return (<-m.answers).err
}

// run sends the members' rounds, each when no member's fn is running,
// until every member finished or left, and then commits; or rolls back
// once a member spoiled the group.
func (g *group) run(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), groupLostAfter+3*timeout)
	defer cancel()
	conn, err := g.db.pool.Acquire(ctx)
	if err != nil {
		g.end(fmt.Errorf("%w: begin a group commit: %w", errUnavailable, err))
		return
	}
	began, settled := false, false
	defer func() {
		if began && !settled {
			_, _ = conn.Exec(ctx, "ROLLBACK")
		}
		conn.Release()
	}()
	for {
		b, plan, last, ok := g.nextRound(began)
		if !ok {
			g.end(errGroupRetry)
			return
		}
		if !began && b.Len() == 0 {
			g.end(nil) // every member left before it sent anything
			return
		}
		if !began {
			b = prepend(b, stmt{sql: `BEGIN ISOLATION LEVEL READ COMMITTED`},
				stmt{sql: `SELECT set_config('statement_timeout', $1, true)`, args: []any{fmt.Sprint(timeout.Milliseconds())}})
			for i := range plan {
				plan[i].first += 2
			}
			began = true
		}
		if last {
			b.Queue(`COMMIT`)
		}
		answers, err := send(ctx, conn, b, plan, last)
		if err != nil {
			g.end(err)
			return
		}
		if g.deliver(plan, answers, last) {
			settled = last
			if last {
				return
			}
			continue
		}
		g.end(errGroupRetry)
		return
	}
}

// planned is one member's statements in a round: b's statements first to
// first+n-1.
type planned struct {
	m     *member
	first int
	n     int
}

// nextRound waits until no member's fn runs and returns the round to send:
// each member's queued statements after its user's setting (and, the
// first time, its user's check). last is true when every member finished
// or left: the round ends with COMMIT. ok is false if a member spoiled the
// group.
func (g *group) nextRound(began bool) (b *pgx.Batch, plan []planned, last, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.running > 0 {
		g.cond.Wait()
	}
	last = true
	for _, m := range g.members {
		switch m.state {
		case memberFailed:
			g.spoiled = true
			return nil, nil, false, false
		case memberWaiting:
			last = false
		}
	}
	b = &pgx.Batch{}
	for _, m := range g.members {
		if m.state == memberLeft || (len(m.queued) == 0 && (m.checked || !last)) {
			continue
		}
		// The setting is the transaction's until set again, and one
		// check of a user serves its every write in the transaction.
		if g.setting != m.userID {
			g.setting = m.userID
			b.Queue(`SELECT set_config($1, $2, true)`, settingUser, m.userID)
		}
		if !m.checked {
			m.checked = true
			if !g.checked[m.userID] {
				g.checked[m.userID] = true
				b.Queue(userMustExist, m.userID)
			}
		}
		p := planned{m: m, first: b.Len(), n: len(m.queued)}
		for _, q := range m.queued {
			b.Queue(q.sql, q.args...)
		}
		m.rounds++
		plan = append(plan, p)
	}
	if b.Len() == 0 && began && !last {
		// Members wait with nothing queued: not possible, as a round
		// always sends what its caller waits for.
		panic("postgres: a group round with nothing to send")
	}
	return b, plan, last, true
}

// prepend returns b with list first.
func prepend(b *pgx.Batch, list ...stmt) *pgx.Batch {
	out := &pgx.Batch{}
	for _, s := range list {
		out.Queue(s.sql, s.args...)
	}
	out.QueuedQueries = append(out.QueuedQueries, b.QueuedQueries...)
	return out
}

// send sends one round and reads every answer: per member, the tags of
// its statements and the rows of its last one if it is a query. A
// statement the server refused (or a COMMIT answered ROLLBACK) returns
// errGroupRetry: the transaction is aborted and every member runs again
// alone. Any other failure (the connection lost, the timeout) leaves the
// outcome unknown and returns EUNAVAILABLE.
func send(ctx context.Context, conn *pgxpool.Conn, b *pgx.Batch, plan []planned, last bool) (map[*member]groupAnswer, error) {
	fail := func(err error) error {
		// A lost connection (also a server's FATAL answer: shutdown, an
		// administrator's termination) leaves the outcome unknown if
		// COMMIT was in flight, as for a lone write (unavailable.go).
		if _, ok := errors.AsType[*pgconn.PgError](err); ok && !lostConnection(err) {
			return errGroupRetry
		}
		return fmt.Errorf("%w: group commit: %w", errUnavailable, err)
	}
	br := conn.SendBatch(ctx, b)
	defer br.Close()
	answers := make(map[*member]groupAnswer, len(plan))
	next := 0
	skipTo := func(i int) error {
		for ; next < i; next++ {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		return nil
	}
	for _, p := range plan {
		if err := skipTo(p.first); err != nil {
			return nil, fail(err)
		}
		a := groupAnswer{tags: make([]pgconn.CommandTag, p.n)}
		for i, q := range p.m.queued {
			var err error
			if q.query {
				a.rows, err = bufferRows(br, conn.Conn().TypeMap())
			} else {
				a.tags[i], err = br.Exec()
			}
			next++
			if err != nil {
				return nil, fail(err)
			}
		}
		answers[p.m] = a
	}
	if !last {
		if err := skipTo(b.Len()); err != nil {
			return nil, fail(err)
		}
	} else {
		if err := skipTo(b.Len() - 1); err != nil {
			return nil, fail(err)
		}
		tag, err := br.Exec()
		if err != nil {
			return nil, fail(err)
		}
		if tag.String() != "COMMIT" {
			// COMMIT of a transaction that failed answers ROLLBACK.
			return nil, errGroupRetry
		}
	}
	if err := br.Close(); err != nil {
		return nil, fail(err)
	}
	return answers, nil
}

// deliver hands a round's answers to the members that wait for them and
// checks those of the finished members' statements (a check that fails
// spoils the group: false). After the last round it tells every finished
// member that its write committed.
func (g *group) deliver(plan []planned, answers map[*member]groupAnswer, last bool) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, p := range plan {
		m, a := p.m, answers[p.m]
		if m.state == memberWaiting {
			continue
		}
		for i, q := range m.queued {
			if q.done != nil && q.done(a.tags[i], nil) != nil {
				g.spoiled = true
			}
		}
		m.queued = nil
	}
	if g.spoiled {
		return false
	}
	for _, p := range plan {
		if m := p.m; m.state == memberWaiting {
			m.state = memberRunning
			g.running++
			m.queued = nil
			m.answers <- answers[m]
		}
	}
	if last {
		for _, m := range g.members {
			if m.state == memberFinished {
				m.answers <- groupAnswer{}
			}
		}
	}
	return true
}

// end gives every member still in the group the outcome err:
// errGroupRetry also spoils it.
func (g *group) end(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.over, g.outcome = true, err
	if errors.Is(err, errGroupRetry) {
		g.spoiled = true
	}
	for _, m := range g.members {
		switch m.state {
		case memberWaiting, memberFinished, memberFailed:
			m.answers <- groupAnswer{err: err}
		}
	}
}

// bufferedRows are the rows of a member's query, read from the round's
// results so that the next member's answers can be read: pgx.Rows over
// them, scanned as pgx scans a row.
type bufferedRows struct {
	typeMap *pgtype.Map
	fields  []pgconn.FieldDescription
	rows    [][][]byte
	tag     pgconn.CommandTag
	i       int
}

func bufferRows(br pgx.BatchResults, typeMap *pgtype.Map) (*bufferedRows, error) {
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := &bufferedRows{typeMap: typeMap, fields: slices.Clone(rows.FieldDescriptions())}
	for rows.Next() {
		raw := rows.RawValues()
		row := make([][]byte, len(raw))
		for i, v := range raw {
			if v != nil {
				row[i] = slices.Clone(v)
			}
		}
		out.rows = append(out.rows, row)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out.tag = rows.CommandTag()
	return out, nil
}

func (r *bufferedRows) Close()                                       {}
func (r *bufferedRows) Err() error                                   { return nil }
func (r *bufferedRows) CommandTag() pgconn.CommandTag                { return r.tag }
func (r *bufferedRows) FieldDescriptions() []pgconn.FieldDescription { return r.fields }
func (r *bufferedRows) Conn() *pgx.Conn                              { return nil }
func (r *bufferedRows) TypeMap() *pgtype.Map                         { return r.typeMap }
func (r *bufferedRows) RawValues() [][]byte                          { return r.rows[r.i-1] }

func (r *bufferedRows) Next() bool {
	if r.i >= len(r.rows) {
		return false
	}
	r.i++
	return true
}

func (r *bufferedRows) Scan(dest ...any) error {
	return pgx.ScanRow(r.typeMap, r.fields, r.rows[r.i-1], dest...)
}

func (r *bufferedRows) Values() ([]any, error) {
	vals := make([]any, len(r.fields))
	dest := make([]any, len(vals))
	for i := range vals {
		dest[i] = &vals[i]
	}
	if err := r.Scan(dest...); err != nil {
		return nil, err
	}
	return vals, nil
}

package postgres

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"

	"github.com/envvault/envvault/vault"
)

// The token feed: every process sharing the database LISTENs on
// tokensChannel, on a connection of its own outside the pool, and drops
// from its token cache each token another process revokes (DeleteToken
// NOTIFYs at commit). While the connection is down, the watchers are told
// (TokenFeedDown: their caches empty and serve nothing), and it reconnects
// with a growing delay; once it listens again they are told TokenFeedUp.
const (
	// feedHeartbeat is how long the listener waits for a notification
	// before it pings its connection: a connection lost without an error
	// (a dropped network path) is noticed within feedHeartbeat plus
	// feedPingTimeout.
	feedHeartbeat   = 5 * time.Second
	feedPingTimeout = 2 * time.Second
	// feedRetryMin and feedRetryMax bound the delay before a reconnection.
	feedRetryMin = 100 * time.Millisecond
	feedRetryMax = 5 * time.Second
	// feedApplicationName names the listener's connection in
	// pg_stat_activity.
	feedApplicationName = "envvault token feed"
)

// tokenFeed is the listener of one DB and its watchers.
type tokenFeed struct {
	mu       sync.Mutex
	watchers []vault.TokenWatcher
	up       bool
	cancel   context.CancelFunc // nil until the listener starts
	done     chan struct{}
}

var _ vault.TokenFeed = (*DB)(nil)

// WatchTokens makes the store tell w about every token revoked in the
// database, by any process, until Close; the listener starts with the
// first watcher. w hears TokenFeedUp at once if the feed is up.
func (db *DB) WatchTokens(w vault.TokenWatcher) {
	f := &db.feed
	f.mu.Lock()
	defer f.mu.Unlock()
	f.watchers = append(f.watchers, w)
	if f.up {
		w.TokenFeedUp()
	}
	if f.cancel == nil {
		ctx, cancel := context.WithCancel(context.Background())
		f.cancel, f.done = cancel, make(chan struct{})
		go db.listen(ctx)
	}
}

// stopFeed ends the listener, if it started, and waits for it.
func (db *DB) stopFeed() {
	f := &db.feed
	f.mu.Lock()
	cancel, done := f.cancel, f.done
	f.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// setUp tells the watchers that the feed went up or down, if it did.
func (f *tokenFeed) setUp(up bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.up == up {
		return
	}
	f.up = up
	for _, w := range f.watchers {
		if up {
			w.TokenFeedUp()
		} else {
			w.TokenFeedDown()
		}
	}
}

func (f *tokenFeed) revoked(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range f.watchers {
		w.TokenRevoked(id)
	}
}

// listen keeps a listening connection until ctx ends.
func (db *DB) listen(ctx context.Context) {
	defer close(db.feed.done)
	delay := feedRetryMin
	for {
		listened := db.listenOnce(ctx)
		db.feed.setUp(false)
		if listened {
			delay = feedRetryMin
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, feedRetryMax)
	}
}

// listenOnce connects, LISTENs and passes notifications on until the
// connection fails or ctx ends. It reports whether it listened.
func (db *DB) listenOnce(ctx context.Context) bool {
	cfg := db.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = feedApplicationName
	// Its wait for a notification ends by its context at every heartbeat:
	// nothing runs on the server to cancel.
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: c.Conn()}
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{tokensChannel}.Sanitize()); err != nil {
		return false
	}
	db.feed.setUp(true)
	for {
		wait, cancel := context.WithTimeout(ctx, feedHeartbeat)
		n, err := conn.WaitForNotification(wait)
		cancel()
		switch {
		case err == nil:
			db.feed.revoked(n.Payload)
		case ctx.Err() != nil:
			return true
		case errors.Is(err, context.DeadlineExceeded):
			ping, cancel := context.WithTimeout(ctx, feedPingTimeout)
			err := conn.Ping(ping)
			cancel()
			if err != nil {
				return true
			}
		default:
			return true
		}
	}
}

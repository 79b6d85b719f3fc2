package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/envvault/envvault/vault"
)

// UpdateMisfiltered is Update with the Go-level user filter broken on
// purpose: the transaction is opened for rlsUser exactly as Update opens
// it (read committed, the row-level security setting), but the
// vault.Tx handed to fn puts filterUser in every WHERE user_id. Only
// row-level security then stands between fn and filterUser's rows.
func (db *DB) UpdateMisfiltered(ctx context.Context, rlsUser, filterUser string, fn func(vault.Tx) error) error {
	return db.pipeTx(ctx, `BEGIN ISOLATION LEVEL READ COMMITTED`, settingUser, rlsUser, func(p *pipe) error {
		return fn(&tx{tx: p, userID: filterUser})
	})
}

// UserTx runs fn on the raw transaction the store opens for userID, so a
// test can issue statements with no WHERE user_id at all.
func (db *DB) UserTx(ctx context.Context, userID string, fn func(pgx.Tx) error) error {
	return db.userTx(ctx, readWrite, userID, fn)
}

// SystemTx runs fn on the raw transaction the store opens for its
// cross-user methods.
func (db *DB) SystemTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return db.systemTx(ctx, readWrite, fn)
}

// PoolCount counts the rows of table straight on the pool, outside any
// transaction the store opens.
func (db *DB) PoolCount(ctx context.Context, table string) (int, error) {
	var n int
	err := db.pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{table}.Sanitize()).Scan(&n)
	return n, err
}

// MaxConns is the size of the store's connection pool.
func (db *DB) MaxConns() int32 { return db.pool.Config().MaxConns }

// HoldGroups keeps the group commit from forming groups: writes queue
// until ReleaseGroups, which lets one group take them all.
func (db *DB) HoldGroups() { db.group.hold(true) }

// ReleaseGroups lets groups form again.
func (db *DB) ReleaseGroups() { db.group.hold(false) }

// QueuedGroupWrites is how many writes wait for a group.
func (db *DB) QueuedGroupWrites() int {
	db.group.mu.Lock()
	defer db.group.mu.Unlock()
	return len(db.group.queue)
}

// SetGroupTimeout replaces groupTimeout for this store.
func (db *DB) SetGroupTimeout(d time.Duration) {
	db.group.mu.Lock()
	defer db.group.mu.Unlock()
	db.group.timeout = d
}

// GroupTimeout is the documented bound of a group's transaction.
const GroupTimeout = groupTimeout

// GroupMaxMembers is the documented bound of a group's writes.
const GroupMaxMembers = groupMaxMembers

// GroupWorkers is the documented bound of the groups in flight.
const GroupWorkers = groupWorkers

// SetGroupMaxQueued replaces groupMaxQueued for this store.
func (db *DB) SetGroupMaxQueued(n int) {
	db.group.mu.Lock()
	defer db.group.mu.Unlock()
	db.group.maxQueued = n
}

// GroupMaxQueued is the documented bound of the writes waiting for a group.
const GroupMaxQueued = groupMaxQueued

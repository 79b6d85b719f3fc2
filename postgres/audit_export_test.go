package postgres

import "time"

// SetPruneBatch sets how many audit events PruneAudit deletes per
// transaction, and returns the function that restores it. Tests that call
// it must not run in parallel.
func SetPruneBatch(n int64) (restore func()) {
	old := pruneBatch
	pruneBatch = n
	return func() { pruneBatch = old }
}

// SetLinkBatch sets how many audit events a link pass links per
// transaction, and returns the function that restores it. Tests that call
// it must not run in parallel.
func SetLinkBatch(n int) (restore func()) {
	old := linkBatch
	linkBatch = n
	return func() { linkBatch = old }
}

// SetLinkTimeout sets how long a link pass may take, and returns the
// function that restores it. Tests that call it must not run in parallel.
func SetLinkTimeout(d time.Duration) (restore func()) {
	old := linkTimeout
	linkTimeout = d
	return func() { linkTimeout = old }
}

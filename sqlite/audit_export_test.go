package sqlite

// SetPruneBatch sets how many audit events PruneAudit deletes per
// transaction, so a test can make a prune take several; it returns the
// function that restores the old size.
func SetPruneBatch(n int64) (restore func()) {
	old := pruneBatch
	pruneBatch = n
	return func() { pruneBatch = old }
}

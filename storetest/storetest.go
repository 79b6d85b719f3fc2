// Package storetest is the one conformance suite every store passes: a
// store that passes Run passes everything the vault and the orchestrator
// ask of it. A store's own tests call Run with a function that makes a
// fresh harness:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Harness { return newHarness(t) })
//	}
//
// The suite drives vault.Service on top of the store, as the API does, and
// the Store and Tx methods directly where the service cannot reach a
// behaviour (a conflict the service would have refused earlier, a swapped
// sealed row, a write inside View). Where no store method reaches at all
// (deleting a user, counting kept rows, tampering with the audit trail) it
// uses the harness's SQL beside the store.
package storetest

import (
	"context"
	"testing"

	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

// Store is every method a store implements: the vault's and the
// orchestrator's.
type Store interface {
	vault.Store
	orchestrator.Store
}

// Harness is one fresh, migrated, empty store under test, with SQL on its
// database beside it, as an operator's psql or sqlite3 shell would be.
// Every field is required: each store here has them all, and a suite that
// needs a missing one fails rather than skip.
type Harness struct {
	Store Store
	// Exec runs one SQL statement on the store's database on a connection
	// of its own, with every right (the owner's or a superuser's), and
	// returns how many rows it changed. Its placeholders are ?, and args
	// are strings, integers or []byte. Foreign keys are enforced, so a
	// DELETE runs the schema's cascades.
	Exec func(ctx context.Context, query string, args ...any) (int64, error)
	// QueryInt runs a query of one row of one integer column as Exec does.
	QueryInt func(ctx context.Context, query string, args ...any) (int64, error)
	// Unguard is the SQL that takes away the append-only triggers of
	// audit_events, as a tamperer with the rights to would.
	Unguard []string
	// FailAppends makes every insert into audit_events fail;
	// RestoreAppends undoes it.
	FailAppends, RestoreAppends []string
	// SetPruneBatch sets how many audit events PruneAudit deletes per
	// transaction, for every store of this kind in the process, and
	// returns the function that restores it.
	SetPruneBatch func(n int64) (restore func())
}

// check fails t unless every field of h is set.
func (h Harness) check(t *testing.T) {
	t.Helper()
	if h.Store == nil || h.Exec == nil || h.QueryInt == nil || h.SetPruneBatch == nil ||
		len(h.Unguard) == 0 || len(h.FailAppends) == 0 || len(h.RestoreAppends) == 0 {
		t.Fatalf("newHarness returned a harness without all of Store, Exec, QueryInt, Unguard, FailAppends, RestoreAppends, SetPruneBatch")
	}
}

// Run runs every suite: the vault's (users, secrets, profiles, key
// checks), tasks, history, key rotation, the audit trail and import. A
// suite added later is added here, so a store that passes Run passes it.
// newHarness must return a fresh, migrated, empty store each time it is
// called, and close it with t.Cleanup. Subtests run in parallel, each on
// its own store.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	for _, s := range []struct {
		name  string
		tests []test
	}{
		{"Vault", vaultTests},
		{"Tasks", taskTests},
		{"History", historyTests},
		{"Rotation", rotationTests},
		{"Audit", auditTests},
		{"Import", importTests},
		{"Tokens", tokenTests},
		{"Sessions", sessionTests},
		{"SecretRequests", secretRequestTests},
		{"TaskAsks", taskAskTests},
		{"OAuth2", oauth2Tests},
		{"OAuth2Flows", oauth2FlowTests},
	} {
		t.Run(s.name, func(t *testing.T) { run(t, newHarness, s.tests) })
	}
}

// test is one test of a suite: fn on a fresh fixture of a service with
// opts, or, if tests is set, those as subtests, each on a store of its own.
type test struct {
	name  string
	opts  vault.Options
	fn    func(t *testing.T, f *fixture)
	tests []test
	// serial runs the test alone rather than in parallel with the
	// others: it changes a setting of every store of its kind.
	serial bool
}

func run(t *testing.T, newHarness func(t *testing.T) Harness, tests []test) {
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.serial {
				t.Parallel()
			}
			if tc.tests != nil {
				run(t, newHarness, tc.tests)
				return
			}
			tc.fn(t, newFixture(t, newHarness, tc.opts))
		})
	}
}

// vaultTests are the suite of vault.Store: users and tokens, secrets,
// profiles, key checks and the store's own guarantees.
var vaultTests = []test{
	{name: "Users", fn: testUsers},
	{name: "SecretRoundTrip", fn: testSecretRoundTrip},
	{name: "ProfileRoundTrip", fn: testProfileRoundTrip},
	{name: "SecretRules", fn: testSecretRules},
	{name: "SecretPatchRules", fn: testSecretPatchRules},
	{name: "ProfileRules", fn: testProfileRules},
	{name: "RequiredSecrets", fn: testRequiredSecrets},
	{name: "OnSecretChange", fn: testOnSecretChange},
	{name: "OneAllSecretPerName", fn: testOneAllSecretPerName},
	{name: "AgentsSecretsOfOneName", fn: testAgentsSecretsOfOneName},
	{name: "OverrideRule", fn: testOverrideRule},
	{name: "OtherUsersAreInvisible", fn: testOtherUsersAreInvisible},
	{name: "TxIsScopedToItsUser", fn: testTxIsScopedToItsUser},
	{name: "DeletingAProfileNeverWidensScope", fn: testDeletingAProfileNeverWidensScope},
	{name: "Quota", opts: vault.Options{MaxSecrets: 3}, fn: testQuota},
	{name: "RacingWrites", tests: racingWritesTests},
	{name: "RenameAndValueChange", fn: testRenameAndValueChange},
	{name: "SwappedRowDoesNotOpen", tests: swappedRowTests},
	{name: "Pagination", fn: testPagination},
	{name: "QueryFilter", fn: testQueryFilter},
	{name: "KeyChecks", fn: testKeyChecks},
	{name: "FailedWritesChangeNothing", fn: testFailedWritesChangeNothing},
	{name: "StoreConflicts", fn: testStoreConflicts},
	{name: "SecretsForProfile", fn: testSecretsForProfile},
	{name: "ViewIsReadOnly", fn: testViewIsReadOnly},
}

// Package vault is envvault's domain: users' secrets and profiles, the
// rules on them, and the Service that applies those rules on top of a
// Store. It knows nothing of HTTP, SQL drivers or keys: the API and the
// dashboard call the Service, the stores (packages sqlite and postgres)
// implement Store, and package seal does the crypto.
//
// Each rule lives in one place, in the file named for its feature:
//
//   - secret.go: a secret's fields and rules, creating, changing and
//     deleting one, and the grant check (checkGrants: every profile a
//     secret grants is the user's, and no profile gets one name twice
//     from one scope).
//   - profile.go, user.go, token.go: profiles, users and API tokens.
//   - release.go: the one way a value leaves the vault
//     (GetDecryptedForProfile and its variants) and the override rule
//     (an agents secret over the all one of the same name).
//   - sealing.go: what each sealed value and data key is bound to.
//   - history.go, import.go, rotate.go: kept versions and rollback, dotenv
//     import, master key rotation.
//   - audit_event.go, audit_chain.go: what each change records, and the
//     tamper-evident chain the records form.
//   - names.go, list.go, error.go, id.go: the name policy, pages of lists,
//     the one error type and its codes, ids.
//
// A write runs in Store.Update, a transaction of one user; it first takes
// the lock its rule needs (Tx.LockUser for what the quota counts, Tx.Lock
// for one secret's or profile's read-modify-write; writes that share no
// lock run at once), checks its rules against what it reads there, and
// appends its audit event as its last step, so a change and its record
// commit together or not at all.
package vault

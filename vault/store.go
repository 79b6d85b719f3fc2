package vault

import "context"

// Store keeps users, tokens, profiles and secrets. Its adapters are named
// after what they wrap (postgres, sqlite); all pass the conformance suite
// in package storetest. A store never sees a plaintext value or a key: it
// keeps sealed bytes.
//
// Every error a store returns is either an *Error with one of the codes the
// method documents, or an unexpected error wrapped with context.
type Store interface {
	// Update runs fn in a read-write transaction scoped to userID, and
	// commits if fn returns nil. Updates run at once, of one user too: fn
	// takes the locks its rule needs (Tx.LockUser, Tx.Lock) before it
	// reads what the rule checks, and relies on them until the commit. The
	// audit events fn appends are in the chain when Update returns (on
	// PostgreSQL linked just after the commit, see AuditStore.LinkAudit).
	Update(ctx context.Context, userID string, fn func(Tx) error) error
	// View runs fn in a read-only transaction scoped to userID.
	View(ctx context.Context, userID string, fn func(Tx) error) error

	// CreateUser inserts a user and its first token, and appends events to
	// the audit trail, in one transaction.
	CreateUser(ctx context.Context, u *User, t *Token, events ...*AuditEvent) error
	// CreateToken adds a token for an existing user, and appends events to
	// the audit trail, in one transaction. Returns ENOTFOUND if the user
	// does not exist.
	CreateToken(ctx context.Context, t *Token, events ...*AuditEvent) error
	// Token returns a token by id. Returns ENOTFOUND if it does not exist.
	Token(ctx context.Context, id string) (*Token, error)

	// SecretsForProfile returns, in one query, the sealed secrets of userID
	// that the profile may receive: every ScopeAll secret and the
	// ScopeAgents secrets that grant it. Only what a release needs must be
	// set: ID, UserID, Name, Scope, Version, SealedValue, SealedKey,
	// MasterKeyID, and for a ScopeAgents secret ProfileIDs holding at
	// least the profile. Returns ENOTFOUND if the profile does not exist
	// or is not userID's.
	SecretsForProfile(ctx context.Context, userID, profileID string) ([]*Secret, error)

	// KeyChecks returns the stored key check values.
	KeyChecks(ctx context.Context) ([]KeyCheck, error)
	// PutKeyCheck stores a key check value, replacing one of the same key id.
	PutKeyCheck(ctx context.Context, c KeyCheck) error
	// MasterKeyCounts returns how many data keys each master key id seals:
	// those of secrets, of their kept versions and of oauth2 tokens.
	MasterKeyCounts(ctx context.Context) (map[string]int, error)
	// DeleteKeyCheck deletes the key check value of a master key id; there
	// being none is not an error.
	DeleteKeyCheck(ctx context.Context, keyID string) error

	// SealedKeysOfAllUsers returns, from the secrets of every user, up to
	// limit data keys not sealed under master key notKeyID, ordered by
	// secret id and after afterID ("" for the first). It is for the
	// operator's key rotation (Service.RotateKeys), not scoped to a user.
	SealedKeysOfAllUsers(ctx context.Context, notKeyID, afterID string, limit int) ([]SealedKey, error)
	// SwapSealedKeysOfAllUsers sets, in one short transaction, each swapped
	// secret's data key to New, sealed under master key keyID, where it is
	// still Old and no write of the secret is under way (a write holds the
	// secret's lock, Tx.Lock, and may write back the key it read), and
	// returns how many it set: a secret written or deleted since its key
	// was read keeps what was written. It is for the operator's key
	// rotation, not scoped to a user.
	SwapSealedKeysOfAllUsers(ctx context.Context, keyID string, swaps []KeySwap) (int, error)
	// SealedVersionKeysOfAllUsers is SealedKeysOfAllUsers for the data
	// keys of kept versions (SealedKey.Version not 0), ordered by secret id
	// and version, after (afterID, afterVersion).
	SealedVersionKeysOfAllUsers(ctx context.Context, notKeyID, afterID string, afterVersion, limit int) ([]SealedKey, error)
	// SwapSealedVersionKeysOfAllUsers is SwapSealedKeysOfAllUsers for the
	// data keys of kept versions, named by KeySwap.SecretID and Version.
	SwapSealedVersionKeysOfAllUsers(ctx context.Context, keyID string, swaps []KeySwap) (int, error)
	// AwaitSecretWrites returns once every write that held the lock
	// (Tx.Lock) of one of keys' secrets when it was called has ended,
	// holding no lock itself meanwhile: key rotation awaits the writes
	// under which a swap was left before it reads their secrets again.
	AwaitSecretWrites(ctx context.Context, keys []SealedKey) error

	// The audit trail outside user transactions (audit.go).
	AuditStore
	// Tokens outside a user's transaction (token.go).
	TokenStore
	// Dashboard sessions (session.go).
	SessionStore
	// Secret requests across users (secret_request.go).
	SecretRequestStore
	// OAuth2 connections across users, for key rotation (oauth2.go).
	OAuth2Store

	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the store's connections.
	Close() error
}

// Tx is a transaction scoped to one user: no method reads or writes
// another user's rows, and another user's id answers ENOTFOUND.
//
// A store may send a write with the next statement rather than at its
// call (PostgreSQL's pipeline does for the locks, KeepVersion,
// DeleteVersions, UpdateSecret without grants and the audit event). The error such a write documents is
// then returned by the next call of the transaction that reaches the
// database, or by the commit as Update's error; either way the
// transaction does not commit.
type Tx interface {
	// The audit trail inside the user's transaction (audit.go).
	AuditTx
	// The user's API tokens (token.go).
	TokenTx
	// The user's secret requests (secret_request.go).
	SecretRequestTx
	// The user's oauth2 connections (oauth2.go).
	OAuth2Tx
	// The user's started oauth2 flows (oauth2_flow.go).
	OAuth2FlowTx

	// LockUser takes the user's lock, held until the transaction ends: the
	// writes whose rule counts the user's secrets (a create, an import)
	// take it, so that they run one at a time. Writes that do not take it
	// never wait for it. Returns ENOTFOUND if the user does not exist.
	LockUser(ctx context.Context) error
	// Lock takes the lock of one of the user's objects (a secret or a
	// profile, by id), held until the transaction ends: a write that reads
	// an object and writes it back takes it first, so that two writes of
	// one object run one at a time and writes of different objects do
	// not wait for each other. It does not check that the object exists.
	Lock(ctx context.Context, id string) error

	// Secret returns a secret by id. Returns ENOTFOUND if it does not exist.
	Secret(ctx context.Context, id string) (*Secret, error)
	// Secrets returns up to f.Limit secrets ordered by name then id, after
	// f.After, whose names contain f.Query (case-insensitively).
	Secrets(ctx context.Context, f ListFilter) ([]*Secret, error)
	// SecretsNamed returns every secret of the given name.
	SecretsNamed(ctx context.Context, name string) ([]*Secret, error)
	// CountSecrets returns how many secrets the user holds.
	CountSecrets(ctx context.Context) (int, error)
	// CreateSecret inserts a secret with its grants. Returns ECONFLICT if a
	// uniqueness rule of the database is broken.
	CreateSecret(ctx context.Context, s *Secret) error
	// UpdateSecret replaces a secret's row and, if grants is true (its
	// name, scope or profiles changed), its grants. Returns ENOTFOUND if it
	// does not exist, ECONFLICT if a uniqueness rule is broken.
	UpdateSecret(ctx context.Context, s *Secret, grants bool) error
	// DeleteSecret deletes a secret. Returns ENOTFOUND if it does not exist.
	DeleteSecret(ctx context.Context, id string) error

	// SecretVersions returns the kept earlier versions of a secret's value,
	// newest first, without their sealed bytes: none, and no error, if the
	// secret does not exist.
	SecretVersions(ctx context.Context, secretID string) ([]SecretVersion, error)
	// SecretAndVersions returns a secret, as Secret does, and its kept
	// versions, as SecretVersions does, in one read where the store can:
	// what a change of its value reads. Returns ENOTFOUND if the secret
	// does not exist.
	SecretAndVersions(ctx context.Context, id string) (*Secret, []SecretVersion, error)
	// KeptVersion returns one kept version of a secret's value, sealed.
	// Returns ENOTFOUND if the secret does not exist or keeps no such
	// version.
	KeptVersion(ctx context.Context, secretID string, version int) (*KeptVersion, error)
	// KeepVersion stores an earlier value of a secret. Returns ENOTFOUND if
	// the secret does not exist, ECONFLICT if it already keeps that version.
	KeepVersion(ctx context.Context, v *KeptVersion) error
	// DeleteVersions deletes the listed kept versions of a secret, and
	// ignores a version it does not keep.
	DeleteVersions(ctx context.Context, secretID string, versions []int) error

	// Profile returns a profile by id. Returns ENOTFOUND if it does not exist.
	Profile(ctx context.Context, id string) (*Profile, error)
	// Profiles returns up to f.Limit profiles ordered by name then id, after
	// f.After, whose names contain f.Query (case-insensitively).
	Profiles(ctx context.Context, f ListFilter) ([]*Profile, error)
	// ExistingProfileIDs returns those of ids that are the user's profiles.
	ExistingProfileIDs(ctx context.Context, ids []string) ([]string, error)
	// CreateProfile inserts a profile. Returns ECONFLICT if the user has a
	// profile of the same name.
	CreateProfile(ctx context.Context, p *Profile) error
	// UpdateProfile replaces a profile. Returns ENOTFOUND if it does not
	// exist, ECONFLICT if the user has another profile of the same name.
	UpdateProfile(ctx context.Context, p *Profile) error
	// DeleteProfile deletes a profile and the grants naming it; a secret
	// whose last grant goes grants nobody. Returns ENOTFOUND if it does not
	// exist.
	DeleteProfile(ctx context.Context, id string) error
}

// ListFilter selects a page of a list.
type ListFilter struct {
	Query string  // substring of the name, case-insensitive; "" for all
	After *Cursor // nil for the first page
	Limit int
}

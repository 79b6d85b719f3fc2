package vault

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"
)

// TokenScope is what an API token may do. The API decides which scope
// each route needs (api/scopes.go); the dashboard needs TokenFull.
type TokenScope string

// Token scopes.
const (
	// TokenFull may do everything its user may.
	TokenFull TokenScope = "full"
	// TokenRead may read metadata only: every GET of the API, no write.
	TokenRead TokenScope = "read"
	// TokenTasks may start, read and stop tasks and read profiles: no
	// secret and no profile write, no secret read.
	TokenTasks TokenScope = "tasks"
)

// TokenScopes lists every scope, in the order the documentation gives.
var TokenScopes = []TokenScope{TokenFull, TokenRead, TokenTasks}

// Limits and names of tokens.
const (
	// MaxTokenNameLen bounds a token's name, in bytes.
	MaxTokenNameLen = 100
	// MaxTokensPerUser is how many tokens one user may hold at once.
	MaxTokensPerUser = 50
	// TokenTouchInterval is how often, at most, a token's last_used_at is
	// written: a use within it of the last written one writes nothing.
	TokenTouchInterval = time.Minute
	// InitialTokenName names the token a user is created with (and, by
	// the migration, every token made before tokens had names).
	InitialTokenName = "initial"
)

// Token is an API token as stored: only the SHA-256 of its secret part.
// The whole token, "tok_<id>.<secret>", is shown once, when it is made.
type Token struct {
	ID         string
	UserID     string
	Name       string
	Scope      TokenScope
	Hash       []byte
	CreatedAt  time.Time
	LastUsedAt time.Time // zero if never used; written at most once per TokenTouchInterval
	ExpiresAt  time.Time // zero if it never expires
}

// expired reports whether the token can no longer be used at now.
func (t *Token) expired(now time.Time) bool { return expiredAt(t.ExpiresAt, now) }

func expiredAt(expires, now time.Time) bool { return !expires.IsZero() && !now.Before(expires) }

// TokenSpec is what a user asks of a new token.
type TokenSpec struct {
	Name      string
	Scope     TokenScope
	ExpiresAt time.Time // zero for never; else in the future
}

// Credential is what a token proved: whose it is, which it is, and what
// it may do.
type Credential struct {
	UserID  string
	TokenID string
	Scope   TokenScope
	Expires time.Time // the token's expiry; zero for never
}

// TokenTx is what a user's transaction does with the user's tokens.
type TokenTx interface {
	// Tokens returns every token of the user, oldest first (by creation
	// time, then id).
	Tokens(ctx context.Context) ([]*Token, error)
	// InsertToken inserts a token of the user. Returns ECONFLICT if its
	// id is taken.
	InsertToken(ctx context.Context, t *Token) error
	// DeleteToken deletes a token of the user, and the dashboard sessions
	// opened with it, and tells every process sharing the store (see
	// TokenFeed). Returns ENOTFOUND if the user has no such token.
	DeleteToken(ctx context.Context, id string) error
}

// TokenStore is what the Service needs of a store for tokens outside a
// user's transaction.
type TokenStore interface {
	// TouchToken sets the token's last use to at, if it is earlier; it
	// writes nothing, and returns nil, if the token is gone.
	TouchToken(ctx context.Context, userID, id string, at time.Time) error
}

// TokenFeed is implemented by a store that several processes may share:
// it tells each of them about the tokens any of them deletes, so that a
// revoked token leaves every token cache at once (see DefaultTokenCacheTTL).
type TokenFeed interface {
	// WatchTokens makes the store call w, from a goroutine of its own,
	// until the store is closed: TokenFeedUp when it starts listening
	// (and after each reconnection), TokenRevoked for each token deleted
	// while it listens, TokenFeedDown when it stops listening and may miss
	// some.
	WatchTokens(w TokenWatcher)
}

// TokenWatcher hears a TokenFeed.
type TokenWatcher interface {
	TokenFeedUp()
	TokenFeedDown()
	TokenRevoked(id string)
}

func newToken(userID string, spec TokenSpec, now time.Time) (*Token, string) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		panic(fmt.Sprintf("vault: read random token: %v", err))
	}
	secret := base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(secret))
	t := &Token{
		ID: NewID(PrefixToken), UserID: userID, Name: spec.Name, Scope: spec.Scope,
		Hash: sum[:], CreatedAt: now, ExpiresAt: spec.ExpiresAt,
	}
	return t, t.ID + "." + secret
}

// splitToken parses "tok_<id>.<secret>".
func splitToken(token string) (id, secret string, ok bool) {
	id, secret, ok = strings.Cut(token, ".")
	if !ok || !validID(PrefixToken, id) || secret == "" {
		return "", "", false
	}
	return id, secret, true
}

// matches reports, in constant time, whether secret is the token's.
func (t *Token) matches(secret string) bool {
	sum := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(sum[:], t.Hash) == 1
}

// tokenDetails describes a token in an audit event: never its secret.
func tokenDetails(t *Token) map[string]any {
	d := map[string]any{"name": t.Name, "scope": string(t.Scope)}
	if !t.ExpiresAt.IsZero() {
		d["expires_at"] = t.ExpiresAt.UTC().Format(time.RFC3339Nano)
	}
	return d
}

// checkSpec checks a new token's name, scope and expiry, and normalizes
// them. Returns EINVALID naming the field.
func (s *Service) checkSpec(spec *TokenSpec) error {
	spec.Name = strings.TrimSpace(spec.Name)
	if spec.Name == "" || len(spec.Name) > MaxTokenNameLen || !printable(spec.Name) {
		return Invalid("name", "is required: at most %d printable characters", MaxTokenNameLen)
	}
	if !slices.Contains(TokenScopes, spec.Scope) {
		return Invalid("scope", "must be one of full, read, tasks")
	}
	if !spec.ExpiresAt.IsZero() {
		spec.ExpiresAt = spec.ExpiresAt.UTC().Truncate(time.Microsecond)
		if !spec.ExpiresAt.After(s.now()) {
			return Invalid("expires_at", "must be in the future")
		}
	}
	return nil
}

// IssueToken makes a new API token for a user and returns it with the
// whole token, which is shown only this once. Returns EINVALID for a bad
// name, scope or expiry, ECONFLICT if the user holds MaxTokensPerUser
// tokens already, ENOTFOUND if the user does not exist.
func (s *Service) IssueToken(ctx context.Context, userID string, spec TokenSpec) (*Token, string, error) {
	if err := s.checkSpec(&spec); err != nil {
		return nil, "", err
	}
	t, token := newToken(userID, spec, s.timestamp())
	err := s.store.Update(ctx, userID, func(tx Tx) error {
		// The limit counts the user's tokens: creates take turns.
		list, err := lockedTokens(ctx, tx)
		if err != nil {
			return err
		}
		if len(list) >= MaxTokensPerUser {
			return Errorf(ECONFLICT, "token limit reached: a user holds at most %d tokens; revoke one first", MaxTokensPerUser)
		}
		if err := tx.InsertToken(ctx, t); err != nil {
			return err
		}
		return s.audit(ctx, tx, userID, ActionTokenCreate, TargetToken, t.ID, tokenDetails(t))
	})
	if err != nil {
		return nil, "", fmt.Errorf("create token: %w", err)
	}
	return t, token, nil
}

// lockedTokens takes the user's lock (Tx.LockUser), which the writes whose
// rule counts the user's tokens take first, and returns the tokens.
func lockedTokens(ctx context.Context, tx Tx) ([]*Token, error) {
	if err := tx.LockUser(ctx); err != nil {
		return nil, err
	}
	list, err := tx.Tokens(ctx)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return list, nil
}

// CreateToken makes a new full API token named "cli" for an existing
// user, as the operator's command line does. Returns ENOTFOUND if the
// user does not exist, ECONFLICT at MaxTokensPerUser.
func (s *Service) CreateToken(ctx context.Context, userID string) (string, error) {
	_, token, err := s.IssueToken(ctx, userID, TokenSpec{Name: "cli", Scope: TokenFull})
	return token, err
}

// Tokens lists the user's tokens, oldest first: at most MaxTokensPerUser.
func (s *Service) Tokens(ctx context.Context, userID string) ([]*Token, error) {
	list, err := view(ctx, s.store, userID, func(tx Tx) ([]*Token, error) { return tx.Tokens(ctx) })
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return list, nil
}

// ConfirmLastFullToken is the confirmation RevokeToken needs to revoke a
// user's last usable full token.
const ConfirmLastFullToken = "last-full-token"

// RevokeToken deletes one of the user's tokens, which every process
// sharing the store then refuses at once, with the dashboard sessions
// opened with it. Revoking the user's last unexpired full token (which
// leaves no token that can make another) needs confirm to be
// ConfirmLastFullToken. Returns ENOTFOUND if the user has no such token,
// ECONFLICT (field confirm) if confirmation was needed and not given.
func (s *Service) RevokeToken(ctx context.Context, userID, id, confirm string) error {
	if !validID(PrefixToken, id) {
		return Errorf(ENOTFOUND, "token not found")
	}
	now := s.now()
	err := s.store.Update(ctx, userID, func(tx Tx) error {
		// Two revocations of a user's last two full tokens take turns, so
		// that both cannot pass the check below.
		list, err := lockedTokens(ctx, tx)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(list, func(t *Token) bool { return t.ID == id })
		if i < 0 {
			return Errorf(ENOTFOUND, "token not found")
		}
		target := list[i]
		if target.Scope == TokenFull && !target.expired(now) && confirm != ConfirmLastFullToken &&
			!slices.ContainsFunc(list, func(t *Token) bool { return t.ID != id && t.Scope == TokenFull && !t.expired(now) }) {
			return &Error{Code: ECONFLICT, Field: "confirm", Message: "confirm: this is your last full token: without it no " +
				"token can make another; to revoke it anyway, confirm with " + ConfirmLastFullToken}
		}
		if err := tx.DeleteToken(ctx, id); err != nil {
			return err
		}
		return s.audit(ctx, tx, userID, ActionTokenRevoke, TargetToken, id, tokenDetails(target))
	})
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	s.ForgetToken(id)
	return nil
}

// Authenticate returns the user id and token id a token belongs to. It
// is AuthenticateToken without the scope.
func (s *Service) Authenticate(ctx context.Context, token string) (userID, tokenID string, err error) {
	c, err := s.AuthenticateToken(ctx, token)
	return c.UserID, c.TokenID, err
}

// AuthenticateToken returns what a token proves: its user, its id and
// its scope. Returns EUNAUTHORIZED (an *AuthError), with one message for
// every cause (a malformed, unknown, wrong, revoked or expired token),
// otherwise, or ELIMIT (a *LimitError) while the client address or the
// token id has failed too often (abuse.go). A token it confirmed in the
// last TTL is checked against its cached hash without the store (see
// DefaultTokenCacheTTL). It writes the token's last use at most once per
// TokenTouchInterval.
func (s *Service) AuthenticateToken(ctx context.Context, token string) (Credential, error) {
	id, secret, ok := splitToken(token)
	if !ok {
		if err := s.guard.check(ctx, malformedTarget); err != nil {
			return Credential{}, err
		}
		return Credential{}, s.refused(ctx, malformedTarget, ReasonMalformed, "malformed token")
	}
	sum := sha256.Sum256([]byte(secret))
	now := s.now()
	if e, ok := s.tokens.get(id, sum); ok {
		c := Credential{UserID: e.userID, TokenID: id, Scope: e.scope, Expires: e.tokenExpires}
		if expiredAt(e.tokenExpires, now) {
			return Credential{}, s.refused(ctx, id, ReasonExpired, "expired")
		}
		if s.tokens.claimTouch(id, now) {
			if err := s.store.TouchToken(ctx, c.UserID, id, now.UTC().Truncate(time.Microsecond)); err != nil {
				return Credential{}, fmt.Errorf("record the use of token %s: %w", id, err)
			}
		}
		return c, nil
	}
	// A token this process confirmed before is not the flood the
	// limiters are for (abuse.go): its holder is never limited.
	if !s.tokens.known(id, sum) {
		if err := s.guard.check(ctx, id); err != nil {
			return Credential{}, err
		}
	}
	gen := s.tokens.generation()
	t, err := s.store.Token(ctx, id)
	if ErrorCode(err) == ENOTFOUND {
		return Credential{}, s.refused(ctx, id, ReasonUnknown, "unknown token")
	} else if err != nil {
		return Credential{}, fmt.Errorf("read token %s: %w", id, err)
	}
	if !t.matches(secret) {
		return Credential{}, s.refused(ctx, id, ReasonMismatch, "wrong secret")
	}
	if t.expired(now) {
		return Credential{}, s.refused(ctx, id, ReasonExpired, "expired")
	}
	if now.Sub(t.LastUsedAt) >= TokenTouchInterval {
		t.LastUsedAt = now.UTC().Truncate(time.Microsecond)
		if err := s.store.TouchToken(ctx, t.UserID, t.ID, t.LastUsedAt); err != nil {
			return Credential{}, fmt.Errorf("record the use of token %s: %w", id, err)
		}
	}
	s.tokens.put(t, gen)
	return Credential{UserID: t.UserID, TokenID: t.ID, Scope: t.Scope, Expires: t.ExpiresAt}, nil
}

var errTokenGone = Errorf(EUNAUTHORIZED, "the API token has been deleted or belongs to another user")

// CheckToken reports whether token tokenID still exists, is unexpired and
// belongs to user userID, as a credential made from it earlier must on
// every request. Returns EUNAUTHORIZED if not, and another error if the
// store fails.
func (s *Service) CheckToken(ctx context.Context, userID, tokenID string) error {
	t, err := s.store.Token(ctx, tokenID)
	if ErrorCode(err) == ENOTFOUND {
		return errTokenGone
	} else if err != nil {
		return fmt.Errorf("read token %s: %w", tokenID, err)
	}
	if t.UserID != userID || t.expired(s.now()) {
		return errTokenGone
	}
	return nil
}

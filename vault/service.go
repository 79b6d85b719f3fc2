package vault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/envvault/envvault/seal"
)

// DefaultMaxSecrets is how many secrets a user may hold unless configured.
const DefaultMaxSecrets = 1000

// Service holds the rules of the vault on top of a Store. It is the only
// code above the crypto layer (package seal) that sees a plaintext value,
// and it hands values out only through the release functions of
// release.go (GetDecryptedForProfile and its variants); no other method
// returns one.
type Service struct {
	store      Store
	keys       keyring
	maxSecrets int
	names      NamePolicy
	now        func() time.Time

	// keepVersions is how many earlier values of a secret are kept
	// (history.go).
	keepVersions int

	// tokens caches the tokens the store confirmed (token.go); nil if off.
	tokens *tokenCache

	// sandbox is the operator's policy for task containers (sandbox.go).
	sandbox SandboxPolicy

	// guard limits and counts failed authentication (abuse.go).
	guard *authGuard

	// oauth2 refreshes oauth2 secrets' tokens (oauth2_refresh.go).
	oauth2 *oauth2Refresher
}

// Options tune a Service; zero values take the defaults.
type Options struct {
	MaxSecrets int              // per user; DefaultMaxSecrets if 0
	Names      NamePolicy       // locked and allowed names
	Now        func() time.Time // time.Now if nil

	// KeepVersions is how many earlier values of each secret are kept;
	// DefaultKeepVersions if 0.
	KeepVersions int

	// TokenCacheTTL is how long Authenticate trusts a token the store
	// confirmed without asking it again: DefaultTokenCacheTTL if 0, no
	// cache if negative (token.go).
	TokenCacheTTL time.Duration

	// Sandbox is the operator's policy for task containers, which every
	// profile's sandbox request is checked against; zero fields take the
	// defaults. Check it with SandboxPolicy.Check first.
	Sandbox SandboxPolicy

	// AuthLimits bound failed authentication per client address and per
	// token id; zero fields take the defaults (abuse.go).
	AuthLimits AuthLimits

	// OAuth2RefreshMargin is how long an oauth2 secret's access token must
	// stay valid for a task to receive it without a refresh:
	// DefaultOAuth2RefreshMargin if 0 (check with
	// ValidateOAuth2RefreshMargin). OAuth2RefreshTimeout bounds one call to
	// a token endpoint: DefaultOAuth2RefreshTimeout if 0.
	// OAuth2HTTPClient makes those calls; nil: one that follows no
	// redirect and connects to public addresses only, and to the networks
	// of OAuth2AllowNetworks (internal/egress: a user's token URL must not
	// reach the host's loopback, the operator's networks or a metadata
	// service).
	OAuth2RefreshMargin  time.Duration
	OAuth2RefreshTimeout time.Duration
	OAuth2HTTPClient     *http.Client
	OAuth2AllowNetworks  []netip.Prefix
}

// NewService returns a service over store, sealing under keys.
func NewService(store Store, keys *seal.Keyring, opts Options) *Service {
	s := &Service{store: store, keys: keyring{keys}, maxSecrets: opts.MaxSecrets, names: opts.Names, now: opts.Now}
	if s.maxSecrets <= 0 {
		s.maxSecrets = DefaultMaxSecrets
	}
	if s.keepVersions = opts.KeepVersions; s.keepVersions <= 0 {
		s.keepVersions = DefaultKeepVersions
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.tokens = newTokenCache(opts.TokenCacheTTL, TokenCacheSize, s.now)
	s.watchTokens()
	s.guard = newAuthGuard(opts.AuthLimits, s)
	s.sandbox = opts.Sandbox.withDefaults()
	s.oauth2 = newOAuth2Refresher(opts)
	return s
}

func (s *Service) timestamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// CheckKeys proves at start-up that the keyring opens what the store holds:
// the stored key check value must open under a configured key, and every
// data key must be sealed under a configured key. A fresh store gets a key
// check value for the current key.
func (s *Service) CheckKeys(ctx context.Context) error {
	checks, err := s.store.KeyChecks(ctx)
	if err != nil {
		return fmt.Errorf("read key checks: %w", err)
	}
	var opened, haveCurrent bool
	var stored []string
	for _, c := range checks {
		stored = append(stored, c.KeyID)
		if !s.keys.Has(c.KeyID) {
			continue
		}
		if err := s.keys.openKeyCheck(c); err != nil {
			return fmt.Errorf("key check for master key %s does not open: %w", c.KeyID, err)
		}
		opened = true
		haveCurrent = haveCurrent || c.KeyID == s.keys.CurrentID()
	}
	counts, err := s.store.MasterKeyCounts(ctx)
	if err != nil {
		return fmt.Errorf("count data keys: %w", err)
	}
	if len(checks) > 0 && !opened {
		msg := fmt.Sprintf("ENCRYPTION_KEY is not the key this database was sealed with: the configured key has id %s, the database was sealed with key id %s",
			s.keys.CurrentID(), strings.Join(stored, ", "))
		if len(counts) > 0 {
			// Which keys the rows need, and how many need each.
			msg += "; its data keys: " + describeCounts(counts)
		}
		return errors.New(msg)
	}
	ids := make([]string, 0, len(counts))
	for id := range counts {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if !s.keys.Has(id) {
			return fmt.Errorf("%d data keys are sealed under master key %s, which is not configured: add it to ENCRYPTION_KEY_PREVIOUS", counts[id], id)
		}
	}
	if !haveCurrent {
		if err := s.store.PutKeyCheck(ctx, s.keys.newKeyCheck()); err != nil {
			return fmt.Errorf("store key check: %w", err)
		}
	}
	return nil
}

// Ping checks that the store answers.
func (s *Service) Ping(ctx context.Context) error { return s.store.Ping(ctx) }

package vault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/envvault/envvault/internal/egress"
)

// The refresh of an oauth2 secret's access token at release (release.go
// calls releaseOAuth2 for every oauth2 secret a task receives).
//
// The one-refresh rule: at most one refresh per secret at a time, across
// the processes of one store. A release that finds the token valid for
// less than the margin takes the secret's refresh lock (in the process: a
// lock per secret; across processes: the store's RefreshLocker, a
// PostgreSQL session advisory lock on a connection of its own), reads the
// connection again, and uses what it finds if the row changed while it
// waited (another release refreshed it, or failed to: then it fails with
// that reason, without asking the provider again). Only otherwise does it
// call the token endpoint, then write the new tokens in a short
// transaction, then release the lock. No transaction is open during the
// call, which is bounded by Options.OAuth2RefreshTimeout.

// Refresh limits.
const (
	// DefaultOAuth2RefreshMargin is how long an access token must stay
	// valid for a task to receive it without a refresh.
	DefaultOAuth2RefreshMargin = 10 * time.Minute
	MinOAuth2RefreshMargin     = time.Second
	MaxOAuth2RefreshMargin     = 12 * time.Hour
	// DefaultOAuth2RefreshTimeout bounds one call to a token endpoint
	// (connect, request, answer).
	DefaultOAuth2RefreshTimeout = 30 * time.Second
	// maxRefreshLocks bounds the store refresh locks a process holds at
	// once (each holds a database connection while it waits and calls).
	maxRefreshLocks = 4
	maxReasonLen    = 300
)

// ValidateOAuth2RefreshMargin checks a refresh margin: between
// MinOAuth2RefreshMargin and MaxOAuth2RefreshMargin. field names it.
func ValidateOAuth2RefreshMargin(field string, d time.Duration) error {
	if d < MinOAuth2RefreshMargin || d > MaxOAuth2RefreshMargin {
		return Invalid(field, "must be between %s and %s", MinOAuth2RefreshMargin, MaxOAuth2RefreshMargin)
	}
	return nil
}

// ErrOAuth2 is wrapped by a release that could not give an oauth2 secret's
// access token; the error names the secret and says why.
var ErrOAuth2 = errors.New("no valid oauth2 access token")

// oauth2Refresher holds the refresh settings and the process's refresh
// locks.
type oauth2Refresher struct {
	margin, timeout time.Duration
	client          *http.Client
	stores          chan struct{} // maxRefreshLocks slots for store locks

	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	ch    chan struct{}
	users int
}

func newOAuth2Refresher(opts Options) *oauth2Refresher {
	r := &oauth2Refresher{margin: opts.OAuth2RefreshMargin, timeout: opts.OAuth2RefreshTimeout,
		client: opts.OAuth2HTTPClient, stores: make(chan struct{}, maxRefreshLocks), locks: map[string]*keyLock{}}
	if r.margin <= 0 {
		r.margin = DefaultOAuth2RefreshMargin
	}
	if r.timeout <= 0 {
		r.timeout = DefaultOAuth2RefreshTimeout
	}
	if r.client == nil {
		// The endpoints are the users' to choose: none may lead envvault
		// to the host's loopback, the operator's networks or a metadata
		// service unless the operator allows it (internal/egress). A token
		// endpoint that redirects is refused: the client's credentials go
		// to the configured URL only.
		r.client = egress.Policy{Allow: opts.OAuth2AllowNetworks}.Client(r.timeout)
	}
	return r
}

// lockKey takes the process's lock of key, waiting until ctx ends.
func (r *oauth2Refresher) lockKey(ctx context.Context, key string) (func(), error) {
	r.mu.Lock()
	l := r.locks[key]
	if l == nil {
		l = &keyLock{ch: make(chan struct{}, 1)}
		r.locks[key] = l
	}
	l.users++
	r.mu.Unlock()
	done := func() {
		r.mu.Lock()
		if l.users--; l.users == 0 {
			delete(r.locks, key)
		}
		r.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; done() }, nil
	case <-ctx.Done():
		done()
		return nil, ctx.Err()
	}
}

// lockRefresh takes the refresh lock of a secret: the process's, then the
// store's if it has one.
func (s *Service) lockRefresh(ctx context.Context, userID, secretID string) (func(), error) {
	key := "oauth2 refresh " + userID + "/" + secretID
	unlock, err := s.oauth2.lockKey(ctx, key)
	if err != nil {
		return nil, err
	}
	locker, ok := s.store.(RefreshLocker)
	if !ok {
		return unlock, nil
	}
	select {
	case s.oauth2.stores <- struct{}{}:
	case <-ctx.Done():
		unlock()
		return nil, ctx.Err()
	}
	storeUnlock, err := locker.LockRefresh(ctx, key)
	if err != nil {
		<-s.oauth2.stores
		unlock()
		return nil, err
	}
	return func() { storeUnlock(); <-s.oauth2.stores; unlock() }, nil
}

// releaseOAuth2 puts into out, in place of what openAll opened for each
// oauth2 secret of resolved (its client secret), an access token valid for
// the margin, refreshing it if needed. All or nothing: on an error out
// must not be used.
func (s *Service) releaseOAuth2(ctx context.Context, userID string, resolved []*Secret, out []ReleasedSecret) error {
	for i, sec := range resolved {
		if sec.Kind != KindOAuth2 {
			continue
		}
		tok, err := s.oauth2Access(ctx, userID, sec, out[i].Value)
		out[i].Value = tok
		if err != nil {
			return err
		}
	}
	return nil
}

// fresh reports whether t may be given to a task without a refresh.
func (r *oauth2Refresher) fresh(t *oauth2Tokens, now time.Time) bool {
	return t != nil && t.AccessToken != "" && (t.Expiry.IsZero() || t.Expiry.Sub(now) >= r.margin)
}

// unexpired reports whether t is still valid now: what a refresh just got
// must be, even when the provider's tokens live less than the margin.
func unexpired(t *oauth2Tokens, now time.Time) bool {
	return t != nil && t.AccessToken != "" && (t.Expiry.IsZero() || t.Expiry.After(now))
}

// oauth2Access returns an access token of sec valid for the margin (or
// just refreshed), refreshing under the one-refresh rule. clientSecret is
// sec's opened value.
func (s *Service) oauth2Access(ctx context.Context, userID string, sec *Secret, clientSecret string) (string, error) {
	c, t, err := s.readTokens(ctx, userID, sec)
	if err != nil {
		return "", err
	}
	if s.oauth2.fresh(t, s.now()) {
		return t.AccessToken, nil
	}
	unlock, err := s.lockRefresh(ctx, userID, sec.ID)
	if err != nil {
		return "", s.oauth2Error(sec, "waiting for its refresh lock: "+err.Error())
	}
	defer unlock()
	seen := c.UpdatedAt
	if c, t, err = s.readTokens(ctx, userID, sec); err != nil {
		return "", err
	}
	now := s.now()
	switch {
	case s.oauth2.fresh(t, now):
		return t.AccessToken, nil
	case !c.UpdatedAt.Equal(seen) && c.Status.State == OAuth2NeedsReconnect:
		// Another release failed while this one waited.
		return "", s.oauth2Error(sec, c.Status.Reason)
	case !c.UpdatedAt.Equal(seen) && unexpired(t, now):
		// Another release refreshed while this one waited.
		return t.AccessToken, nil
	}
	got, fail := s.fetchToken(ctx, sec, c, t, clientSecret)
	if fail != nil {
		if fail.mark {
			if err := s.markNeedsReconnect(ctx, userID, sec, c, fail.reason); err != nil {
				return "", fmt.Errorf("oauth2 secret %s (%s): %w: %s; and marking it failed: %w", sec.Name, sec.ID, ErrOAuth2, fail.reason, err)
			}
		}
		return "", s.oauth2Error(sec, fail.reason)
	}
	if err := s.storeRefreshed(ctx, userID, sec, c, t, got); err != nil {
		return "", fmt.Errorf("oauth2 secret %s (%s): store the refreshed token: %w", sec.Name, sec.ID, err)
	}
	return got.AccessToken, nil
}

func (s *Service) oauth2Error(sec *Secret, reason string) error {
	return fmt.Errorf("oauth2 secret %s (%s): %w: %s", sec.Name, sec.ID, ErrOAuth2, reason)
}

// readTokens reads sec's connection and opens its tokens (nil if none).
func (s *Service) readTokens(ctx context.Context, userID string, sec *Secret) (*OAuth2Connection, *oauth2Tokens, error) {
	var c *OAuth2Connection
	err := s.store.View(ctx, userID, func(tx Tx) (err error) {
		c, err = tx.OAuth2Connection(ctx, sec.ID)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("oauth2 secret %s (%s): read its connection: %w", sec.Name, sec.ID, err)
	}
	t, err := s.keys.openTokens(c)
	if err != nil {
		return nil, nil, fmt.Errorf("oauth2 secret %s: %w", sec.Name, err)
	}
	return c, t, nil
}

// refreshFailure says why no token was got, and whether the secret is to
// be marked needs_reconnect (not when it was never connected).
type refreshFailure struct {
	reason string
	mark   bool
}

// fetchToken asks the token endpoint for a new token: client credentials,
// or the refresh token of t; within the refresh timeout.
func (s *Service) fetchToken(ctx context.Context, sec *Secret, c *OAuth2Connection, t *oauth2Tokens, clientSecret string) (*oauth2.Token, *refreshFailure) {
	o := c.Settings
	// HTTP Basic, which RFC 6749 2.3.1 says every server supports for a
	// client with a password; the form for a public client (no secret).
	// Not x/oauth2's auto-detection, which retries a refused refresh in
	// the other style and reports that answer (invalid_client) instead of
	// the real one (invalid_grant).
	style := oauth2.AuthStyleInHeader
	if clientSecret == "" {
		style = oauth2.AuthStyleInParams
	}
	hctx, cancel := context.WithTimeout(ctx, s.oauth2.timeout)
	defer cancel()
	hctx = context.WithValue(hctx, oauth2.HTTPClient, s.oauth2.client)
	var (
		got *oauth2.Token
		err error
	)
	switch {
	case o.Flow == FlowClientCredentials:
		cc := clientcredentials.Config{ClientID: o.ClientID, ClientSecret: clientSecret, TokenURL: o.TokenURL,
			Scopes: o.Scopes, AuthStyle: style}
		if o.Audience != "" {
			cc.EndpointParams = url.Values{"audience": {o.Audience}}
		}
		got, err = cc.Token(hctx)
	case t == nil:
		return nil, &refreshFailure{reason: fmt.Sprintf("not connected yet: connect it (flow %s) in the dashboard", o.Flow)}
	case t.RefreshToken == "":
		return nil, &refreshFailure{reason: "the access token expired and the provider gave no refresh token: connect it again", mark: true}
	default:
		cfg := oauth2.Config{ClientID: o.ClientID, ClientSecret: clientSecret, Scopes: o.Scopes,
			Endpoint: oauth2.Endpoint{TokenURL: o.TokenURL, AuthURL: o.AuthURL, DeviceAuthURL: o.DeviceAuthURL, AuthStyle: style}}
		got, err = cfg.TokenSource(hctx, &oauth2.Token{RefreshToken: t.RefreshToken}).Token()
	}
	if err != nil {
		return nil, &refreshFailure{reason: s.refreshReason(err), mark: true}
	}
	if err := validateToken(got); err != nil {
		return nil, &refreshFailure{reason: "the token endpoint's answer is unusable: " + ErrorMessage(err), mark: true}
	}
	if !got.Expiry.IsZero() && !got.Expiry.After(s.now()) {
		return nil, &refreshFailure{reason: "the token endpoint gave a token that has already expired", mark: true}
	}
	return got, nil
}

// refreshReason says why a token request failed, from the error's type:
// never its text when it may hold the endpoint's answer (RetrieveError's
// holds the body), so never a token.
func (s *Service) refreshReason(err error) string {
	var re *oauth2.RetrieveError
	var ue *url.Error
	switch {
	case errors.As(err, &re) && re.ErrorCode != "":
		reason := "the token endpoint refused: " + re.ErrorCode
		if re.ErrorDescription != "" {
			reason += " (" + re.ErrorDescription + ")"
		}
		return truncate(reason, maxReasonLen)
	case errors.As(err, &re) && re.Response != nil:
		return fmt.Sprintf("the token endpoint answered HTTP %d", re.Response.StatusCode)
	case errors.Is(err, egress.ErrRefused):
		return "the token endpoint's address is not public and its network is not allowed (an operator allows one with --oauth2-allow-network)"
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ue) && ue.Timeout():
		return fmt.Sprintf("the token endpoint did not answer within %s", s.oauth2.timeout)
	case errors.As(err, &ue):
		return truncate("the token endpoint could not be reached: "+ue.Err.Error(), maxReasonLen)
	case errors.Is(err, context.Canceled):
		return "the refresh was cancelled"
	}
	return "the token endpoint gave an answer that is not a token"
}

// markNeedsReconnect records a failed refresh in c's row (unless it
// changed since it was read) and audits oauth2.refresh_failed. It runs even
// if ctx has ended: the failure must show.
func (s *Service) markNeedsReconnect(ctx context.Context, userID string, sec *Secret, c *OAuth2Connection, reason string) error {
	ctx = context.WithoutCancel(ctx)
	return s.store.Update(ctx, userID, func(tx Tx) error {
		cur, ok, err := lockConnection(ctx, tx, c)
		if err != nil || !ok {
			return err
		}
		cur.Status.State, cur.Status.Reason, cur.UpdatedAt = OAuth2NeedsReconnect, reason, s.timestamp()
		if err := tx.PutOAuth2Connection(ctx, cur); err != nil {
			return err
		}
		return s.audit(ctx, tx, userID, ActionOAuth2RefreshFailed, TargetSecret, sec.ID, oauth2Details(sec, cur))
	})
}

// storeRefreshed seals got as c's tokens (a refresh token the provider did
// not rotate is kept: oauth2's refresh keeps it) unless the row changed
// since it was read, marks it connected, and audits oauth2.refresh.
func (s *Service) storeRefreshed(ctx context.Context, userID string, sec *Secret, c *OAuth2Connection, old *oauth2Tokens, got *oauth2.Token) error {
	return s.store.Update(ctx, userID, func(tx Tx) error {
		cur, ok, err := lockConnection(ctx, tx, c)
		if err != nil || !ok {
			return err
		}
		next := tokensOf(got)
		if err := s.keys.sealTokens(cur, next); err != nil {
			return err
		}
		now := s.timestamp()
		cur.Status.State, cur.Status.Reason, cur.Status.RefreshedAt, cur.UpdatedAt = OAuth2Connected, "", &now, now
		if cur.Status.ConnectedAt == nil {
			cur.Status.ConnectedAt = &now
		}
		if err := tx.PutOAuth2Connection(ctx, cur); err != nil {
			return err
		}
		d := oauth2Details(sec, cur)
		d["refresh_token_rotated"] = old != nil && old.RefreshToken != "" && next.RefreshToken != old.RefreshToken
		return s.audit(ctx, tx, userID, ActionOAuth2Refresh, TargetSecret, sec.ID, d)
	})
}

// lockConnection takes the secret's lock and reads its connection again:
// ok is false if it changed since c was read (a new connection or new
// settings won: the caller writes nothing).
func lockConnection(ctx context.Context, tx Tx, c *OAuth2Connection) (*OAuth2Connection, bool, error) {
	if err := tx.Lock(ctx, c.SecretID); err != nil {
		return nil, false, err
	}
	cur, err := tx.OAuth2Connection(ctx, c.SecretID)
	if err != nil {
		return nil, false, err
	}
	return cur, cur.UpdatedAt.Equal(c.UpdatedAt), nil
}

// currentAccessToken returns the access token an oauth2 secret holds now,
// "" if none, for masking (ValuesAtVersions).
func (s *Service) currentAccessToken(ctx context.Context, tx Tx, secretID string) (string, error) {
	c, err := tx.OAuth2Connection(ctx, secretID)
	if ErrorCode(err) == ENOTFOUND {
		return "", nil
	} else if err != nil {
		return "", err
	}
	t, err := s.keys.openTokens(c)
	if err != nil || t == nil {
		return "", err
	}
	return t.AccessToken, nil
}

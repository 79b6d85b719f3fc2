package vault

import (
	"context"
	"fmt"
	"time"
)

// Running tasks and their access tokens (issue 17 item 3). A task receives
// an access token valid for at least the refresh margin when it starts;
// nothing refreshes a token inside a running container. A task whose
// profile has on_secret_change "restart" is restarted by the worker's push
// path (orchestrator/push.go) when the token it holds nears its end
// (OAuth2Due): its next attempt's release refreshes the token. A task of a
// "keep" profile keeps running with its token, which may expire under it.

// OAuth2Due returns, sorted by name, the names of the profile's oauth2
// secrets whose access token a task that started at started holds is near
// its end: the secret got a new token since (a refresh happens only within
// the margin of expiry, or a reconnection), or the token expires within
// the margin, or within half its lifetime if that is shorter (so that a
// provider whose tokens live less than the margin does not restart tasks
// at once, again and again). A secret that is not connected (pending,
// needs_reconnect) is never due: a restart would only fail the task.
// Returns ENOTFOUND if the profile is not the user's.
func (s *Service) OAuth2Due(ctx context.Context, userID, profileID string, started time.Time) ([]string, error) {
	resolved, err := s.resolvedForProfile(ctx, userID, profileID)
	if err != nil {
		return nil, err
	}
	var oauth []*Secret
	for _, sec := range resolved {
		if sec.Kind == KindOAuth2 {
			oauth = append(oauth, sec)
		}
	}
	if len(oauth) == 0 {
		return nil, nil
	}
	now := s.now()
	var names []string
	err = s.store.View(ctx, userID, func(tx Tx) error {
		for _, sec := range oauth {
			c, err := tx.OAuth2Connection(ctx, sec.ID)
			if ErrorCode(err) == ENOTFOUND {
				continue
			} else if err != nil {
				return err
			}
			if s.oauth2.due(c.Status, started, now) {
				names = append(names, sec.Name)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("oauth2 tokens of profile %s: %w", profileID, err)
	}
	return names, nil
}

// due is OAuth2Due's rule for one secret's status.
func (r *oauth2Refresher) due(st OAuth2Status, started, now time.Time) bool {
	if st.State != OAuth2Connected || st.ExpiresAt == nil {
		return false
	}
	issued := st.RefreshedAt
	if issued == nil || st.ConnectedAt != nil && st.ConnectedAt.After(*issued) {
		issued = st.ConnectedAt
	}
	if issued == nil {
		return false
	}
	if issued.After(started) {
		return true
	}
	threshold := min(r.margin, st.ExpiresAt.Sub(*issued)/2)
	return st.ExpiresAt.Sub(now) < threshold
}

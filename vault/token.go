package vault

import (
	"context"
	"fmt"
)

var errTokenGone = Errorf(EUNAUTHORIZED, "the API token has been deleted or belongs to another user")

// CheckToken reports whether token tokenID still exists and belongs to
// user userID, as a credential made from it earlier (such as a browser
// session) must on every request. Returns EUNAUTHORIZED if not, and
// another error if the store fails.
func (s *Service) CheckToken(ctx context.Context, userID, tokenID string) error {
	t, err := s.store.Token(ctx, tokenID)
	if ErrorCode(err) == ENOTFOUND {
		return errTokenGone
	} else if err != nil {
		return fmt.Errorf("read token %s: %w", tokenID, err)
	}
	if t.UserID != userID {
		return errTokenGone
	}
	return nil
}

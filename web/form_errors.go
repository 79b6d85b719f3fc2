package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/envvault/envvault/vault"
)

// addError puts err, a vault error the user can act on, next to its field
// (without the "field: " prefix the message starts with), or at the top
// of the form, in words (inWords). It returns false for any other error.
func addError(errs map[string]string, formErr *string, err error, fieldOf func(string) string) bool {
	var ve *vault.Error
	if !errors.As(err, &ve) || (ve.Code != vault.EINVALID && ve.Code != vault.ECONFLICT && ve.Code != vault.ELIMIT) {
		return false
	}
	msg := inWords(strings.TrimPrefix(ve.Message, ve.Field+": "))
	if f := fieldOf(ve.Field); f != "" {
		errs[f] = msg
	} else {
		*formErr = msg
	}
	return true
}

// patternRule is how the vault's messages state a pattern with its words:
// "must match PATTERN (words)".
var patternRule = regexp.MustCompile(`must match \S+ \(([^)]*)\)`)

// inWords states the rule of a vault or dotenv message for a person: a
// pattern the message quotes with its words in brackets becomes the words
// alone, and the name pattern quoted alone becomes its words (the API's
// and CLI's users get the pattern; a page's reader gets the words).
func inWords(msg string) string {
	msg = patternRule.ReplaceAllString(msg, "must use only $1")
	return strings.ReplaceAll(msg, "must match "+vault.NamePattern, "must use only "+nameRuleWords)
}

// nameRuleWords is vault.NamePattern in words, for the messages that
// quote the pattern alone (the dotenv parser's).
const nameRuleWords = "upper-case letters, digits and underscores, not starting with a digit"

// refuseStatus is the status of a refused form: 409 for a conflict, 429
// for a full queue, 422 for a broken rule.
func refuseStatus(err error) int {
	switch vault.ErrorCode(err) {
	case vault.ECONFLICT:
		return http.StatusConflict
	case vault.ELIMIT:
		return http.StatusTooManyRequests
	}
	return http.StatusUnprocessableEntity
}

// addSecretError is addError for the secret form, which names a
// conflicting secret and the profiles it shares instead of their ids.
func (s *server) addSecretError(ctx context.Context, u *user, f *secretForm, ids []string, err error) bool {
	if !addError(f.Errors, &f.FormError, err, fieldOf) {
		return false
	}
	if vault.ErrorCode(err) == vault.EINVALID && vaultField(err) == "profile_ids" {
		// The vault names the id it does not know; the form names none:
		// a ticked profile was deleted since the page was shown.
		if profiles, lookErr := s.allProfiles(ctx, u.ID); lookErr == nil {
			names := profileNames(profiles)
			for _, id := range ids {
				if _, ok := names[id]; !ok {
					f.Errors["scope"] = "A profile you ticked no longer exists (it was deleted since this page was shown): tick the agents again."
					break
				}
			}
		}
		return true
	}
	if vault.ErrorCode(err) != vault.ECONFLICT || vault.ValidateName("name", f.Name) != nil {
		return true
	}
	msg, lookErr := s.conflictMessage(ctx, u.ID, f, ids)
	if lookErr != nil || msg == "" {
		return true // the vault's own message stands
	}
	f.Errors[fieldOf(vaultField(err))] = msg
	return true
}

// vaultField is the field of a vault error.
func vaultField(err error) string {
	var ve *vault.Error
	if errors.As(err, &ve) {
		return ve.Field
	}
	return ""
}

// conflictMessage says which of the user's other secrets holds f.Name
// for the profiles f asks for, by name; "" if none is found (the secret
// changed meanwhile).
func (s *server) conflictMessage(ctx context.Context, userID string, f *secretForm, ids []string) (string, error) {
	same, err := s.allSecrets(ctx, userID, f.Name)
	if err != nil {
		return "", err
	}
	profiles, err := s.allProfiles(ctx, userID)
	if err != nil {
		return "", err
	}
	names := profileNames(profiles)
	for _, other := range same {
		if other.Name != f.Name || other.ID == f.ID {
			continue
		}
		if f.Scope == vault.ScopeAll && other.Scope == vault.ScopeAll {
			return fmt.Sprintf("You already have a secret %s for all profiles: edit that one to change its value, or choose “Only selected agents” to override it for some profiles.", f.Name), nil
		}
		if f.Scope != vault.ScopeAgents || other.Scope != vault.ScopeAgents {
			continue
		}
		var shared []string
		for _, id := range ids {
			if slices.Contains(other.ProfileIDs, id) {
				shared = append(shared, names[id])
			}
		}
		if len(shared) > 0 {
			slices.Sort(shared)
			return fmt.Sprintf("Another secret %s already goes to %s: a profile gets one secret of a name for selected agents. Untick %s, or edit that secret.",
				f.Name, strings.Join(shared, ", "), strings.Join(shared, ", ")), nil
		}
	}
	return "", nil
}

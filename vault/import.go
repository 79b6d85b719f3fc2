package vault

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// ImportEntry is one NAME=value of an import, with the line of the file it
// came from, by which errors name it.
type ImportEntry struct {
	Line  int
	Name  string
	Value string
}

// ImportResult counts what an import did.
type ImportResult struct {
	Created int // new secrets
	Updated int // secrets given a new value (and a new version)
	// Unchanged are the secrets that already held the value: they are
	// left as they are, so a file imported twice makes no new versions.
	Unchanged int
}

// ImportLineError is what is wrong with one entry of an import. Message
// never contains a value.
type ImportLineError struct {
	Line    int
	Message string
}

// ImportError is an import refused for its entries: it names every entry
// that breaks a rule, by line, in line order. It wraps an *Error of code
// EINVALID for entries that break a rule on names or values (CheckImport),
// ECONFLICT for entries that collide with the user's secrets.
type ImportError struct {
	Lines []ImportLineError
	code  string // EINVALID if ""
}

func (e *ImportError) Error() string {
	s := make([]string, len(e.Lines))
	for i, l := range e.Lines {
		s[i] = fmt.Sprintf("line %d: %s", l.Line, l.Message)
	}
	return strings.Join(s, "; ")
}

func (e *ImportError) Unwrap() error {
	code := e.code
	if code == "" {
		code = EINVALID
	}
	return &Error{Code: code, Field: "lines", Message: e.Error()}
}

// CheckImport checks what can be checked of entries without the store:
// each name and value against the rules of CreateSecret (the name pattern,
// the operator's locked and denied names, the value's size and NUL bytes)
// and that no name is given twice. It returns an *ImportError naming every
// bad entry, or nil.
func (s *Service) CheckImport(entries []ImportEntry) error {
	var bad []ImportLineError
	first := make(map[string]int, len(entries))
	for _, e := range entries {
		if err := s.validateName(e.Name); err != nil {
			bad = append(bad, ImportLineError{e.Line, ErrorMessage(err)})
			continue
		}
		if err := ValidateValue("value of "+e.Name, e.Value); err != nil {
			bad = append(bad, ImportLineError{e.Line, ErrorMessage(err)})
			continue
		}
		if line, dup := first[e.Name]; dup {
			bad = append(bad, ImportLineError{e.Line, fmt.Sprintf("%s is set twice (first on line %d)", e.Name, line)})
			continue
		}
		first[e.Name] = e.Line
	}
	if len(bad) > 0 {
		slices.SortStableFunc(bad, func(a, b ImportLineError) int { return a.Line - b.Line })
		return &ImportError{Lines: bad}
	}
	return nil
}

// ImportSecrets creates or updates the user's secrets of entries, all in
// one transaction: all of them, or, if any entry breaks a rule, none.
//
// With ScopeAll an entry updates the user's `all` secret of its name, or
// creates one. With ScopeAgents it updates the user's `agents` secret of
// its name that grants exactly profileIDs, or creates one granting them;
// it is refused (a line error) if another `agents` secret of that name
// grants one of them. An update changes only the value, as UpdateSecret
// does with a new value (a new version, the old value kept in history); a
// secret that already holds the value is left unchanged.
//
// Returns EINVALID for a bad scope or profile ids, an *ImportError naming
// every bad entry by line, ECONFLICT if the import would take the user
// past the most secrets allowed, ENOTFOUND if the user does not exist.
func (s *Service) ImportSecrets(ctx context.Context, userID string, entries []ImportEntry, scope Scope, profileIDs []string) (ImportResult, error) {
	ids, err := validateScope(scope, profileIDs)
	if err != nil {
		return ImportResult{}, err
	}
	if err := s.CheckImport(entries); err != nil {
		return ImportResult{}, err
	}
	var res ImportResult
	err = s.store.Update(ctx, userID, func(tx Tx) error {
		var err error
		res, err = s.importTx(ctx, tx, userID, entries, scope, ids)
		return err
	})
	if err != nil {
		return ImportResult{}, fmt.Errorf("import secrets: %w", err)
	}
	return res, nil
}

// importTx is ImportSecrets inside the caller's transaction, with entries
// already checked (CheckImport) and ids sorted (validateScope). A secret
// request's answer calls it too (secret_request.go).
func (s *Service) importTx(ctx context.Context, tx Tx, userID string, entries []ImportEntry, scope Scope, ids []string) (ImportResult, error) {
	res := ImportResult{}
	// The quota counts the user's secrets: imports and creates take
	// turns.
	if err := tx.LockUser(ctx); err != nil {
		return res, err
	}
	if err := checkProfiles(ctx, tx, ids); err != nil {
		return res, err
	}
	// First every check, so that every bad entry is named; then the
	// writes, once none is.
	targets := make([]*Secret, len(entries))
	var bad []ImportLineError
	creates := 0
	for i, e := range entries {
		same, err := tx.SecretsNamed(ctx, e.Name)
		if err != nil {
			return res, fmt.Errorf("read secrets named %s: %w", e.Name, err)
		}
		targets[i] = importTarget(same, scope, ids)
		if targets[i] != nil {
			if targets[i], err = relockTarget(ctx, tx, targets[i]); err != nil {
				return res, err
			}
			if targets[i].Kind == KindOAuth2 {
				bad = append(bad, ImportLineError{e.Line, fmt.Sprintf("%s is an oauth2 secret (secret %s): an import cannot change it; set its client secret or connect it through the API or the dashboard", e.Name, targets[i].ID)})
			}
			continue
		}
		creates++
		err = checkGrants(ctx, tx, &Secret{UserID: userID, Name: e.Name, Scope: scope, ProfileIDs: ids})
		if code := ErrorCode(err); code == EINVALID || code == ECONFLICT {
			bad = append(bad, ImportLineError{e.Line, ErrorMessage(err)})
		} else if err != nil {
			return res, err
		}
	}
	if len(bad) > 0 {
		return res, &ImportError{Lines: bad, code: ECONFLICT}
	}
	n, err := tx.CountSecrets(ctx)
	if err != nil {
		return res, fmt.Errorf("count secrets: %w", err)
	}
	if n+creates > s.maxSecrets {
		return res, Errorf(ECONFLICT, "secret limit reached: the import creates %d secrets, you hold %d, and a user holds at most %d", creates, n, s.maxSecrets)
	}
	for i, e := range entries {
		switch changed, err := s.importOne(ctx, tx, userID, e, scope, ids, targets[i]); {
		case err != nil:
			return res, fmt.Errorf("line %d: %s: %w", e.Line, e.Name, err)
		case targets[i] == nil:
			res.Created++
		case changed:
			res.Updated++
		default:
			res.Unchanged++
		}
	}
	return res, nil
}

// importTarget returns the secret of same (the user's secrets of one
// name) that an import with scope and ids (sorted) updates, or nil if it
// creates one.
func importTarget(same []*Secret, scope Scope, ids []string) *Secret {
	for _, sec := range same {
		if sec.Scope == scope && (scope == ScopeAll || slices.Equal(sec.ProfileIDs, ids)) {
			return sec
		}
	}
	return nil
}

// importOne writes one entry: a new secret if cur is nil, else cur with
// the entry's value, as UpdateSecret writes a new value. It reports
// whether it wrote anything.
func (s *Service) importOne(ctx context.Context, tx Tx, userID string, e ImportEntry, scope Scope, ids []string, cur *Secret) (bool, error) {
	now := s.timestamp()
	if cur == nil {
		sec := &Secret{
			ID: NewID(PrefixSecret), UserID: userID, Name: e.Name, Scope: scope, ProfileIDs: ids,
			Version: 1, CreatedAt: now, UpdatedAt: now,
		}
		if err := s.keys.sealSecret(sec, e.Value); err != nil {
			return false, fmt.Errorf("seal secret: %w", err)
		}
		if err := tx.CreateSecret(ctx, sec); err != nil {
			return false, err
		}
		details := secretDetails(sec)
		details["import_line"] = e.Line
		return true, s.audit(ctx, tx, userID, ActionSecretCreate, TargetSecret, sec.ID, details)
	}
	old, err := s.keys.openSecret(cur)
	if err != nil {
		return false, fmt.Errorf("secret %s: %w: %w", cur.ID, ErrDecrypt, err)
	}
	if old == e.Value {
		return false, nil
	}
	next := *cur
	if err := s.sealNewVersion(&next, cur, e.Value); err != nil {
		return false, err
	}
	kept, err := tx.SecretVersions(ctx, cur.ID)
	if err != nil {
		return false, fmt.Errorf("read versions of secret %s: %w", cur.ID, err)
	}
	if err := s.storeNewVersion(ctx, tx, cur, kept, &next); err != nil {
		return false, err
	}
	details := secretDetails(&next)
	details["changed"], details["import_line"] = []string{"value"}, e.Line
	return true, s.audit(ctx, tx, userID, ActionSecretUpdate, TargetSecret, next.ID, details)
}

// relockTarget takes the lock of the secret an import updates, which it
// found unlocked, and reads it again: an update of it may have committed
// meanwhile. Returns ECONFLICT if that update made it another import's
// target (renamed, rescoped, regranted or deleted it).
func relockTarget(ctx context.Context, tx Tx, found *Secret) (*Secret, error) {
	cur, err := lockSecret(ctx, tx, found.ID)
	if ErrorCode(err) == ENOTFOUND || err == nil && (cur.Name != found.Name || cur.Scope != found.Scope || !slices.Equal(cur.ProfileIDs, found.ProfileIDs)) {
		return nil, Errorf(ECONFLICT, "secret %s changed during the import: import again", found.ID)
	}
	return cur, err
}

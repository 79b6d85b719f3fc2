package dotenv

import (
	"context"
	"errors"
	"slices"

	"github.com/envvault/envvault/vault"
)

// Importer is the part of vault.Service an import needs.
type Importer interface {
	CheckImport(entries []vault.ImportEntry) error
	ImportSecrets(ctx context.Context, userID string, entries []vault.ImportEntry, scope vault.Scope, profileIDs []string) (vault.ImportResult, error)
}

// Import reads data as a dotenv file and imports its entries into the
// user's secrets, all or nothing. An import refused for its lines returns
// a *vault.ImportError naming every bad line, by number, in line order:
// the lines the parser refuses and the entries that break a vault rule
// (vault.Service.CheckImport), code EINVALID; or, when those pass, the
// entries that collide with the user's secrets (ImportSecrets), code
// ECONFLICT. Any other error is returned as it is (a bad scope or
// profile, the secret limit, the store).
func Import(ctx context.Context, svc Importer, userID string, data []byte, scope vault.Scope, profileIDs []string) (vault.ImportResult, error) {
	entries, parseErr := Parse(data)
	var bad []vault.ImportLineError
	var lineErrs Errors
	if errors.As(parseErr, &lineErrs) {
		for _, e := range lineErrs {
			bad = append(bad, vault.ImportLineError{Line: e.Line, Message: e.Reason})
		}
	} else if parseErr != nil {
		return vault.ImportResult{}, parseErr
	}
	in := make([]vault.ImportEntry, len(entries))
	for i, e := range entries {
		in[i] = vault.ImportEntry{Line: e.Line, Name: e.Name, Value: e.Value}
	}
	// The lines the parser took are checked against the vault's rules
	// too, so that one try names every bad line.
	var ie *vault.ImportError
	if err := svc.CheckImport(in); errors.As(err, &ie) {
		bad = append(bad, ie.Lines...)
	} else if err != nil {
		return vault.ImportResult{}, err
	}
	if len(bad) > 0 {
		slices.SortStableFunc(bad, func(a, b vault.ImportLineError) int { return a.Line - b.Line })
		return vault.ImportResult{}, &vault.ImportError{Lines: bad}
	}
	return svc.ImportSecrets(ctx, userID, in, scope, profileIDs)
}

// Names returns the name and line of each entry data holds that Parse
// reads, for a page that shows what was pasted without its values.
func Names(data []byte) []Entry {
	entries, _ := Parse(data)
	for i := range entries {
		entries[i].Value = ""
	}
	return entries
}

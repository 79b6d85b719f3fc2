package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/envvault/envvault/vault"
)

// versionRow is one version of a secret's value as the version panel
// shows it: who saved it and when, never the value.
type versionRow struct {
	vault.SecretVersion
	// By and ReplacedBy name the tokens of ActorTokenID and
	// ReplacedByTokenID: "" if unknown or since revoked.
	By, ReplacedBy string
	// Mine says the token that saved it is the one this session signed
	// in with.
	Mine bool
}

// versionRows describes versions with the names of the user's tokens.
func versionRows(versions []vault.SecretVersion, tokens []*vault.Token, sessionTokenID string) []versionRow {
	names := make(map[string]string, len(tokens))
	for _, t := range tokens {
		names[t.ID] = t.Name
	}
	out := make([]versionRow, len(versions))
	for i, v := range versions {
		out[i] = versionRow{SecretVersion: v, By: names[v.ActorTokenID], ReplacedBy: names[v.ReplacedByTokenID],
			Mine: v.ActorTokenID != "" && v.ActorTokenID == sessionTokenID}
	}
	return out
}

// rollbackData is the rollback confirmation's data.
type rollbackData struct {
	Secret  *vault.Secret
	Version vault.SecretVersion
	Next    int // the version the restored value will be
	CSRF    string
}

// rollbackVersion reads the version a rollback names and finds it among
// the secret's kept versions: EINVALID (field version) if it is not one.
func (s *server) rollbackVersion(r *http.Request, u *user, raw string) (*vault.Secret, vault.SecretVersion, error) {
	ctx := r.Context()
	sec, err := s.vault.Secret(ctx, u.ID, r.PathValue("id"))
	if err != nil {
		return nil, vault.SecretVersion{}, err
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 {
		return nil, vault.SecretVersion{}, vault.Invalid("version", "must be a version number, 1 or more")
	}
	versions, err := s.vault.SecretVersions(ctx, u.ID, sec.ID)
	if err != nil {
		return nil, vault.SecretVersion{}, err
	}
	for _, v := range versions {
		if v.Version == n && !v.Current {
			return sec, v, nil
		}
	}
	return nil, vault.SecretVersion{}, vault.Invalid("version", "%s keeps no earlier version %d to roll back to", sec.Name, n)
}

func (s *server) secretRollbackPage(w http.ResponseWriter, r *http.Request, u *user) error {
	sec, v, err := s.rollbackVersion(r, u, r.URL.Query().Get("version"))
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "secret_rollback", view{Title: fmt.Sprintf("Roll back %s to version %d", sec.Name, v.Version),
		Nav: "secrets", User: u, Data: rollbackData{Secret: sec, Version: v, Next: sec.Version + 1, CSRF: u.CSRF}})
	return nil
}

func (s *server) secretRollback(w http.ResponseWriter, r *http.Request, u *user) error {
	sec, v, err := s.rollbackVersion(r, u, r.PostForm.Get("version"))
	if err != nil {
		return err
	}
	next, err := s.vault.RollbackSecret(r.Context(), u.ID, sec.ID, v.Version)
	if err != nil {
		return err
	}
	q := url.Values{"ok": {"secret-rolled-back"}, "from": {strconv.Itoa(v.Version)}}
	http.Redirect(w, r, "/settings/secrets/"+next.ID+"/edit?"+q.Encode()+"#versions", http.StatusSeeOther)
	return nil
}

// rollbackNotice is what the Edit page says after a rollback: the
// version restored, read as a number, and the secret's version now, read
// from the store.
func rollbackNotice(q url.Values, sec *vault.Secret) string {
	if q.Get("ok") != "secret-rolled-back" {
		return ""
	}
	n, err := strconv.Atoi(q.Get("from"))
	if err != nil || n < 1 || n >= sec.Version {
		return ""
	}
	return fmt.Sprintf("%s rolled back: version %d’s value is now current, as version %d. Tasks started from now on receive it.", sec.Name, n, sec.Version)
}

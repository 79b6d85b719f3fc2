package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/postgres"
	"github.com/envvault/envvault/seal"
	"github.com/envvault/envvault/sqlite"
	"github.com/envvault/envvault/vault"
)

// Files in --data-dir.
const (
	sqliteFile = "envvault.db"
	devKeyFile = "dev.key"
)

// db is what both stores are: the vault's store and the orchestrator's.
type db interface {
	vault.Store
	orchestrator.Store
}

// openStore opens the store the configuration names, PostgreSQL when
// DATABASE_URL is set and the SQLite file in --data-dir otherwise, and
// applies its migrations (on PostgreSQL as the role of
// DATABASE_MIGRATE_URL, if set). It returns how many it applied. Main.Close
// closes the store.
func (m *Main) openStore(ctx context.Context) (db, int, error) {
	if url := string(m.Config.DatabaseURL); url != "" {
		n, err := m.migratePostgres(ctx)
		if err != nil {
			return nil, 0, err
		}
		db, err := postgres.Open(ctx, url)
		if err != nil {
			return nil, 0, fmt.Errorf("open PostgreSQL (DATABASE_URL): %w", err)
		}
		m.store = db
		if bypass, err := db.BypassesRLS(ctx); err != nil {
			return nil, 0, err
		} else if bypass {
			m.logger.Warn("the role of DATABASE_URL is a superuser or has BYPASSRLS, so row-level security does not apply to it: " +
				"serve as a member of envvault_app (README, Row-level security)")
		}
		return db, n, nil
	}
	if err := m.prepareDataDir(); err != nil {
		return nil, 0, err
	}
	path := filepath.Join(m.Config.DataDir, sqliteFile)
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, 0, fmt.Errorf("open SQLite %s: %w", path, err)
	}
	m.store = db
	m.tightenSQLiteFiles()
	n, err := db.Migrate(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("migrate SQLite %s: %w", path, err)
	}
	return db, n, nil
}

// migratePostgres applies the migrations as the tables' owner: the role of
// DATABASE_MIGRATE_URL, or of DATABASE_URL if it is unset. It returns how
// many it applied.
func (m *Main) migratePostgres(ctx context.Context) (int, error) {
	url, name := string(m.Config.DatabaseMigrateURL), "DATABASE_MIGRATE_URL"
	if url == "" {
		url, name = string(m.Config.DatabaseURL), "DATABASE_URL"
	}
	owner, err := postgres.Open(ctx, url)
	if err != nil {
		return 0, fmt.Errorf("open PostgreSQL (%s): %w", name, err)
	}
	defer owner.Close()
	n, err := owner.Migrate(ctx)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == insufficientPrivilege && name == "DATABASE_URL" {
		return 0, fmt.Errorf("migrate PostgreSQL (DATABASE_URL): %w: a migration is pending, and the role of DATABASE_URL may not apply it; "+
			"set DATABASE_MIGRATE_URL to the tables' owner (README, Row-level security)", err)
	} else if err != nil {
		return 0, fmt.Errorf("migrate PostgreSQL (%s): %w", name, err)
	}
	return n, nil
}

// insufficientPrivilege is PostgreSQL's SQLSTATE for a missing privilege.
const insufficientPrivilege = "42501"

// storeName says which store is in use, without the database URL's
// password.
func (m *Main) storeName() string {
	if m.Config.DatabaseURL != "" {
		return "PostgreSQL (DATABASE_URL)"
	}
	return "SQLite " + filepath.Join(m.Config.DataDir, sqliteFile)
}

// keyring builds the master keyring. The key is ENCRYPTION_KEY when set.
// Otherwise dev uses <data-dir>/dev.key, generating it on first run, and
// `user create`, `runner` and `secrets` on the SQLite store use that file
// if it exists; serve never falls back, and the dev key is never used with
// PostgreSQL.
func (m *Main) keyring() (*seal.Keyring, error) {
	k := &m.Config.Keys
	if k.Current == nil {
		path := filepath.Join(m.Config.DataDir, devKeyFile)
		switch {
		case m.Config.Command == cmdDev:
			key, created, err := m.devKey(path, true)
			if err != nil {
				return nil, err
			}
			k.Current, k.Source = key, path
			m.warnDevKey(path, created)
		case (m.Config.Command == cmdUserCreate || m.Config.Command == cmdRunner ||
			m.Config.Command == cmdSecretsImport || m.Config.Command == cmdSecretsList) && m.Config.DatabaseURL == "":
			key, _, err := m.devKey(path, false)
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("ENCRYPTION_KEY is required: it is unset, and there is no development key %s (made by envvault dev) to fall back to", path)
			} else if err != nil {
				return nil, err
			}
			k.Current, k.Source = key, path
			m.logger.Warn("ENCRYPTION_KEY is unset: using the development key", "path", path)
		default:
			return nil, errors.New("ENCRYPTION_KEY is required: set it to base64 of 32 bytes (make one with `envvault keygen`), or ENCRYPTION_KEY_FILE to a file holding it")
		}
	}
	keys, err := seal.NewKeyring(k.Current, k.Previous...)
	if err != nil {
		return nil, fmt.Errorf("ENCRYPTION_KEY, ENCRYPTION_KEY_PREVIOUS: %w", err)
	}
	return keys, nil
}

// parseKey decodes one master key. The error names the variable and the
// rule, never the value.
func parseKey(name, encoded string) ([]byte, error) {
	key, err := seal.ParseKey(encoded)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return key, nil
}

// devKey reads the development key at path. With create it first makes
// one, mode 0600, if there is none, and says whether it did.
func (m *Main) devKey(path string, create bool) (key []byte, created bool, err error) {
	if create {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, false, fmt.Errorf("create data directory (--data-dir, DATA_DIR): %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		switch {
		case err == nil:
			_, werr := io.WriteString(f, seal.GenerateKey()+"\n")
			serr := f.Sync()
			cerr := f.Close()
			if err := errors.Join(werr, serr, cerr); err != nil {
				os.Remove(path)
				return nil, false, fmt.Errorf("write development key %s: %w", path, err)
			}
			created = true
		case !errors.Is(err, fs.ErrExist):
			return nil, false, fmt.Errorf("create development key %s: %w", path, err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false, fmt.Errorf("read development key: %w", err)
	}
	m.tighten(path, dataFileMode)
	key, err = parseKey("development key "+path, string(b))
	if err != nil {
		return nil, false, err
	}
	return key, created, nil
}

func (m *Main) warnDevKey(path string, created bool) {
	what := "Using the development master key " + path
	if created {
		what = "Generated a development master key into " + path
	}
	lines := []string{
		"WARNING: DEVELOPMENT MODE - NOT FOR REAL SECRETS",
		"",
		what + ".",
		"It is stored beside the data it encrypts: whoever can read the",
		"directory " + m.Config.DataDir + " can read every secret. For real secrets run",
		"`envvault serve` with ENCRYPTION_KEY from your secret manager",
		"(make a key with `envvault keygen`).",
	}
	width := 0
	for _, l := range lines {
		width = max(width, len(l))
	}
	bar := strings.Repeat("!", width+6)
	var b strings.Builder
	fmt.Fprintln(&b, bar)
	for _, l := range lines {
		fmt.Fprintf(&b, "!! %-*s !!\n", width, l)
	}
	fmt.Fprintln(&b, bar)
	io.WriteString(m.Stderr, b.String())
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	return enc.Encode(v)
}

// openService opens the store, applies its migrations and checks the
// master keys against it. fresh says the store had never seen a key: it is
// a new database.
func (m *Main) openService(ctx context.Context) (svc *vault.Service, fresh bool, err error) {
	keys, err := m.keyring()
	if err != nil {
		return nil, false, err
	}
	store, applied, err := m.openStore(ctx)
	if err != nil {
		return nil, false, err
	}
	m.logger.Info("migrations applied", "store", m.storeName(), "applied", applied)
	checks, err := store.KeyChecks(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("read key checks: %w", err)
	}
	svc = vault.NewService(store, keys, vault.Options{
		MaxSecrets: m.Config.MaxSecrets,
		Names:      vault.NamePolicy{Locked: m.baseline.Locked, Allowed: m.Config.AllowNames},
		Sandbox:    m.Config.Tasks.Sandbox,
		// 0 (a command without the flag) is the default.
		OAuth2RefreshMargin: m.Config.Tasks.OAuth2RefreshMargin,
		OAuth2AllowNetworks: m.Config.Tasks.OAuth2AllowNetworks,
	})
	if err := svc.CheckKeys(ctx); err != nil {
		return nil, false, fmt.Errorf("master key from %s does not fit this database: %w", m.Config.Keys.Source, err)
	}
	m.keys = keys
	m.logger.Info("master key checked", "key_id", keys.CurrentID(), "source", m.Config.Keys.Source, "previous_keys", len(m.Config.Keys.Previous))
	return svc, len(checks) == 0, nil
}

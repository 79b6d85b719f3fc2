// Package migrations holds the versioned SQL schema of each store, embedded
// in the binary, and applies it with goose: each migration in its own
// transaction, recorded in a version table, so running Up twice is a no-op.
// On PostgreSQL a session advisory lock makes concurrent Up calls from
// several processes wait for one another.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// Dialect names a store's SQL dialect; it is also the folder of its files.
type Dialect string

const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// Up applies every migration of the dialect that db has not seen yet and
// returns how many it applied.
func Up(ctx context.Context, db *sql.DB, d Dialect) (int, error) {
	p, err := provider(db, d)
	if err != nil {
		return 0, err
	}
	results, err := p.Up(ctx)
	if err != nil {
		return 0, fmt.Errorf("apply %s migrations: %w", d, err)
	}
	return len(results), nil
}

// Version returns the newest migration applied to db.
func Version(ctx context.Context, db *sql.DB, d Dialect) (int64, error) {
	p, err := provider(db, d)
	if err != nil {
		return 0, err
	}
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("read %s schema version: %w", d, err)
	}
	return v, nil
}

func provider(db *sql.DB, d Dialect) (*goose.Provider, error) {
	sub, err := fs.Sub(files, string(d))
	if err != nil {
		return nil, fmt.Errorf("migrations for %s: %w", d, err)
	}
	var dialect goose.Dialect
	var opts []goose.ProviderOption
	switch d {
	case Postgres:
		dialect = goose.DialectPostgres
		// Retry every second, for up to five minutes: a second process
		// starting beside the first waits about as long as its migration.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
		if err != nil {
			return nil, fmt.Errorf("postgres migration lock: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	case SQLite:
		dialect = goose.DialectSQLite3
	default:
		return nil, fmt.Errorf("unknown migration dialect %q", d)
	}
	p, err := goose.NewProvider(dialect, db, sub, opts...)
	if err != nil {
		return nil, fmt.Errorf("load %s migrations: %w", d, err)
	}
	return p, nil
}

package main

import (
	"context"
	"fmt"

	"github.com/peterbourgon/ff/v3/ffcli"
)

// migrateCommand is `envvault migrate`.
func (m *Main) migrateCommand() *ffcli.Command {
	c, fs := m.newCommand(cmdMigrate, "text")
	return m.leaf(c, fs, &ffcli.Command{
		ShortUsage: "envvault migrate [flags]",
		ShortHelp:  "apply the database migrations and say what was applied",
		LongHelp: `Applies the embedded migrations to the store that serve would use
(DATABASE_URL, else <data-dir>/envvault.db). serve and dev apply them at
start-up too; running it twice, or from two processes at once, is safe.

` + envHelp + "\n\n" + keyHelp,
	})
}

func (m *Main) runMigrate(ctx context.Context) error {
	// openStore applies the migrations; migrate is that alone.
	_, applied, err := m.openStore(ctx)
	if err != nil {
		return err
	}
	if applied == 0 {
		_, err = fmt.Fprintf(m.Stdout, "%s: schema is up to date, no migration to apply\n", m.storeName())
		return err
	}
	_, err = fmt.Fprintf(m.Stdout, "%s: applied %d migrations\n", m.storeName(), applied)
	return err
}

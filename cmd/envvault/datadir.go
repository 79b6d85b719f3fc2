package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Modes of --data-dir and of the files envvault keeps in it: owner only.
// The SQLite file holds sealed values and the audit trail, dev.key opens
// them; nobody but the account that runs envvault has a reason to read
// either.
const (
	dataDirMode  fs.FileMode = 0o700
	dataFileMode fs.FileMode = 0o600
)

// sqliteFiles are the SQLite database file and the two SQLite makes beside
// it in WAL mode, in --data-dir.
func sqliteFiles() []string {
	return []string{sqliteFile, sqliteFile + "-wal", sqliteFile + "-shm"}
}

// prepareDataDir makes --data-dir owner-only before the SQLite store
// opens: it creates the directory with mode 0700 if missing, tightens it
// and the SQLite files already in it to 0700 and 0600, and creates the
// database file with mode 0600 if missing, because SQLite gives the -wal
// and -shm files it makes the mode of the database file. What cannot be
// tightened (not the owner, an immutable file, a read-only mount) is
// logged as a warning naming the path and its mode, and start-up goes on.
func (m *Main) prepareDataDir() error {
	dir := m.Config.DataDir
	if err := os.MkdirAll(dir, dataDirMode); err != nil {
		return fmt.Errorf("create data directory %s (--data-dir, DATA_DIR): %w", dir, err)
	}
	m.tighten(dir, dataDirMode)
	m.tightenSQLiteFiles()
	path := filepath.Join(dir, sqliteFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, dataFileMode)
	switch {
	case err == nil:
		// An empty file is a new SQLite database.
		if err := f.Close(); err != nil {
			return fmt.Errorf("create SQLite %s: %w", path, err)
		}
	case !errors.Is(err, fs.ErrExist):
		return fmt.Errorf("create SQLite %s: %w", path, err)
	}
	return nil
}

// tightenSQLiteFiles tightens the SQLite files that exist in --data-dir to
// 0600 (see prepareDataDir); after the store opens it catches the -wal and
// -shm files of a database file that could not be tightened.
func (m *Main) tightenSQLiteFiles() {
	for _, name := range sqliteFiles() {
		m.tighten(filepath.Join(m.Config.DataDir, name), dataFileMode)
	}
}

// tighten takes from path every permission that mode does not grant (it
// never adds one). A path that does not exist is left alone. If it cannot,
// it logs a warning with the path, its mode and the mode wanted, never
// anything read from the file.
func (m *Main) tighten(path string, mode fs.FileMode) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		m.logger.Warn("cannot check the permissions of a data file: make it readable by its owner only", "path", path, "want", modeString(mode), "error", err.Error())
		return
	}
	have := fi.Mode().Perm()
	if have&^mode == 0 {
		return
	}
	if err := os.Chmod(path, have&mode); err != nil {
		m.logger.Warn("cannot make a data file readable by its owner only: other users may read it; chmod it or run envvault as its owner",
			"path", path, "mode", modeString(have), "want", modeString(have&mode), "error", err.Error())
		return
	}
	m.logger.Info("tightened the permissions of a data file to its owner only", "path", path, "was", modeString(have), "mode", modeString(have&mode))
}

func modeString(mode fs.FileMode) string { return fmt.Sprintf("%04o", mode.Perm()) }

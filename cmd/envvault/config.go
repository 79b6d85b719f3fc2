package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"
)

// Commands, as Config.Command names them.
const (
	cmdDev        = "dev"
	cmdServe      = "serve"
	cmdMigrate    = "migrate"
	cmdUserCreate = "user create"
	cmdKeygen     = "keygen"
	cmdRunner     = "runner"
)

// Defaults shared by the commands that take the flag.
const (
	defaultDataDir         = "data"
	defaultShutdownTimeout = 15 * time.Second
)

// Config is everything a command is told: flags, each of which may also be
// given as the environment variable of its upper-cased name (--data-dir,
// DATA_DIR), and the variables that are only ever read from the
// environment or a file, never from a flag, so that they do not show in
// `ps`: the master keys and DATABASE_URL.
type Config struct {
	Command string // one of the cmd constants

	Addr            string        // --addr, ADDR
	MetricsAddr     string        // --metrics-addr, METRICS_ADDR (dev, serve, runner; metrics.go)
	DataDir         string        // --data-dir, DATA_DIR
	MaxSecrets      int           // --max-secrets, MAX_SECRETS
	BodyLimit       int64         // --body-limit, BODY_LIMIT (bytes)
	WriteRate       float64       // --write-rate, WRITE_RATE: each user's writes a second; 0 for no limit
	WriteBurst      int           // --write-burst, WRITE_BURST
	SessionIdle     time.Duration // --session-idle, SESSION_IDLE (dashboard)
	SecureCookies   bool          // --secure-cookies, SECURE_COOKIES (dashboard)
	PublicURL       string        // --public-url, PUBLIC_URL (dashboard, OAuth2 redirects)
	AllowNames      []string      // --allow-names, ALLOW_NAMES (comma-separated)
	LogFormat       string        // --log-format, LOG_FORMAT: text or json
	LogLevel        slog.Level    // --log-level, LOG_LEVEL
	ShutdownTimeout time.Duration // --shutdown-timeout, SHUTDOWN_TIMEOUT

	// The task worker (dev, serve, runner).
	BaselineEnvFile string     // --baseline-env-file, BASELINE_ENV_FILE
	LockedNames     []string   // --locked-names, BASELINE_LOCKED_NAMES (comma-separated)
	WorkerID        string     // --worker-id, WORKER_ID; the host name by default
	NoWorker        bool       // --no-worker, NO_WORKER (dev, serve)
	Tasks           taskConfig // task containers: sandbox policy, slots (sandbox.go)

	// lockedByFlag says --locked-names (or LOCKED_NAMES, by ff's rule)
	// was given, so BASELINE_LOCKED_NAMES is not read.
	lockedByFlag bool

	UserName string // user create NAME
	JSON     bool   // user create --json, keys status --json

	BatchSize int // keys rotate --batch-size

	OlderThan time.Duration // audit prune --older-than

	Bench benchConfig // envvault bench (bench.go)

	// Client is what the client commands (secrets, profiles, tasks,
	// login), help, version and completion were told (remote.go).
	Client clientConfig

	// secrets import FILE, secrets list.
	ImportFile string   // secrets import FILE
	UserID     string   // --user
	Scope      string   // --scope
	ProfileIDs []string // --profile, repeatable

	// DatabaseURL is DATABASE_URL or the content of DATABASE_URL_FILE; ""
	// means the embedded SQLite file in DataDir.
	DatabaseURL redacted
	// DatabaseMigrateURL is DATABASE_MIGRATE_URL (or _FILE): the
	// PostgreSQL role that owns the tables and applies the migrations,
	// when the service's role of DatabaseURL is another; "" means
	// DatabaseURL migrates too.
	DatabaseMigrateURL redacted
	// Keys are ENCRYPTION_KEY and ENCRYPTION_KEY_PREVIOUS (or their
	// _FILE forms), or, with those unset, the development key; see keyring.
	Keys MasterKeys
}

// MasterKeys are the master keys and where they came from. They print as
// "[redacted]" however they are formatted or logged.
type MasterKeys struct {
	Current  []byte   // nil when ENCRYPTION_KEY is unset
	Previous [][]byte // may still open data keys sealed before a rotation
	Source   string   // "ENCRYPTION_KEY", "ENCRYPTION_KEY_FILE", or the dev key's path
}

func (MasterKeys) String() string               { return "[redacted]" }
func (MasterKeys) GoString() string             { return "[redacted]" }
func (MasterKeys) LogValue() slog.Value         { return slog.StringValue("[redacted]") }
func (MasterKeys) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// redacted is a string that may hold a password (a database URL). It
// prints as "[redacted]" however it is formatted or logged.
type redacted string

func (redacted) String() string               { return "[redacted]" }
func (redacted) GoString() string             { return "[redacted]" }
func (redacted) LogValue() slog.Value         { return slog.StringValue("[redacted]") }
func (redacted) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// ParseFlags fills m.Config from args and the environment. It returns
// flag.ErrHelp (wrapped) after printing help for -h/--help.
func (m *Main) ParseFlags(ctx context.Context, args []string) error {
	root := m.commands()
	err := root.Parse(args)
	if err == nil {
		// The Exec functions only record what was selected; Run does the work.
		err = root.Run(ctx)
	}
	switch {
	case errors.Is(err, flag.ErrHelp) && m.helpFor != nil:
		// Help goes to stdout (envvault --help | less), with exit 0.
		fmt.Fprint(m.Stdout, usage(m.helpFor, m.helpPath))
		return err
	case err != nil && m.helpFor != nil:
		// A flag error: the flag package asked for the usage.
		return usageError(fmt.Errorf("%w (see %s --help)", err, m.helpPath))
	case err != nil:
		return err
	}
	if err := m.readEnv(); err != nil {
		return err
	}
	return m.Config.checkWorker()
}

// checkWorker checks the settings of the task worker.
func (c *Config) checkWorker() error {
	switch c.Command {
	case cmdDev, cmdServe, cmdRunner:
	default:
		return nil
	}
	if err := c.checkTasks(); err != nil {
		return err
	}
	c.WorkerID = strings.TrimSpace(c.WorkerID)
	if c.WorkerID == "" && !c.NoWorker {
		// An empty id would make recovery take every worker's tasks.
		return errors.New("--worker-id (WORKER_ID) is empty and the host name is unknown: set it to a name unique to this process's Docker host")
	}
	return nil
}

const envHelp = `Every flag may also be set by the environment variable of its upper-cased
name with dashes as underscores (--data-dir: DATA_DIR); a flag wins.`

const keyHelp = `Master keys are read only from the environment, never from flags, so they
stay out of ps and shell history:
  ENCRYPTION_KEY             base64 of exactly 32 bytes (make one: envvault keygen)
  ENCRYPTION_KEY_FILE        a file holding it (for Docker/Kubernetes secrets)
  ENCRYPTION_KEY_PREVIOUS    comma-separated older keys that still open data
                             sealed before a rotation (or ENCRYPTION_KEY_PREVIOUS_FILE)
Store: DATABASE_URL (or DATABASE_URL_FILE) selects PostgreSQL, for example
  postgres://envvault:PASSWORD@db.internal:5432/envvault?sslmode=verify-full
Without it the store is the SQLite file <data-dir>/envvault.db.
DATABASE_MIGRATE_URL (or _FILE) is the tables' owner, which applies the
migrations, when DATABASE_URL is a role under row-level security (README).`

// splitNames splits a comma-separated list of names, dropping blanks.
func splitNames(s string) []string {
	var names []string
	for _, n := range strings.Split(s, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	return names
}

// storeFlags is --data-dir.
func storeFlags(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&c.DataDir, "data-dir", defaultDataDir, "directory of the SQLite store (and of dev.key in dev); unused with DATABASE_URL")
}

// shutdownFlag is --shutdown-timeout.
func shutdownFlag(fs *flag.FlagSet, c *Config) {
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", defaultShutdownTimeout, "how long requests in flight, and the worker, may finish after SIGTERM")
}

// logFlags are --log-format, format by default, and --log-level.
func logFlags(fs *flag.FlagSet, c *Config, format string) {
	c.LogFormat = format
	fs.Func("log-format", fmt.Sprintf("log format: text or json (default %s)", format), func(s string) error {
		if s != "text" && s != "json" {
			return fmt.Errorf("must be text or json")
		}
		c.LogFormat = s
		return nil
	})
	fs.TextVar(&c.LogLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn or error")
}

// readEnv reads what only the environment gives: DATABASE_URL and the
// master keys, each directly or from the file its _FILE variable names.
// Errors name the variable, never its value.
func (m *Main) readEnv() error {
	c := &m.Config
	if c.Client.remote {
		return m.readClientEnv()
	}
	if c.Client.local || c.Command == cmdKeygen || c.Command == cmdBench {
		return nil // neither opens a store nor needs a key
	}
	if c.Command == cmdDev || c.Command == cmdServe || c.Command == cmdRunner || c.Command == cmdSecretsImport {
		if err := c.readLockedNames(); err != nil {
			return err
		}
	}
	if c.Command != cmdDev {
		if err := m.readDatabaseURLs(); err != nil {
			return err
		}
	}
	if c.Command == cmdMigrate {
		return nil
	}
	return m.readKeys()
}

// readLockedNames reads BASELINE_LOCKED_NAMES unless --locked-names was
// given. --locked-names is named by the issue that made it, not by ff's
// rule; LOCKED_NAMES (ff's name) works too, but not both. Like ff, it
// reads the process environment.
func (c *Config) readLockedNames() error {
	v := os.Getenv("BASELINE_LOCKED_NAMES")
	switch {
	case v == "":
	case !c.lockedByFlag:
		c.LockedNames = splitNames(v)
	case os.Getenv("LOCKED_NAMES") != "":
		return errors.New("both BASELINE_LOCKED_NAMES and LOCKED_NAMES are set: set only BASELINE_LOCKED_NAMES")
	}
	return nil
}

// readDatabaseURLs reads DATABASE_URL and DATABASE_MIGRATE_URL.
func (m *Main) readDatabaseURLs() error {
	url, err := m.envOrFile("DATABASE_URL")
	if err != nil {
		return err
	}
	m.Config.DatabaseURL = redacted(url)
	migrateURL, err := m.envOrFile("DATABASE_MIGRATE_URL")
	if err != nil {
		return err
	}
	if migrateURL != "" && url == "" {
		return errors.New("DATABASE_MIGRATE_URL is set but DATABASE_URL is not: set DATABASE_URL to the service's role")
	}
	m.Config.DatabaseMigrateURL = redacted(migrateURL)
	return nil
}

// readKeys reads ENCRYPTION_KEY and ENCRYPTION_KEY_PREVIOUS.
func (m *Main) readKeys() error {
	k := &m.Config.Keys
	cur, err := m.envOrFile("ENCRYPTION_KEY")
	if err != nil {
		return err
	}
	if cur != "" {
		key, err := parseKey("ENCRYPTION_KEY", cur)
		if err != nil {
			return err
		}
		k.Current = key
		k.Source = "ENCRYPTION_KEY"
		if m.Getenv("ENCRYPTION_KEY") == "" {
			k.Source = "ENCRYPTION_KEY_FILE"
		}
	}
	prev, err := m.envOrFile("ENCRYPTION_KEY_PREVIOUS")
	if err != nil {
		return err
	}
	fields := strings.FieldsFunc(prev, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' })
	for i, f := range fields {
		if strings.TrimSpace(f) == "" {
			continue
		}
		key, err := parseKey(fmt.Sprintf("ENCRYPTION_KEY_PREVIOUS (key %d of %d)", i+1, len(fields)), f)
		if err != nil {
			return err
		}
		k.Previous = append(k.Previous, key)
	}
	if len(k.Previous) > 0 && k.Current == nil {
		return errors.New("ENCRYPTION_KEY_PREVIOUS is set but ENCRYPTION_KEY is not: set the current key too")
	}
	return nil
}

// envOrFile returns the variable name, or the trimmed content of the file
// that name_FILE names; setting both is an error.
func (m *Main) envOrFile(name string) (string, error) {
	v, file := m.Getenv(name), m.Getenv(name+"_FILE")
	switch {
	case v != "" && file != "":
		return "", fmt.Errorf("both %s and %s_FILE are set: set only one", name, name)
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			// The path is not secret; the content is never quoted.
			return "", fmt.Errorf("%s_FILE: %w", name, err)
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", fmt.Errorf("%s_FILE: %s is empty", name, file)
		}
		return s, nil
	default:
		return strings.TrimSpace(v), nil
	}
}

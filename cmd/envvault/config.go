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

	"github.com/envvault/envvault/api"
	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffcli"
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
	DataDir         string        // --data-dir, DATA_DIR
	MaxSecrets      int           // --max-secrets, MAX_SECRETS
	BodyLimit       int64         // --body-limit, BODY_LIMIT (bytes)
	SecureCookies   bool          // --secure-cookies, SECURE_COOKIES (dashboard)
	AllowNames      []string      // --allow-names, ALLOW_NAMES (comma-separated)
	LogFormat       string        // --log-format, LOG_FORMAT: text or json
	LogLevel        slog.Level    // --log-level, LOG_LEVEL
	ShutdownTimeout time.Duration // --shutdown-timeout, SHUTDOWN_TIMEOUT

	// The task worker (dev, serve, runner).
	BaselineEnvFile string   // --baseline-env-file, BASELINE_ENV_FILE
	LockedNames     []string // --locked-names, BASELINE_LOCKED_NAMES (comma-separated)
	WorkerID        string   // --worker-id, WORKER_ID; the host name by default
	NoWorker        bool     // --no-worker, NO_WORKER (dev, serve)

	// lockedByFlag says --locked-names (or LOCKED_NAMES, by ff's rule)
	// was given, so BASELINE_LOCKED_NAMES is not read.
	lockedByFlag bool

	UserName string // user create NAME
	JSON     bool   // user create --json, keys status --json

	BatchSize int // keys rotate --batch-size

	OlderThan time.Duration // audit prune --older-than

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

// errUsage is a command line that names no command; the usage has been
// printed.
var errUsage = errors.New("no command given (see envvault --help)")

// ParseFlags fills m.Config from args and the environment. It returns
// flag.ErrHelp (wrapped) after printing help for -h/--help.
func (m *Main) ParseFlags(ctx context.Context, args []string) error {
	root := m.commands()
	if err := root.Parse(args); err != nil {
		return err
	}
	// The Exec functions only record what was selected; Run does the work.
	if err := root.Run(ctx); err != nil {
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

// selected is the Exec of a command that takes no arguments: it records
// cfg as the command Run carries out.
func (m *Main) selected(cfg *Config) func(context.Context, []string) error {
	return func(_ context.Context, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("envvault %s takes no arguments, got %q", cfg.Command, args)
		}
		m.Config = *cfg
		return nil
	}
}

func (m *Main) commands() *ffcli.Command {
	newFS := func(name string) *flag.FlagSet {
		fs := flag.NewFlagSet(name, flag.ContinueOnError)
		fs.SetOutput(m.Stderr)
		return fs
	}
	opts := []ff.Option{ff.WithEnvVars()}

	// Each command fills its own Config, so that one command's flag
	// defaults (dev's --addr 127.0.0.1:8080) never leak into another's.
	dev := &Config{Command: cmdDev}
	devFS := newFS("envvault dev")
	storeFlags(devFS, dev)
	serverFlags(devFS, dev, "127.0.0.1:8080", "text")
	workerFlags(devFS, dev, true)

	serve := &Config{Command: cmdServe}
	serveFS := newFS("envvault serve")
	storeFlags(serveFS, serve)
	serverFlags(serveFS, serve, "0.0.0.0:8080", "json")
	workerFlags(serveFS, serve, true)

	run := &Config{Command: cmdRunner}
	runFS := newFS("envvault runner")
	storeFlags(runFS, run)
	workerFlags(runFS, run, false)
	shutdownFlag(runFS, run)
	logFlags(runFS, run, "json")

	migrate := &Config{Command: cmdMigrate}
	migrateFS := newFS("envvault migrate")
	storeFlags(migrateFS, migrate)
	logFlags(migrateFS, migrate, "text")

	create := &Config{Command: cmdUserCreate}
	createFS := newFS("envvault user create")
	storeFlags(createFS, create)
	logFlags(createFS, create, "text")
	createFS.BoolVar(&create.JSON, "json", false, `print {"user_id":"usr_…","token":"…"} instead of text`)

	keygen := &Config{Command: cmdKeygen}

	user := &ffcli.Command{
		Name:       "user",
		ShortUsage: "envvault user create NAME [--json]",
		ShortHelp:  "manage users",
		FlagSet:    newFS("envvault user"),
		Options:    opts,
		Subcommands: []*ffcli.Command{{
			Name:       "create",
			ShortUsage: "envvault user create [flags] NAME [--json]",
			ShortHelp:  "create a user and print its id and a new API token",
			LongHelp: `Creates a user in the store that serve and dev use (the same --data-dir,
DATABASE_URL) and prints its id and API token. The token is shown only this
once; only its SHA-256 is stored.

The master key is ENCRYPTION_KEY. When it is unset and the store is the
SQLite file of --data-dir, the development key <data-dir>/dev.key that
"envvault dev" made is used, so that users can be added to a dev vault.

` + envHelp + "\n\n" + keyHelp,
			FlagSet: createFS,
			Options: opts,
			Exec: func(_ context.Context, args []string) error {
				if len(args) == 0 {
					return fmt.Errorf("envvault user create needs a NAME: envvault user create alice")
				}
				create.UserName = args[0]
				// Go's flag package stops at the first argument, so parse
				// what follows NAME too: `user create alice --json`.
				if err := createFS.Parse(args[1:]); err != nil {
					return err
				}
				if createFS.NArg() > 0 {
					return fmt.Errorf("envvault user create takes one NAME, got also %q", createFS.Args())
				}
				m.Config = *create
				return nil
			},
		}},
	}
	user.Exec = func(_ context.Context, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("unknown command \"user %s\" (see envvault user --help)", args[0])
		}
		fmt.Fprint(m.Stderr, ffcli.DefaultUsageFunc(user))
		return errUsage
	}

	var root *ffcli.Command
	root = &ffcli.Command{
		Name:       "envvault",
		ShortUsage: "envvault <command> [flags]",
		ShortHelp:  "envvault keeps secrets encrypted and gives each agent profile the ones granted to it",
		LongHelp: `Start here:   envvault dev         (a development vault in ./data, no setup)
Production:   envvault serve       (needs ENCRYPTION_KEY; DATABASE_URL for PostgreSQL)
Run "envvault <command> --help" for the flags of a command.`,
		FlagSet: newFS("envvault"),
		Options: opts,
		Subcommands: []*ffcli.Command{
			{
				Name:       "dev",
				ShortUsage: "envvault dev [flags]",
				ShortHelp:  "run a development vault: SQLite in --data-dir, a generated key, a ready user",
				LongHelp: `Runs the vault for development on 127.0.0.1:8080 with text logs. The store
is the SQLite file <data-dir>/envvault.db (DATABASE_URL is ignored).

Unless ENCRYPTION_KEY is set, the master key is <data-dir>/dev.key, generated
with mode 0600 on first run and reused after. It sits beside the data it
protects: it is for development only, never for real secrets.

On the first start with an empty store it creates the user "dev" and prints
its API token, once, with an example curl.

` + envHelp,
				FlagSet: devFS,
				Options: opts,
				Exec:    m.selected(dev),
			},
			{
				Name:       "serve",
				ShortUsage: "envvault serve [flags]",
				ShortHelp:  "run the vault in production (needs ENCRYPTION_KEY)",
				LongHelp: `Runs the vault with JSON logs on 0.0.0.0:8080. Start-up applies the
migrations, then proves ENCRYPTION_KEY opens the database's key check and
every data key, and stops with a clear message if not.

` + envHelp + "\n\n" + keyHelp,
				FlagSet: serveFS,
				Options: opts,
				Exec:    m.selected(serve),
			},
			{
				Name:       "migrate",
				ShortUsage: "envvault migrate [flags]",
				ShortHelp:  "apply the database migrations and say what was applied",
				LongHelp: `Applies the embedded migrations to the store that serve would use
(DATABASE_URL, else <data-dir>/envvault.db). serve and dev apply them at
start-up too; running it twice, or from two processes at once, is safe.

` + envHelp + "\n\n" + keyHelp,
				FlagSet: migrateFS,
				Options: opts,
				Exec:    m.selected(migrate),
			},
			{
				Name:       "runner",
				ShortUsage: "envvault runner [flags]",
				ShortHelp:  "run a task worker alone, without the HTTP API, beside its own Docker Engine",
				LongHelp: `Runs a task worker and nothing else: it claims the tasks queued in the
database, starts their containers on the Docker Engine of DOCKER_HOST (the
local socket if unset) and records their logs and end. Run one per Docker
host, each with its own --worker-id, against the PostgreSQL database of
DATABASE_URL that the serve processes use; give all of them the same
--baseline-env-file and --locked-names. serve and dev run a worker of their
own unless --no-worker.

Without DATABASE_URL the store is the SQLite file of --data-dir, which only
processes on this host can share: there, serve's own worker is enough, and a
runner is useful only beside a serve --no-worker.

SIGTERM stops claiming and returns; containers of running tasks keep
running, and the next start with the same --worker-id attaches to them.

` + envHelp + "\n\n" + keyHelp,
				FlagSet: runFS,
				Options: opts,
				Exec:    m.selected(run),
			},
			user,
			m.keysCommand(newFS, opts),
			m.secretsCommand(newFS),
			m.auditCommand(newFS, opts),
			{
				Name:       "keygen",
				ShortUsage: "envvault keygen",
				ShortHelp:  "print a fresh random master key (base64 of 32 bytes) for ENCRYPTION_KEY",
				FlagSet:    newFS("envvault keygen"),
				Options:    opts,
				Exec:       m.selected(keygen),
			},
		},
		Exec: func(_ context.Context, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unknown command %q (see envvault --help)", args[0])
			}
			fmt.Fprint(m.Stderr, ffcli.DefaultUsageFunc(root))
			return errUsage
		},
	}
	return root
}

// workerFlags are the flags of the commands that run a task worker; dev
// and serve also take --no-worker.
func workerFlags(fs *flag.FlagSet, c *Config, noWorker bool) {
	fs.StringVar(&c.BaselineEnvFile, "baseline-env-file", "", "dotenv file of the platform's baseline env, given to every task (see the README for its grammar)")
	fs.Func("locked-names", "comma-separated baseline names no profile or secret can override; no secret may take one (env BASELINE_LOCKED_NAMES)", func(s string) error {
		c.lockedByFlag = true
		c.LockedNames = append(c.LockedNames, splitNames(s)...)
		return nil
	})
	host, _ := os.Hostname()
	fs.StringVar(&c.WorkerID, "worker-id", host, "name of this process's task worker: unique among the processes sharing a database, and the same across restarts, so that a restart recovers its tasks")
	if noWorker {
		fs.BoolVar(&c.NoWorker, "no-worker", false, "run no task worker: tasks stay queued for envvault runner processes on the same database")
	}
}

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

func storeFlags(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&c.DataDir, "data-dir", defaultDataDir, "directory of the SQLite store (and of dev.key in dev); unused with DATABASE_URL")
}

func serverFlags(fs *flag.FlagSet, c *Config, addr, logFormat string) {
	fs.StringVar(&c.Addr, "addr", addr, "address to listen on, host:port (port 0 picks a free one, logged as \"listening\")")
	fs.IntVar(&c.MaxSecrets, "max-secrets", 1000, "most secrets one user may hold")
	fs.Int64Var(&c.BodyLimit, "body-limit", api.DefaultBodyLimit, "largest request body in bytes (413 above)")
	fs.BoolVar(&c.SecureCookies, "secure-cookies", false, "mark the dashboard's cookies Secure even on plain HTTP, behind a proxy that terminates TLS (requests over TLS always get them)")
	fs.Func("allow-names", "comma-separated secret names to take off the denied list (LD_PRELOAD, NODE_OPTIONS, ...)", func(s string) error {
		c.AllowNames = append(c.AllowNames, splitNames(s)...)
		return nil
	})
	shutdownFlag(fs, c)
	logFlags(fs, c, logFormat)
}

func shutdownFlag(fs *flag.FlagSet, c *Config) {
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", defaultShutdownTimeout, "how long requests in flight, and the worker, may finish after SIGTERM")
}

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
	if c.Command == cmdKeygen {
		return nil
	}
	if c.Command == cmdDev || c.Command == cmdServe || c.Command == cmdRunner || c.Command == cmdSecretsImport {
		// --locked-names is named by the issue that made it, not by
		// ff's rule; LOCKED_NAMES (ff's name) works too, but not both.
		// Like ff, read them from the process environment.
		if v := os.Getenv("BASELINE_LOCKED_NAMES"); v != "" {
			if c.lockedByFlag {
				if os.Getenv("LOCKED_NAMES") != "" {
					return errors.New("both BASELINE_LOCKED_NAMES and LOCKED_NAMES are set: set only BASELINE_LOCKED_NAMES")
				}
			} else {
				c.LockedNames = splitNames(v)
			}
		}
	}
	if c.Command != cmdDev {
		url, err := m.envOrFile("DATABASE_URL")
		if err != nil {
			return err
		}
		c.DatabaseURL = redacted(url)
		migrateURL, err := m.envOrFile("DATABASE_MIGRATE_URL")
		if err != nil {
			return err
		}
		if migrateURL != "" && url == "" {
			return errors.New("DATABASE_MIGRATE_URL is set but DATABASE_URL is not: set DATABASE_URL to the service's role")
		}
		c.DatabaseMigrateURL = redacted(migrateURL)
	}
	if c.Command == cmdMigrate {
		return nil
	}
	cur, err := m.envOrFile("ENCRYPTION_KEY")
	if err != nil {
		return err
	}
	if cur != "" {
		key, err := parseKey("ENCRYPTION_KEY", cur)
		if err != nil {
			return err
		}
		c.Keys.Current = key
		c.Keys.Source = "ENCRYPTION_KEY"
		if m.Getenv("ENCRYPTION_KEY") == "" {
			c.Keys.Source = "ENCRYPTION_KEY_FILE"
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
		c.Keys.Previous = append(c.Keys.Previous, key)
	}
	if len(c.Keys.Previous) > 0 && c.Keys.Current == nil {
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

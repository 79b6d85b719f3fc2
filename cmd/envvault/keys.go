package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/envvault/envvault/seal"
	"github.com/envvault/envvault/vault"
)

// The master-key commands.
const (
	cmdKeysRotate = "keys rotate"
	cmdKeysStatus = "keys status"
)

const keysHelp = `Rotating the master key without downtime:
  1. envvault keygen                     a new key
  2. restart every envvault serve (and runner) with
       ENCRYPTION_KEY=<new key>  ENCRYPTION_KEY_PREVIOUS=<old key>
     new data keys are sealed under the new key, old ones still open
  3. envvault keys rotate                same variables: re-wraps the data
                                         keys still under the old key
  4. envvault keys status                shows 0 data keys under the old key
  5. remove ENCRYPTION_KEY_PREVIOUS and restart serve`

// keysCommand is `envvault keys`: rotate and status. They take the store
// and key settings serve takes.
func (m *Main) keysCommand() *ffcli.Command {
	return m.group(&ffcli.Command{
		Name:        "keys",
		ShortUsage:  "envvault keys rotate|status [flags]",
		ShortHelp:   "rotate the master key: re-wrap data keys, count them per master key",
		LongHelp:    keysHelp,
		Subcommands: []*ffcli.Command{m.keysRotateCommand(), m.keysStatusCommand()},
	})
}

// keysRotateCommand is `envvault keys rotate`.
func (m *Main) keysRotateCommand() *ffcli.Command {
	c, fs := m.newCommand(cmdKeysRotate, "text")
	fs.IntVar(&c.BatchSize, "batch-size", vault.DefaultRotateBatchSize, "data keys re-wrapped per transaction")
	metricsFlag(fs, c)
	selected := m.selected(c)
	return m.leaf(c, fs, &ffcli.Command{
		ShortUsage: "envvault keys rotate [flags]",
		ShortHelp:  "re-wrap every data key still sealed under an older master key",
		LongHelp: `Re-wraps every data key still sealed under a master key other than
ENCRYPTION_KEY: opens it with ENCRYPTION_KEY or one of ENCRYPTION_KEY_PREVIOUS,
and seals it again under ENCRYPTION_KEY. Values are not re-encrypted. It
works in batches, each its own short transaction, while serve keeps serving;
a secret changed meanwhile keeps what was written.

It shows a progress bar on a terminal, progress lines otherwise. Ctrl-C
stops it after the batch in flight; run it again to resume. When no data key
is left under another master key, the key check values of the old keys are
deleted.

` + keysHelp + "\n\n" + envHelp + "\n\n" + keyHelp,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) == 0 && c.BatchSize < 1 {
				return fmt.Errorf("--batch-size must be at least 1, got %d", c.BatchSize)
			}
			return selected(ctx, args)
		},
	})
}

// keysStatusCommand is `envvault keys status`.
func (m *Main) keysStatusCommand() *ffcli.Command {
	c, fs := m.newCommand(cmdKeysStatus, "text")
	fs.BoolVar(&c.JSON, "json", false, `print {"current":"…","keys":[{"key_id":"…","role":"…","data_keys":N,"can_drop":…}]}`)
	return m.leaf(c, fs, &ffcli.Command{
		ShortUsage: "envvault keys status [flags]",
		ShortHelp:  "count data keys per master key, and say which old key can be dropped",
		LongHelp: `Counts the data keys sealed under each master key, marking the current key
(ENCRYPTION_KEY), the previous ones (ENCRYPTION_KEY_PREVIOUS) and unknown ones
(configured nowhere: serve refuses to start while any data key needs one),
and says which previous key can be dropped.

` + envHelp + "\n\n" + keyHelp,
	})
}

// keygenCommand is `envvault keygen`. It takes no flags and reads nothing.
func (m *Main) keygenCommand() *ffcli.Command {
	c := &Config{Command: cmdKeygen}
	return m.leaf(c, m.flagSet("envvault keygen"), &ffcli.Command{
		ShortUsage: "envvault keygen",
		ShortHelp:  "print a fresh random master key (base64 of 32 bytes) for ENCRYPTION_KEY",
	})
}

// runKeygen is `envvault keygen`.
func (m *Main) runKeygen(context.Context) error {
	_, err := fmt.Fprintln(m.Stdout, seal.GenerateKey())
	return err
}

// openKeysService opens the store and a service on it, without the
// start-up check of CheckKeys: status must show what the check would
// refuse, and RotateKeys runs the check itself.
func (m *Main) openKeysService(ctx context.Context) (*vault.Service, *seal.Keyring, error) {
	keys, err := m.keyring()
	if err != nil {
		return nil, nil, err
	}
	store, _, err := m.openStore(ctx)
	if err != nil {
		return nil, nil, err
	}
	return vault.NewService(store, keys, vault.Options{}), keys, nil
}

// previousKeyIDs returns the ids of the keys of ENCRYPTION_KEY_PREVIOUS.
func (m *Main) previousKeyIDs() []string {
	ids := make([]string, len(m.Config.Keys.Previous))
	for i, k := range m.Config.Keys.Previous {
		ids[i] = seal.KeyID(k)
	}
	return ids
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (m *Main) runKeysRotate(ctx context.Context) error {
	svc, keys, err := m.openKeysService(ctx)
	if err != nil {
		return err
	}
	if err := m.startMetrics(keys.CurrentID()); err != nil {
		return err
	}
	out := m.Stdout
	fmt.Fprintf(out, "Re-wrapping data keys under master key %s (%s), %d per batch.\n",
		keys.CurrentID(), m.Config.Keys.Source, m.Config.BatchSize)

	var show progressShow = &progressLines{w: out}
	if isTerminal(out) {
		show = &progressBar{w: out}
	}
	started := time.Now()
	res, err := svc.RotateKeys(ctx, vault.RotateOptions{
		BatchSize: m.Config.BatchSize,
		Progress: func(done, total int) {
			m.metrics.m.RotationProgress(done, total)
			if total > 0 {
				show.progress(done, total, time.Since(started))
			}
		},
	})
	show.end()
	took := time.Since(started).Round(time.Millisecond)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			fmt.Fprintf(out, "Interrupted after the batch in flight: rotated %d of %d, took %s.\n", res.Rotated, res.Total, took)
			return fmt.Errorf("key rotation interrupted: run `envvault keys rotate` again, with the same keys, to resume; it picks up the %d data keys still under older master keys",
				res.Total-res.Rotated)
		}
		if res.Total > 0 || res.Rotated > 0 {
			fmt.Fprintf(out, "Stopped: rotated %d of %d, took %s.\n", res.Rotated, res.Total, took)
		}
		return fmt.Errorf("key rotation: %w", err)
	}
	if res.Total == 0 {
		fmt.Fprintf(out, "Nothing to rotate: all %d data keys are sealed under master key %s already, took %s.\n",
			res.AlreadyCurrent, res.CurrentKeyID, took)
	} else {
		rate := ""
		if s := took.Seconds(); s > 0 {
			rate = fmt.Sprintf(" (%.0f data keys/s)", float64(res.Rotated)/s)
		}
		fmt.Fprintf(out, "Done: rotated %d, already current %d, took %s%s.\n", res.Rotated, res.AlreadyCurrent, took, rate)
		if written := res.Total - res.Rotated; written > 0 {
			fmt.Fprintf(out, "%d data keys were rewritten under master key %s by the service meanwhile (a new value or name).\n", written, res.CurrentKeyID)
		}
	}
	if len(res.DroppedChecks) > 0 {
		fmt.Fprintf(out, "Deleted the key check values of master keys %s.\n", strings.Join(res.DroppedChecks, ", "))
	}
	fmt.Fprintf(out, "No data key is sealed under another master key than %s.\n", res.CurrentKeyID)
	if prev := m.previousKeyIDs(); len(prev) > 0 {
		fmt.Fprintf(out, "The previous keys (%s) can be dropped: remove ENCRYPTION_KEY_PREVIOUS and restart envvault serve.\n", strings.Join(prev, ", "))
	}
	return nil
}

// progressShow shows the progress of a rotation.
type progressShow interface {
	progress(done, total int, elapsed time.Duration)
	end()
}

// progressBar draws a progress bar on a terminal.
type progressBar struct {
	w   io.Writer
	bar *progressbar.ProgressBar
}

func (p *progressBar) progress(done, total int, _ time.Duration) {
	if p.bar == nil {
		p.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription("re-wrapping"),
			progressbar.OptionSetWidth(30),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("keys"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
		)
	}
	_ = p.bar.Set(done)
}

func (p *progressBar) end() {
	if p.bar != nil {
		_ = p.bar.Finish()
		fmt.Fprintln(p.w)
	}
}

// progressLines prints a line after the first batch, at every tenth of the
// way, at most every few seconds in between, and at the end.
type progressLines struct {
	w         io.Writer
	lastDone  int // 0 before the first line
	lastTenth int
	last      time.Duration
}

const progressLineEvery = 5 * time.Second

func (p *progressLines) progress(done, total int, elapsed time.Duration) {
	if done == 0 {
		fmt.Fprintf(p.w, "%d data keys to re-wrap\n", total)
		return
	}
	tenth := done * 10 / total
	if done == p.lastDone || p.lastDone > 0 && tenth == p.lastTenth && elapsed-p.last < progressLineEvery && done < total {
		return
	}
	p.lastDone, p.lastTenth, p.last = done, tenth, elapsed
	fmt.Fprintf(p.w, "re-wrapped %d of %d data keys (%d%%), %s\n", done, total, done*100/total, elapsed.Round(time.Millisecond))
}

func (p *progressLines) end() {}

// keyStatus is one line of `keys status`.
type keyStatus struct {
	KeyID    string `json:"key_id"`
	Role     string `json:"role"` // current, previous or unknown
	DataKeys int    `json:"data_keys"`
	CanDrop  bool   `json:"can_drop"` // a previous key that seals nothing
}

func (m *Main) runKeysStatus(ctx context.Context) error {
	svc, _, err := m.openKeysService(ctx)
	if err != nil {
		return err
	}
	counts, current, err := svc.KeyStatus(ctx)
	if err != nil {
		return err
	}
	previous := m.previousKeyIDs()
	var rows []keyStatus
	rows = append(rows, keyStatus{KeyID: current, Role: "current", DataKeys: counts[current]})
	for _, id := range previous {
		rows = append(rows, keyStatus{KeyID: id, Role: "previous", DataKeys: counts[id], CanDrop: counts[id] == 0})
	}
	var unknown []string
	for id := range counts {
		if id != current && !slices.Contains(previous, id) {
			unknown = append(unknown, id)
		}
	}
	slices.Sort(unknown)
	for _, id := range unknown {
		rows = append(rows, keyStatus{KeyID: id, Role: "unknown", DataKeys: counts[id]})
	}
	if m.Config.JSON {
		return writeJSON(m.Stdout, map[string]any{"current": current, "keys": rows})
	}

	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MASTER KEY\tROLE\tDATA KEYS")
	for _, r := range rows {
		role := r.Role
		switch r.Role {
		case "current":
			role = "current (ENCRYPTION_KEY)"
		case "previous":
			role = "previous (ENCRYPTION_KEY_PREVIOUS)"
		case "unknown":
			role = "unknown: not configured"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\n", r.KeyID, role, r.DataKeys)
	}
	tw.Flush()
	b.WriteString("\n")
	for _, r := range rows {
		switch {
		case r.CanDrop:
			fmt.Fprintf(&b, "Master key %s seals no data key: it can be dropped from ENCRYPTION_KEY_PREVIOUS (then restart envvault serve).\n", r.KeyID)
		case r.Role == "previous":
			fmt.Fprintf(&b, "Master key %s still seals %d data keys: run envvault keys rotate before dropping it.\n", r.KeyID, r.DataKeys)
		case r.Role == "unknown":
			fmt.Fprintf(&b, "Master key %s seals %d data keys but is not configured: serve refuses to start until it is in ENCRYPTION_KEY_PREVIOUS.\n", r.KeyID, r.DataKeys)
		}
	}
	if len(rows) == 1 {
		fmt.Fprintf(&b, "Every data key is sealed under the current master key %s.\n", current)
	}
	_, err = io.WriteString(m.Stdout, b.String())
	return err
}

package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/envvault/envvault/postgres"
	"github.com/envvault/envvault/vault"
)

// The audit trail's commands.
const (
	cmdAuditVerify = "audit verify"
	cmdAuditPrune  = "audit prune"
)

// defaultRetention is how long audit events are kept unless --older-than
// says otherwise: seven years.
const defaultRetention = 2555 * 24 * time.Hour

const auditHelp = `The audit trail records every change to secrets, profiles, tokens and
users, every failed sign-in and every task start's release of secrets (names,
ids and versions, never a value), each in the transaction of the change. Its
events form one hash chain: each holds the SHA-256 of its content and of the
event before it, so that a changed, deleted or reordered row breaks it.`

// auditCommand is `envvault audit`: verify and prune. They take the store
// settings serve takes; no master key.
func (m *Main) auditCommand() *ffcli.Command {
	return m.group(&ffcli.Command{
		Name:        "audit",
		ShortUsage:  "envvault audit verify|prune [flags]",
		ShortHelp:   "check the audit trail's hash chain, or delete its oldest events",
		LongHelp:    auditHelp,
		Subcommands: []*ffcli.Command{m.auditVerifyCommand(), m.auditPruneCommand()},
	})
}

// auditVerifyCommand is `envvault audit verify`.
func (m *Main) auditVerifyCommand() *ffcli.Command {
	c, fs := m.newCommand(cmdAuditVerify, "text")
	return m.leaf(c, fs, &ffcli.Command{
		ShortUsage: "envvault audit verify [flags]",
		ShortHelp:  "walk the audit chain and report the first event where it breaks",
		LongHelp: `Walks the audit trail from its oldest event kept to its newest, recomputes
every event's hash and checks that each follows the one before. Prints
"ok: N events, chain intact" and the head's hash (keep it elsewhere: a chain
rewritten whole from some event on verifies again, but ends at another
head), or fails, naming the first event where the chain breaks and why: its
content changed, events missing (deleted), or out of order (reordered).

` + auditHelp + "\n\n" + envHelp,
	})
}

// auditPruneCommand is `envvault audit prune`.
func (m *Main) auditPruneCommand() *ffcli.Command {
	c, fs := m.newCommand(cmdAuditPrune, "text")
	c.OlderThan = defaultRetention
	fs.Func("older-than", "delete the events older than this: days (2555d, the default: seven years) or a Go duration (720h)", func(s string) error {
		d, err := parseRetention(s)
		if err != nil {
			return err
		}
		c.OlderThan = d
		return nil
	})
	return m.leaf(c, fs, &ffcli.Command{
		ShortUsage: "envvault audit prune [--older-than 2555d] [flags]",
		ShortHelp:  "delete the audit events older than the retention, keeping the chain verifiable",
		LongHelp: `Deletes the oldest audit events: every event before the first one at or
after now minus --older-than (default 2555 days). The chain stays
verifiable from the oldest event kept, whose predecessor's hash is kept as
the chain's anchor. It verifies the chain first and deletes nothing if it
is broken, so that the evidence stays; it records the prune itself as an
audit.prune event. On PostgreSQL it needs the tables' owner: the role of
DATABASE_MIGRATE_URL when set (the service's role may not delete events).

` + auditHelp + "\n\n" + envHelp,
	})
}

// parseRetention reads --older-than: whole days ("2555d") or a Go
// duration ("720h"), positive.
func parseRetention(s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 1 || n > 100*366 {
			return 0, fmt.Errorf("%q: want whole days, 1d to 36600d, or a Go duration such as 720h", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%q: want days (2555d) or a Go duration (720h)", s)
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q: must be more than 0", s)
	}
	return d, nil
}

// verifyAudit opens the store and walks its audit chain. A broken chain
// is in the report, not an error.
func (m *Main) verifyAudit(ctx context.Context) (db, vault.AuditReport, error) {
	store, _, err := m.openStore(ctx)
	if err != nil {
		return nil, vault.AuditReport{}, err
	}
	rep, err := vault.VerifyAudit(ctx, store)
	if err != nil {
		return nil, vault.AuditReport{}, fmt.Errorf("verify the audit trail of %s: %w", m.storeName(), err)
	}
	return store, rep, nil
}

// runAuditVerify is `envvault audit verify`.
func (m *Main) runAuditVerify(ctx context.Context) error {
	_, rep, err := m.verifyAudit(ctx)
	if err != nil {
		return err
	}
	if rep.Break != nil {
		return fmt.Errorf("audit chain broken at seq %d: %s (%d events before it verified)", rep.Break.Seq, rep.Break.Reason, rep.Events)
	}
	if rep.Linked > 0 {
		// A process stopped between a write's commit and its link pass.
		if _, err := fmt.Fprintf(m.Stdout, "linked %d events that were committed but not yet in the chain\n", rep.Linked); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintf(m.Stdout, "ok: %d events, chain intact\n%s\n", rep.Events, describeChain(rep.Head))
	return err
}

// describeChain says where a chain starts and ends.
func describeChain(h vault.AuditHead) string {
	if h.Seq == 0 {
		return "no event recorded yet"
	}
	start := "from seq 1"
	if h.FirstSeq > 1 {
		start = fmt.Sprintf("from seq %d (earlier events pruned; anchor %s)", h.FirstSeq, vault.HexHash(h.AnchorHash))
	}
	if h.FirstSeq > h.Seq {
		return fmt.Sprintf("every event up to seq %d pruned; head %s", h.Seq, vault.HexHash(h.Hash))
	}
	return fmt.Sprintf("%s to seq %d; head %s", start, h.Seq, vault.HexHash(h.Hash))
}

// runAuditPrune is `envvault audit prune`.
func (m *Main) runAuditPrune(ctx context.Context) error {
	store, rep, err := m.verifyAudit(ctx)
	if err != nil {
		return err
	}
	if rep.Break != nil {
		return fmt.Errorf("not pruning: the audit chain is broken at seq %d: %s; run envvault audit verify, and keep the evidence", rep.Break.Seq, rep.Break.Reason)
	}
	// On PostgreSQL the owner prunes: the service's role may not delete.
	var pruner vault.AuditStore = store
	if url := string(m.Config.DatabaseMigrateURL); url != "" {
		owner, err := postgres.Open(ctx, url)
		if err != nil {
			return fmt.Errorf("open PostgreSQL (DATABASE_MIGRATE_URL): %w", err)
		}
		defer owner.Close()
		pruner = owner
	}
	before := time.Now().Add(-m.Config.OlderThan).UTC().Truncate(time.Microsecond)
	n, head, err := pruner.PruneAudit(ctx, before)
	if err != nil {
		return err
	}
	if n == 0 {
		_, err = fmt.Fprintf(m.Stdout, "nothing to prune: no audit event before %s\n%s\n", before.Format(time.RFC3339), describeChain(head))
		return err
	}
	// The prune is itself an event: who pruned is the operator, what
	// remains is said in its details.
	ev := &vault.AuditEvent{
		Time: time.Now().UTC().Truncate(time.Microsecond), Action: vault.ActionAuditPrune, TargetType: vault.TargetAudit,
		Details: map[string]any{"before": before.Format(time.RFC3339Nano), "deleted": n, "first_seq": head.FirstSeq},
	}
	if err := pruner.AppendAuditEvent(ctx, ev); err != nil {
		return fmt.Errorf("pruned %d audit events, but could not record the prune: %w", n, err)
	}
	// The head after the prune's event (which a store may link after its
	// commit, and so not number in ev).
	if head, err = pruner.AuditHead(ctx); err != nil {
		return fmt.Errorf("pruned %d audit events: %w", n, err)
	}
	_, err = fmt.Fprintf(m.Stdout, "pruned %d audit events from before %s; the chain verifies from seq %d\n%s\n",
		n, before.Format(time.RFC3339), head.FirstSeq, describeChain(head))
	return err
}

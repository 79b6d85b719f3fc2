package vault

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"iter"
	"strconv"
)

// The audit trail is one chain of events, global to the store and totally
// ordered by Seq. Every change the Service makes appends its event inside
// the transaction of the change (Tx.AppendAudit), so a change whose event
// cannot be written does not happen. Each event holds the hash of the one
// before it, so changing, deleting or reordering a stored event breaks the
// chain where it was done, and VerifyAudit reports that row.
//
// Appending takes no lock that writes share: on PostgreSQL an event is
// inserted unlinked (no Seq, PrevHash or Hash yet) in the write's own
// transaction, and placed in the chain after the commit by a link pass
// (AuditStore.LinkAudit), which takes the chain's lock for a transaction
// of its own and links every event committed by then, in order of append.
// The write waits for that pass before it returns, so the pass serves
// every write that committed meanwhile, whoever's. An event left unlinked
// (its process stopped between the commit and the pass) is linked by the
// next pass of any write, or by VerifyAudit, which links first. None is
// skipped: a pass links every unlinked row it sees, and a row is seen by
// every pass that begins after its commit.
//
// The hash of an event is SHA-256 over this encoding, where u64(x) is x as
// 8 bytes big endian and f(b) is the length of b as 4 bytes big endian
// followed by b:
//
//	f("envvault audit v1") | u64(Seq) | u64(Time as unix microseconds) |
//	f(UserID) | f(TokenID) | f(RequestID) | f(ClientAddr) | f(Action) |
//	f(TargetType) | f(TargetID) | f(canonical Details) | f(PrevHash)
//
// Every text field is its UTF-8 bytes; an absent one ("", a NULL user id)
// is empty. Every variable field is length-prefixed, so no two events
// encode alike. Canonical Details is the JSON object as Go's encoding/json
// writes it: keys sorted bytewise, no insignificant space, strings with
// encoding/json's escapes (including \u003c, \u003e, \u0026, \u2028,
// \u2029), numbers as integer literals; an empty or nil map is {}. Details
// hold only strings, booleans, integers, null, and arrays and objects of
// those: a store's JSON type (PostgreSQL jsonb) may reorder keys and
// respace, which canonicalization undoes, but could rewrite other numbers.
//
// PrevHash of the first event ever is empty. Pruning deletes the oldest
// events and keeps, as the chain's anchor, the PrevHash of the oldest event
// kept (AuditHead.AnchorHash), so the rest still verifies.
const auditHashDomain = "envvault audit v1"

// AuditHead is the state of the chain: its last event, and its anchor, the
// oldest event kept and what it follows.
type AuditHead struct {
	Seq        int64  // of the last event appended; 0 before the first
	Hash       []byte // of that event; empty before the first
	FirstSeq   int64  // of the oldest event kept; Seq+1 when none is kept
	AnchorHash []byte // the PrevHash of the event at FirstSeq
}

// Chain sets e's place in the chain, after the event whose hash is prev, and
// computes its hash. It returns the canonical JSON of e.Details, which the
// store keeps. Returns EINVALID if Details hold a value they may not.
func (e *AuditEvent) Chain(seq int64, prev []byte) ([]byte, error) {
	e.Seq = seq
	e.PrevHash = bytes.Clone(prev)
	if e.PrevHash == nil {
		e.PrevHash = []byte{}
	}
	details, err := e.DetailsJSON()
	if err != nil {
		return nil, err
	}
	e.Hash = e.hash(details)
	return details, nil
}

// ComputeHash returns the hash e's content gives, for comparing with the
// stored e.Hash. Returns EINVALID if Details hold a value they may not.
func (e *AuditEvent) ComputeHash() ([]byte, error) {
	details, err := e.DetailsJSON()
	if err != nil {
		return nil, err
	}
	return e.hash(details), nil
}

func (e *AuditEvent) hash(details []byte) []byte {
	field := func(b []byte, s []byte) []byte {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		return append(b, s...)
	}
	b := make([]byte, 0, 256+len(details))
	b = field(b, []byte(auditHashDomain))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Seq))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Time.UnixMicro()))
	for _, s := range []string{e.UserID, e.TokenID, e.RequestID, e.ClientAddr, e.Action, e.TargetType, e.TargetID} {
		b = field(b, []byte(s))
	}
	b = field(b, details)
	b = field(b, e.PrevHash)
	sum := sha256.Sum256(b)
	return sum[:]
}

// DetailsJSON returns the canonical JSON of e.Details (see auditHashDomain).
// Returns EINVALID if they hold a value other than a string, a boolean, an
// integer, null, or an array or object of those.
func (e *AuditEvent) DetailsJSON() ([]byte, error) {
	if len(e.Details) == 0 {
		return []byte("{}"), nil
	}
	raw, err := json.Marshal(e.Details)
	if err != nil {
		return nil, Invalid("details", "cannot be encoded as JSON: %v", err)
	}
	v, err := decodeDetails(raw)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// DecodeAuditDetails decodes the details a store kept, numbers as
// json.Number, so that DetailsJSON gives back the canonical JSON they were
// hashed as. Returns EINVALID if raw is not a JSON object of allowed values.
func DecodeAuditDetails(raw []byte) (map[string]any, error) {
	return decodeDetails(raw)
}

func decodeDetails(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, Invalid("details", "must be a JSON object")
	}
	if dec.More() {
		return nil, Invalid("details", "must be one JSON object")
	}
	if err := checkDetail(m); err != nil {
		return nil, err
	}
	return m, nil
}

// checkDetail refuses a number that is not an integer literal as
// strconv.FormatInt writes it: only those survive every store unchanged.
func checkDetail(v any) error {
	switch x := v.(type) {
	case map[string]any:
		for _, y := range x {
			if err := checkDetail(y); err != nil {
				return err
			}
		}
	case []any:
		for _, y := range x {
			if err := checkDetail(y); err != nil {
				return err
			}
		}
	case json.Number:
		n, err := strconv.ParseInt(string(x), 10, 64)
		if err != nil || strconv.FormatInt(n, 10) != string(x) {
			return Invalid("details", "numbers must be integers, got %s", truncate(string(x), 40))
		}
	}
	return nil
}

// AuditBreak is where and why a chain does not verify.
type AuditBreak struct {
	Seq    int64
	Reason string
}

func (b *AuditBreak) Error() string { return fmt.Sprintf("seq %d: %s", b.Seq, b.Reason) }

// AuditReport is what VerifyAudit found.
type AuditReport struct {
	Events int64 // events checked
	// Linked is how many committed events were not yet in the chain and
	// were linked before the walk: a write's process stopped between its
	// commit and its link pass.
	Linked int64
	Head   AuditHead // the head the walk went up to
	Break  *AuditBreak
}

// auditBatch is how many events VerifyAudit reads at a time.
const auditBatch = 1000

// VerifyAudit links the events committed but not yet in the chain
// (LinkAudit), then walks the chain from its anchor (the oldest event kept)
// to the head it reads first, recomputes every hash, and reports the first
// event where the chain breaks: a gap in Seq (deleted events), a PrevHash
// that is not the hash of the event before (events reordered, or the one
// before rewritten with a recomputed hash), a hash that its content does
// not give (content changed), or a last event that is not the head (events
// deleted at the end). Events appended while it runs are not checked. An
// error is returned only if the store could not be read.
func VerifyAudit(ctx context.Context, st AuditStore) (AuditReport, error) {
	linked, err := st.LinkAudit(ctx)
	if err != nil {
		return AuditReport{}, fmt.Errorf("link the audit events not yet in the chain: %w", err)
	}
	rep, err := verifyAuditAgain(ctx, st)
	rep.Linked = linked
	return rep, err
}

// verifyAuditAgain walks again while a prune that runs meanwhile moves the
// anchor past events the walk expects.
func verifyAuditAgain(ctx context.Context, st AuditStore) (AuditReport, error) {
	for range 3 {
		rep, err := verifyAudit(ctx, st)
		if err != nil || rep.Break == nil {
			return rep, err
		}
		head, err := st.AuditHead(ctx)
		if err != nil {
			return rep, fmt.Errorf("read audit head: %w", err)
		}
		if head.FirstSeq == rep.Head.FirstSeq {
			return rep, nil
		}
	}
	return verifyAudit(ctx, st)
}

func verifyAudit(ctx context.Context, st AuditStore) (AuditReport, error) {
	head, err := st.AuditHead(ctx)
	if err != nil {
		return AuditReport{}, fmt.Errorf("read audit head: %w", err)
	}
	rep := AuditReport{Head: head}
	broken := func(seq int64, format string, args ...any) (AuditReport, error) {
		rep.Break = &AuditBreak{Seq: seq, Reason: fmt.Sprintf(format, args...)}
		return rep, nil
	}
	want, prev := head.FirstSeq, head.AnchorHash
	for e, err := range chainEvents(ctx, st, head.Seq) {
		if err != nil {
			return rep, err
		}
		switch {
		case e.Seq < want:
			return broken(e.Seq, "the row is before the chain's anchor (seq %d): the anchor was moved without pruning", head.FirstSeq)
		case e.Seq == want+1:
			return broken(want, "the row is missing (deleted); the next row kept is seq %d", e.Seq)
		case e.Seq > want:
			return broken(want, "rows %d to %d are missing (deleted); the next row kept is seq %d", want, e.Seq-1, e.Seq)
		}
		if !bytes.Equal(e.PrevHash, prev) {
			return brokenLink(ctx, st, rep, e, head)
		}
		sum, err := e.ComputeHash()
		if err != nil {
			return broken(e.Seq, "content changed: %s", ErrorMessage(err))
		}
		if !bytes.Equal(sum, e.Hash) {
			return broken(e.Seq, "content changed: the stored hash is not the hash of the row's content")
		}
		rep.Events++
		want, prev = e.Seq+1, e.Hash
	}
	switch {
	case want == head.Seq:
		return broken(want, "the row is missing (deleted): it was the last row appended")
	case want < head.Seq:
		return broken(want, "rows %d to %d are missing (deleted): the chain's head is seq %d", want, head.Seq, head.Seq)
	case !bytes.Equal(prev, head.Hash):
		return broken(head.Seq, "the last row's hash is not the one the chain's head recorded: the row or the head was rewritten")
	}
	return rep, nil
}

// brokenLink explains an event whose PrevHash is not the hash of the event
// before it: if it is the hash of another event, the rows were reordered.
func brokenLink(ctx context.Context, st AuditStore, rep AuditReport, e *AuditEvent, head AuditHead) (AuditReport, error) {
	rep.Break = &AuditBreak{Seq: e.Seq}
	if e.Seq == head.FirstSeq {
		rep.Break.Reason = "prev_hash is not the chain's anchor: the row was changed, or the anchor was"
		return rep, nil
	}
	rep.Break.Reason = fmt.Sprintf("prev_hash is not the hash of seq %d: that row was rewritten with a recomputed hash, or this one was changed", e.Seq-1)
	// One more walk, only when broken, to tell a reordering apart.
	for o, err := range chainEvents(ctx, st, head.Seq) {
		if err != nil {
			return rep, err
		}
		if o.Seq != e.Seq && bytes.Equal(o.Hash, e.PrevHash) {
			rep.Break.Reason = fmt.Sprintf("out of order: the row follows seq %d, not seq %d (rows were reordered)", o.Seq, e.Seq-1)
			return rep, nil
		}
	}
	return rep, nil
}

// chainEvents yields the stored events in order, from the oldest kept to
// seq upTo, read auditBatch at a time. A read error is yielded once, with
// no event, and ends the walk.
func chainEvents(ctx context.Context, st AuditStore, upTo int64) iter.Seq2[*AuditEvent, error] {
	return func(yield func(*AuditEvent, error) bool) {
		var after int64
		for after < upTo {
			list, err := st.AuditChain(ctx, after, auditBatch)
			if err != nil {
				yield(nil, fmt.Errorf("read audit events after seq %d: %w", after, err))
				return
			}
			if len(list) == 0 {
				return
			}
			for _, e := range list {
				if e.Seq > upTo || !yield(e, nil) {
					return
				}
				after = e.Seq
			}
		}
	}
}

// HexHash formats a hash for people: lower-case hex, or "(none)".
func HexHash(h []byte) string {
	if len(h) == 0 {
		return "(none)"
	}
	return hex.EncodeToString(h)
}

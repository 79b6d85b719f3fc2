package vault_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"testing"
	"time"

	"github.com/envvault/envvault/vault"
)

// TestAuditHashEncoding recomputes an event's hash from the encoding the
// documentation gives, independently of the code, and pins its value: a
// change of the encoding breaks every stored chain, so it must be
// deliberate (a new domain string).
func TestAuditHashEncoding(t *testing.T) {
	ev := &vault.AuditEvent{
		Time:   time.Date(2031, 7, 9, 10, 11, 12, 123456000, time.UTC),
		Actor:  vault.Actor{UserID: "usr_1", TokenID: "tok_1", RequestID: "req-1", ClientAddr: "192.0.2.1"},
		Action: vault.ActionSecretUpdate, TargetType: vault.TargetSecret, TargetID: "sec_1",
		Details: map[string]any{"version": 2, "name": "STRIPE_KEY", "changed": []string{"value"}, "html": "<&>"},
	}
	prev := bytes.Repeat([]byte{0xab}, 32)
	details, err := ev.Chain(7, prev)
	if err != nil {
		t.Fatal(err)
	}
	wantDetails := `{"changed":["value"],"html":"\u003c\u0026\u003e","name":"STRIPE_KEY","version":2}`
	if string(details) != wantDetails {
		t.Fatalf("canonical details %s, want %s", details, wantDetails)
	}

	var b []byte
	field := func(s []byte) {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	field([]byte("envvault audit v1"))
	b = binary.BigEndian.AppendUint64(b, 7)
	b = binary.BigEndian.AppendUint64(b, uint64(ev.Time.UnixMicro()))
	for _, s := range []string{"usr_1", "tok_1", "req-1", "192.0.2.1", "secret.update", "secret", "sec_1", wantDetails} {
		field([]byte(s))
	}
	field(prev)
	sum := sha256.Sum256(b)
	if !bytes.Equal(ev.Hash, sum[:]) {
		t.Fatalf("hash %x, want %x (the documented encoding)", ev.Hash, sum)
	}
	const pinned = "fda5b613ed1c7804e210805272998b966ff1aa96445e2e7b7d1a448194f9ee90"
	if got := hex.EncodeToString(ev.Hash); got != pinned {
		t.Errorf("hash %s, pinned %s", got, pinned)
	}
	if ev.Seq != 7 || !bytes.Equal(ev.PrevHash, prev) {
		t.Errorf("Chain set seq %d, prev %x", ev.Seq, ev.PrevHash)
	}
	again, err := ev.ComputeHash()
	if err != nil || !bytes.Equal(again, ev.Hash) {
		t.Errorf("ComputeHash %x, %v; want the hash Chain set", again, err)
	}

	// Every field counts; moving a byte from one field to the next does
	// too (the length prefixes).
	for name, change := range map[string]func(e *vault.AuditEvent){
		"seq":        func(e *vault.AuditEvent) { e.Seq++ },
		"time":       func(e *vault.AuditEvent) { e.Time = e.Time.Add(time.Microsecond) },
		"user":       func(e *vault.AuditEvent) { e.UserID = "" },
		"token":      func(e *vault.AuditEvent) { e.TokenID = "tok_2" },
		"request":    func(e *vault.AuditEvent) { e.RequestID = "req-2" },
		"client":     func(e *vault.AuditEvent) { e.ClientAddr = "192.0.2.2" },
		"action":     func(e *vault.AuditEvent) { e.Action = vault.ActionSecretDelete },
		"targettype": func(e *vault.AuditEvent) { e.TargetType = "profile" },
		"target":     func(e *vault.AuditEvent) { e.TargetID = "sec_2" },
		"details":    func(e *vault.AuditEvent) { e.Details = map[string]any{"version": 3} },
		"prev":       func(e *vault.AuditEvent) { e.PrevHash = prev[1:] },
		"shifted":    func(e *vault.AuditEvent) { e.UserID, e.TokenID = "usr_1t", "ok_1" },
	} {
		e := *ev
		change(&e)
		got, err := e.ComputeHash()
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(got, ev.Hash) {
			t.Errorf("changing %s does not change the hash", name)
		}
	}
}

// TestAuditDetailsCanonical checks that details read back from a store
// that reorders and respaces JSON (jsonb) hash as they were written, and
// that values which a store could rewrite are refused.
func TestAuditDetailsCanonical(t *testing.T) {
	ev := &vault.AuditEvent{Details: map[string]any{"b": []any{1, "x"}, "a": map[string]any{"z": true, "y": nil}}}
	want, err := ev.DetailsJSON()
	if err != nil {
		t.Fatal(err)
	}
	back, err := vault.DecodeAuditDetails([]byte(`{"a": {"y": null, "z": true}, "b": [1, "x"]}`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := (&vault.AuditEvent{Details: back}).DetailsJSON()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("details read back: %s, %v; want %s", got, err, want)
	}
	if empty, _ := (&vault.AuditEvent{}).DetailsJSON(); string(empty) != "{}" {
		t.Errorf("no details: %s, want {}", empty)
	}
	for _, d := range []map[string]any{{"f": 1.5}, {"big": 1e21}, {"nested": []any{0.1}}} {
		if _, err := (&vault.AuditEvent{Details: d}).DetailsJSON(); vault.ErrorCode(err) != vault.EINVALID {
			t.Errorf("details %v: %v, want EINVALID", d, err)
		}
	}
	for _, raw := range []string{`[]`, `null`, `{"a":1} {}`, `{"a":1.0}`, `{"a":-0}`} {
		if _, err := vault.DecodeAuditDetails([]byte(raw)); err == nil {
			t.Errorf("decoded %s", raw)
		}
	}
}

func TestActorContext(t *testing.T) {
	ctx := context.Background()
	if a := vault.ActorFrom(ctx); a != (vault.Actor{}) {
		t.Errorf("no actor: %+v", a)
	}
	a := vault.Actor{UserID: "usr_1", TokenID: "tok_1", RequestID: "r", ClientAddr: "::1"}
	if got := vault.ActorFrom(vault.WithActor(ctx, a)); got != a {
		t.Errorf("actor %+v, want %+v", got, a)
	}
}

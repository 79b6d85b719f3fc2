package vault_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/envvault/envvault/internal/testvault"
	"github.com/envvault/envvault/vault"
)

// from returns ctx acting from a client address.
func from(ctx context.Context, addr string) context.Context {
	return vault.WithActor(ctx, vault.Actor{ClientAddr: addr, RequestID: "req-" + addr})
}

// TestAuthFailureLimits: an address that fails its burst is refused with
// ELIMIT and a Retry-After, without the store being asked; another
// address, and a token this process confirmed before (even past its cache
// entry's TTL), go on; a token id that fails its burst from many
// addresses is refused too; the limits refill with time.
func TestAuthFailureLimits(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_700_000_000, 0)
	st := &tokenStore{Store: testvault.MustSQLite(t, filepath.Join(t.TempDir(), "vault.db"))}
	svc := testvault.MustService(t, st, vault.Options{Now: func() time.Time { return now },
		AuthLimits: vault.AuthLimits{PerAddress: 0.01, AddressBurst: 20, PerToken: 0.01, TokenBurst: 5}})
	_, good, err := svc.CreateUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	flood := from(ctx, "198.51.100.1")
	if _, err := svc.AuthenticateToken(flood, good); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		_, err := svc.AuthenticateToken(flood, vault.NewID(vault.PrefixToken)+".x")
		if vault.ErrorCode(err) != vault.EUNAUTHORIZED || vault.AuthFailureReason(err) != vault.ReasonUnknown {
			t.Fatalf("failure %d of the burst: %v", i, err)
		}
	}
	lookups := st.lookups
	_, err = svc.AuthenticateToken(flood, vault.NewID(vault.PrefixToken)+".x")
	var le *vault.LimitError
	if !errors.As(err, &le) || vault.ErrorCode(err) != vault.ELIMIT || le.Limit != vault.LimitAddress || le.RetryAfter < time.Second {
		t.Fatalf("past the address's burst: %v", err)
	}
	if _, err := svc.AuthenticateToken(flood, "not-even-a-token"); vault.ErrorCode(err) != vault.ELIMIT {
		t.Fatalf("a malformed token past the burst: %v", err)
	}
	if st.lookups != lookups {
		t.Fatalf("refused checks read the store %d times", st.lookups-lookups)
	}
	// The holder of a good token is not the flood: cached, and confirmed
	// again after the cache's TTL, from the limited address.
	if _, err := svc.AuthenticateToken(flood, good); err != nil {
		t.Fatalf("a good token from the limited address: %v", err)
	}
	now = now.Add(vault.DefaultTokenCacheTTL + time.Second)
	if _, err := svc.AuthenticateToken(flood, good); err != nil || st.lookups != lookups+1 {
		t.Fatalf("a good token past its cache TTL from the limited address: %v (%d lookups)", err, st.lookups-lookups)
	}
	// Another address is not limited.
	if _, err := svc.AuthenticateToken(from(ctx, "198.51.100.2"), vault.NewID(vault.PrefixToken)+".x"); vault.ErrorCode(err) != vault.EUNAUTHORIZED {
		t.Fatalf("another address: %v", err)
	}
	// One token id failing from many addresses.
	target := vault.NewID(vault.PrefixToken)
	for i := range 5 {
		if _, err := svc.AuthenticateToken(from(ctx, fmt.Sprint("203.0.113.", i)), target+".x"); vault.ErrorCode(err) != vault.EUNAUTHORIZED {
			t.Fatalf("token failure %d: %v", i, err)
		}
	}
	_, err = svc.AuthenticateToken(from(ctx, "203.0.113.99"), target+".x")
	if !errors.As(err, &le) || le.Limit != vault.LimitTokenID {
		t.Fatalf("past the token id's burst: %v", err)
	}
	// Refilled after the wait it gave.
	now = now.Add(le.RetryAfter)
	if _, err := svc.AuthenticateToken(from(ctx, "203.0.113.99"), target+".x"); vault.ErrorCode(err) != vault.EUNAUTHORIZED {
		t.Fatalf("after Retry-After: %v", err)
	}
}

// TestAuthFailuresPerSource: 300 failures from three sources (one address
// with malformed tokens, two with one unknown token id) are three events,
// one per source, each with its count and reason.
func TestAuthFailuresPerSource(t *testing.T) {
	ctx := context.Background()
	db := testvault.MustSQLite(t, filepath.Join(t.TempDir(), "vault.db"))
	svc := testvault.MustService(t, db, vault.Options{AuthLimits: vault.AuthLimits{Off: true}})
	h, err := db.AuditHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := vault.NewID(vault.PrefixToken)
	for i := range 300 {
		tok := id + ".wrong"
		if i%3 == 0 {
			tok = "garbage"
		}
		if _, err := svc.AuthenticateToken(from(ctx, fmt.Sprint("192.0.2.", i%3)), tok); vault.ErrorCode(err) != vault.EUNAUTHORIZED {
			t.Fatal(err)
		}
	}
	if err := svc.FlushAuthFailures(ctx); err != nil {
		t.Fatal(err)
	}
	events, err := db.AuditChain(ctx, h.Seq, 100)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range events {
		got[e.ClientAddr+" "+e.TargetID] = fmt.Sprint(e.Details["failed"], " ", e.Details["reason"])
	}
	want := map[string]string{
		"192.0.2.0 malformed": "100 malformed token",
		"192.0.2.1 " + id:     "100 unknown token",
		"192.0.2.2 " + id:     "100 unknown token",
	}
	if len(events) != 3 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events by source: %v, want %v", got, want)
	}
}

// TestAuthFailuresAggregated: failures are written as one event per
// (address, token id or "malformed") per window, with counts, only when
// the window ends; past MaxFailureRows sources, the rest share one event
// whose address and target are "*"; the trail verifies.
func TestAuthFailuresAggregated(t *testing.T) {
	ctx := context.Background()
	db := testvault.MustSQLite(t, filepath.Join(t.TempDir(), "vault.db"))
	svc := testvault.MustService(t, db, vault.Options{AuthLimits: vault.AuthLimits{Off: true, MaxFailureRows: 10}})
	head := func() int64 {
		h, err := db.AuditHead(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return h.Seq
	}
	before := head()
	repeat := vault.NewID(vault.PrefixToken)
	for i := range 1000 {
		id := vault.NewID(vault.PrefixToken)
		if i%2 == 0 {
			id = repeat
		}
		tok := id + ".wrong"
		if i%10 == 9 {
			tok = "garbage"
		}
		if _, err := svc.AuthenticateToken(from(ctx, fmt.Sprint("192.0.2.", i%3)), tok); vault.ErrorCode(err) != vault.EUNAUTHORIZED {
			t.Fatal(err)
		}
	}
	if n := head() - before; n != 0 {
		t.Fatalf("%d events written before the window ended", n)
	}
	if err := svc.FlushAuthFailures(ctx); err != nil {
		t.Fatal(err)
	}
	events, err := db.AuditChain(ctx, before, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 11 {
		t.Fatalf("%d events for 1000 failures, want 10 sources and the overflow", len(events))
	}
	total := 0
	for i, e := range events {
		n, _ := strconv.Atoi(fmt.Sprint(e.Details["failed"]))
		total += n
		if e.Action != vault.ActionAuthFailed || e.UserID != "" || strings.Contains(fmt.Sprint(e.Details), "wrong") {
			t.Errorf("event %d: %+v", i, e)
		}
		if i == len(events)-1 && (e.ClientAddr != "*" || e.TargetID != "*") {
			t.Errorf("the last event is not the overflow: %+v", e)
		}
	}
	if total != 1000 {
		t.Fatalf("the events count %d failures, want 1000", total)
	}
	if rep, err := vault.VerifyAudit(ctx, db); err != nil || rep.Break != nil {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
}

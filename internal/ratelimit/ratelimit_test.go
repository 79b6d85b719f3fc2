package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

// TestSetLimitsAndWaits: a key gets its burst, then one event per period;
// Wait says how long until the next; keys are independent.
func TestSetLimitsAndWaits(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := New(2, 3, 10, func() time.Time { return now }) // 2 a second, bursts of 3
	for i := range 3 {
		if w := s.Wait("a"); w != 0 {
			t.Fatalf("event %d: wait %v before the burst is spent", i, w)
		}
		if !s.Allow("a") {
			t.Fatalf("event %d of the burst refused", i)
		}
	}
	if s.Allow("a") {
		t.Fatal("an event past the burst allowed")
	}
	if w := s.Wait("a"); w <= 0 || w > 500*time.Millisecond {
		t.Fatalf("wait after the burst: %v, want (0, 500ms]", w)
	}
	if !s.Allow("b") {
		t.Fatal("another key is limited by the first")
	}
	now = now.Add(500 * time.Millisecond)
	if s.Wait("a") != 0 || !s.Allow("a") {
		t.Fatal("no event after a period")
	}
}

// TestSetBounded: past max keys, idle limiters are dropped; when none is
// idle, new keys share one overflow limiter, itself limited; the map
// never holds more than max.
func TestSetBounded(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := New(1, 2, 100, func() time.Time { return now })
	for i := range 100 {
		s.Allow(fmt.Sprint("busy", i))
		s.Allow(fmt.Sprint("busy", i))
	}
	allowed := 0
	for i := range 1000 {
		if s.Allow(fmt.Sprint("new", i)) {
			allowed++
		}
		if s.Len() > 100 {
			t.Fatalf("%d keys, want at most 100", s.Len())
		}
	}
	if allowed != 2 {
		t.Fatalf("1000 new keys past a full map of busy ones: %d allowed, want the overflow's burst of 2", allowed)
	}
	now = now.Add(time.Hour) // every limiter is full again: idle
	if !s.Allow("late") || s.Len() > 100 {
		t.Fatalf("after the limiters refilled: a new key refused or %d keys", s.Len())
	}
	if _, ok := s.m["late"]; !ok {
		t.Fatal("idle limiters were not dropped for a new key")
	}
}

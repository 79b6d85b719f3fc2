package orchestrator

import (
	"reflect"
	"testing"
)

func TestSlotsClaimOrder(t *testing.T) {
	s := newSlots(4, 50) // two per user
	if s.perUser != 2 {
		t.Fatalf("perUser = %d, want 2", s.perUser)
	}
	if got := s.claimOrder(); !reflect.DeepEqual(got, [][]string{{}}) {
		t.Fatalf("idle: %q", got)
	}
	s.take("a")
	s.take("a")
	s.take("b")
	// Users running nothing first, then b (one), never a (at its share).
	if got, want := s.claimOrder(), [][]string{{"a", "b"}, {"a"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("claimOrder = %q, want %q", got, want)
	}
	s.take("c")
	if got := s.claimOrder(); got != nil {
		t.Fatalf("all four slots taken: %q, want nil", got)
	}
	s.give("a")
	s.give("c")
	if got, want := s.claimOrder(), [][]string{{"a", "b"}, {}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("claimOrder = %q, want %q (a new user first, then a or b, each below its share)", got, want)
	}
	if one := newSlots(3, 10); one.perUser != 1 {
		t.Errorf("a share below one slot gives %d, want 1", one.perUser)
	}
	if def := newSlots(0, 0); def.max != DefaultMaxRunning() || def.perUser != DefaultMaxRunning()*DefaultUserSharePercent/100 {
		t.Errorf("defaults: %+v", def)
	}
}

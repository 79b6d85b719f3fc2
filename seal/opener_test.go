package seal

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestOpenerAppends opens several envelopes with one Opener into one
// reused buffer: each gives its own plaintext after what dst held, and a
// failure (each of OpenEnvelope's, see TestOpenEnvelopeFailures) leaves the
// next open unharmed.
func TestOpenerAppends(t *testing.T) {
	k := mustKeyring(t, mustKey(t))
	o := k.NewOpener()
	defer o.Close()
	var buf []byte
	for i, v := range []string{canary, "", strings.Repeat("x", 1000), "second " + canary} {
		e := mustEnvelope(t, k, v)
		got, err := o.AppendOpen(append(buf[:0], "prefix:"...), e.Value, e.Key, valueAAD, keyAAD)
		if err != nil || string(got) != "prefix:"+v {
			t.Fatalf("envelope %d: AppendOpen = %q, %v", i, got, err)
		}
		buf = got
		bad := mustEnvelope(t, k, v)
		bad.Key[headerSize] ^= 1
		if pt, err := o.AppendOpen(buf[:0], bad.Value, bad.Key, valueAAD, keyAAD); !errors.Is(err, ErrOpen) || pt != nil {
			t.Fatalf("envelope %d with a tampered data key: %q, %v; want ErrOpen", i, pt, err)
		}
	}
	if !bytes.Equal(o.dek[:cap(o.dek)], make([]byte, cap(o.dek))) {
		t.Fatal("the last data key is left in the opener")
	}
}

// TestOpenerAllocs bounds what one open allocates once the buffers are
// warm: the AES key schedule and GCM of the data key, nothing per byte.
func TestOpenerAllocs(t *testing.T) {
	k := mustKeyring(t, mustKey(t))
	o := k.NewOpener()
	defer o.Close()
	e := mustEnvelope(t, k, strings.Repeat("v", 40))
	buf := make([]byte, 0, 64)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := o.AppendOpen(buf[:0], e.Value, e.Key, valueAAD, keyAAD); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("%.0f allocations per open", allocs)
	if allocs > maxOpenAllocs {
		t.Fatalf("%.0f allocations per open, want at most %d", allocs, maxOpenAllocs)
	}
}

const maxOpenAllocs = 2

func BenchmarkOpener(b *testing.B) {
	k := mustKeyring(b, mustKey(b))
	e := mustEnvelope(b, k, strings.Repeat("v", 40))
	o := k.NewOpener()
	defer o.Close()
	buf := make([]byte, 0, 64)
	for b.Loop() {
		if _, err := o.AppendOpen(buf[:0], e.Value, e.Key, valueAAD, keyAAD); err != nil {
			b.Fatal(err)
		}
	}
}

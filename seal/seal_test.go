package seal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func mustKey(t testing.TB) []byte {
	t.Helper()
	key, err := ParseKey(GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func mustKeyring(t testing.TB, current []byte, previous ...[]byte) *Keyring {
	t.Helper()
	k, err := NewKeyring(current, previous...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const canary = "canary-Zq8Xv3-not-to-be-seen"

var (
	valueAAD = AAD("test value", "usr_1", "sec_1", "NAME")
	keyAAD   = AAD("test key", "usr_1", "sec_1")
)

func mustEnvelope(t testing.TB, k *Keyring, value string) Envelope {
	t.Helper()
	e, err := k.SealEnvelope([]byte(value), valueAAD, keyAAD)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestEnvelopeRoundTrip(t *testing.T) {
	k := mustKeyring(t, mustKey(t))
	e := mustEnvelope(t, k, canary)
	got, err := k.OpenEnvelope(e.Value, e.Key, valueAAD, keyAAD)
	if err != nil || string(got) != canary {
		t.Fatalf("OpenEnvelope = %q, %v", got, err)
	}
	if bytes.Contains(e.Value, []byte(canary)) || bytes.Contains(e.Key, []byte(canary)) {
		t.Fatal("plaintext visible in sealed bytes")
	}
	if e.KeyID != k.CurrentID() {
		t.Fatalf("KeyID = %s, want %s", e.KeyID, k.CurrentID())
	}
	if id, _ := SealedKeyID(e.Key); id != k.CurrentID() {
		t.Fatalf("sealed key header id = %s, want %s", id, k.CurrentID())
	}
	if id, _ := SealedKeyID(e.Value); id != "00000000" {
		t.Fatalf("value header id = %s, want 00000000 (its own data key)", id)
	}
	again := mustEnvelope(t, k, canary)
	if bytes.Equal(again.Value[nonceAt:headerSize], e.Value[nonceAt:headerSize]) {
		t.Fatal("nonce reused")
	}
}

// Every way an envelope can be damaged or opened with the wrong key or
// AAD fails with its sentinel error (never a panic), and the error holds
// neither value nor key.
func TestOpenEnvelopeFailures(t *testing.T) {
	key := mustKey(t)
	k := mustKeyring(t, key)
	other := mustKeyring(t, mustKey(t))
	tests := []struct {
		name   string
		keys   *Keyring
		mutate func(e *Envelope, vaad, kaad *[]byte)
		want   error
	}{
		{"tampered value byte", k, func(e *Envelope, _, _ *[]byte) { e.Value[len(e.Value)-1] ^= 1 }, ErrOpen},
		{"tampered nonce", k, func(e *Envelope, _, _ *[]byte) { e.Value[6] ^= 1 }, ErrOpen},
		{"tampered data key", k, func(e *Envelope, _, _ *[]byte) { e.Key[headerSize] ^= 0x80 }, ErrOpen},
		{"tampered key id", k, func(e *Envelope, _, _ *[]byte) { e.Key[2] ^= 1 }, ErrUnknownKey},
		{"tampered value key id", k, func(e *Envelope, _, _ *[]byte) { e.Value[4] ^= 1 }, ErrUnknownKey},
		{"tampered version", k, func(e *Envelope, _, _ *[]byte) { e.Value[0] = 9 }, ErrVersion},
		{"truncated value", k, func(e *Envelope, _, _ *[]byte) { e.Value = e.Value[:Overhead-1] }, ErrCiphertextShort},
		{"truncated tag", k, func(e *Envelope, _, _ *[]byte) { e.Value = e.Value[:len(e.Value)-1] }, ErrOpen},
		{"empty data key", k, func(e *Envelope, _, _ *[]byte) { e.Key = nil }, ErrCiphertextShort},
		{"wrong master key", other, func(*Envelope, *[]byte, *[]byte) {}, ErrUnknownKey},
		{"wrong value aad", k, func(_ *Envelope, v, _ *[]byte) { *v = AAD("test value", "usr_1", "sec_1", "OTHER") }, ErrOpen},
		{"wrong key aad", k, func(_ *Envelope, _, a *[]byte) { *a = AAD("test key", "usr_2", "sec_1") }, ErrOpen},
		{"swapped aads", k, func(_ *Envelope, v, a *[]byte) { *v, *a = *a, *v }, ErrOpen},
		{"value as key", k, func(e *Envelope, _, _ *[]byte) { e.Key = e.Value }, ErrUnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustEnvelope(t, k, canary)
			vaad, kaad := valueAAD, keyAAD
			tt.mutate(&e, &vaad, &kaad)
			pt, err := tt.keys.OpenEnvelope(e.Value, e.Key, vaad, kaad)
			if !errors.Is(err, tt.want) || pt != nil {
				t.Fatalf("OpenEnvelope = %q, %v, want %v", pt, err, tt.want)
			}
			msg := err.Error()
			if strings.Contains(msg, canary) || strings.Contains(msg, base64.StdEncoding.EncodeToString(key)) {
				t.Fatalf("error leaks value or key: %s", msg)
			}
		})
	}
}

// Each byte of the header, and each truncation, fails with its own
// sentinel error.
func TestOpenEachHeaderByte(t *testing.T) {
	k := mustKeyring(t, mustKey(t))
	aad := AAD("label", "part")
	good := k.Seal([]byte(canary), aad)
	for i := range headerSize {
		b := bytes.Clone(good)
		b[i] ^= 0x01
		want := ErrOpen // the nonce
		switch {
		case i == 0:
			want = ErrVersion
		case i < nonceAt:
			want = ErrUnknownKey
		}
		if _, err := k.Open(b, aad); !errors.Is(err, want) {
			t.Errorf("byte %d flipped: %v, want %v", i, err, want)
		}
	}
	for n := range len(good) {
		want := ErrOpen
		if n < Overhead {
			want = ErrCiphertextShort
		}
		if _, err := k.Open(good[:n], aad); !errors.Is(err, want) {
			t.Errorf("truncated to %d: %v, want %v", n, err, want)
		}
	}
	if _, err := k.Open(good, AAD("label", "other")); !errors.Is(err, ErrOpen) {
		t.Errorf("wrong aad: %v", err)
	}
	if pt, err := k.Open(good, aad); err != nil || string(pt) != canary {
		t.Fatalf("Open = %q, %v", pt, err)
	}
}

func TestKeyringRotation(t *testing.T) {
	oldKey, newKey := mustKey(t), mustKey(t)
	old := mustKeyring(t, oldKey)
	e := mustEnvelope(t, old, canary)
	rotated := mustKeyring(t, newKey, oldKey)
	if got, err := rotated.OpenEnvelope(e.Value, e.Key, valueAAD, keyAAD); err != nil || string(got) != canary {
		t.Fatalf("previous key does not open: %q, %v", got, err)
	}
	if rotated.CurrentID() == old.CurrentID() || !rotated.Has(old.CurrentID()) || old.Has(rotated.CurrentID()) {
		t.Fatal("rotated keyring ids wrong")
	}
	if rotated.CurrentID() != KeyID(newKey) || old.CurrentID() != KeyID(oldKey) {
		t.Fatal("CurrentID is not KeyID of the current key")
	}
	if _, err := NewKeyring(newKey, newKey); err == nil {
		t.Fatal("duplicate key accepted")
	}
	if _, err := NewKeyring(newKey[:31]); !errors.Is(err, ErrKeyLength) {
		t.Fatalf("short key: %v", err)
	}

	// Rewrap moves the data key under the current key; the value stays.
	key, err := rotated.Rewrap(e.Key, keyAAD)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := SealedKeyID(key); id != rotated.CurrentID() {
		t.Fatalf("rewrapped key under %s", id)
	}
	newOnly := mustKeyring(t, newKey)
	if got, err := newOnly.OpenEnvelope(e.Value, key, valueAAD, keyAAD); err != nil || string(got) != canary {
		t.Fatalf("after rewrap: %q, %v", got, err)
	}
	if _, err := newOnly.Rewrap(e.Key, keyAAD); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("rewrap without the old key: %v", err)
	}
	if _, err := rotated.Rewrap(e.Key, valueAAD); !errors.Is(err, ErrOpen) {
		t.Fatalf("rewrap with the wrong aad: %v", err)
	}
}

func TestCheck(t *testing.T) {
	k := mustKeyring(t, mustKey(t))
	c := k.SealCheck("check label")
	if err := k.OpenCheck(c, "check label"); err != nil {
		t.Fatal(err)
	}
	if err := mustKeyring(t, mustKey(t)).OpenCheck(c, "check label"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("wrong key opened the check: %v", err)
	}
	if err := k.OpenCheck(c, "other label"); !errors.Is(err, ErrOpen) {
		t.Fatalf("wrong label opened the check: %v", err)
	}
	// Sealed under the check's AAD but not the label: refused.
	if err := k.OpenCheck(k.Seal([]byte("x"), AAD("check label")), "check label"); !errors.Is(err, ErrOpen) {
		t.Fatalf("wrong plaintext passed the check: %v", err)
	}
}

func TestMAC(t *testing.T) {
	k1, k2 := mustKey(t), mustKey(t)
	a := mustKeyring(t, k1).MAC("salt", "info")
	sum := a.Sum([]byte("msg"))
	if len(sum) != MACSize || !a.Verify([]byte("msg"), sum) {
		t.Fatal("a MAC does not verify its own sum")
	}
	if !bytes.Equal(mustKeyring(t, k1, k2).MAC("salt", "info").Sum([]byte("msg")), sum) {
		t.Fatal("the same current key gives another MAC key")
	}
	for name, m := range map[string]*MAC{
		"other info":  mustKeyring(t, k1).MAC("salt", "other"),
		"other salt":  mustKeyring(t, k1).MAC("other", "info"),
		"rotated key": mustKeyring(t, k2, k1).MAC("salt", "info"),
	} {
		if m.Verify([]byte("msg"), sum) {
			t.Errorf("%s: verifies the sum", name)
		}
	}
	bad := bytes.Clone(sum)
	bad[0] ^= 1
	for _, s := range [][]byte{bad, sum[:MACSize-1], nil} {
		if a.Verify([]byte("msg"), s) {
			t.Errorf("Verify(%x) = true", s)
		}
	}
	if a.Verify([]byte("msh"), sum) {
		t.Error("another message verifies")
	}
}

// Bytes sealed by envvault before this package existed still open: the
// format, the labels and the key derivation are stored data.
func TestGolden(t *testing.T) {
	key := make([]byte, keySize)
	for i := range key {
		key[i] = byte(i)
	}
	k := mustKeyring(t, key)
	if k.CurrentID() != "ccbaaa10" {
		t.Fatalf("key id %s", k.CurrentID())
	}
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	value := unhex("0100000000780ff9236718e0102aaab6bc3eea1f808bc8fd8a47cae0424ac4a0ef2ec1c91aebdcbc8ee6ba58d6")
	dataKey := unhex("01ccbaaa108b67c921907947d2293f08379d9919be704348d0752488167e3938a30b42dc4f03ed81153f3172f1a20f1e2edbedbf4cb885e7a5b7475272a189c34a")
	got, err := k.OpenEnvelope(value, dataKey,
		AAD("envvault secret value v1", "usr_golden", "sec_golden", "API_KEY"),
		AAD("envvault data key v1", "usr_golden", "sec_golden"))
	if err != nil || string(got) != "golden-value" {
		t.Fatalf("OpenEnvelope = %q, %v", got, err)
	}
	check := unhex("01ccbaaa1074b0bbd4cecf2e57424e8cfb79b231d72c2776b9bf192238ac8792631f5ccd1c74b02f45f5b7203d4b08e8e7b43cb39aad")
	if err := k.OpenCheck(check, "envvault key check v1"); err != nil {
		t.Fatal(err)
	}
	sign := k.MAC("envvault sessions v1", "envvault session signing key v1").Sum([]byte("golden body"))
	if hex.EncodeToString(sign) != "b856ea46af837673c19cd3cdebe3b21d0b5489b28e1f41025450383d5d289872" {
		t.Fatalf("session signing MAC %x", sign)
	}
}

func TestParseKey(t *testing.T) {
	good := GenerateKey()
	raw, _ := base64.StdEncoding.DecodeString(good)
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"std", good, true},
		{"url raw", base64.RawURLEncoding.EncodeToString(raw), true},
		{"trailing newline", good + "\n", true},
		{"empty", "", false},
		{"31 bytes", base64.StdEncoding.EncodeToString(raw[:31]), false},
		{"33 bytes", base64.StdEncoding.EncodeToString(append(raw, 1)), false},
		{"not base64", "!!!!" + good[4:], false},
		{"hex", strings.Repeat("ab", 32), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := ParseKey(tt.in)
			if tt.ok != (err == nil) {
				t.Fatalf("ParseKey err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && strings.Contains(err.Error(), strings.TrimSpace(tt.in)) && tt.in != "" {
				t.Fatalf("error echoes the key: %v", err)
			}
			if err == nil && len(key) != 32 {
				t.Fatalf("len = %d", len(key))
			}
		})
	}
}

func TestAAD(t *testing.T) {
	if !bytes.Equal(AAD("l"), []byte("l")) {
		t.Fatal("AAD of a label alone is the label")
	}
	if want := []byte("l\x00\x00\x00\x02ab\x00\x00\x00\x00"); !bytes.Equal(AAD("l", "ab", ""), want) {
		t.Fatalf("AAD = %q, want %q", AAD("l", "ab", ""), want)
	}
	if bytes.Equal(AAD("l", "ab", "c"), AAD("l", "a", "bc")) {
		t.Fatal("two part lists encode alike")
	}
}

// FuzzOpen feeds arbitrary bytes to the sealed-message parser: it must
// return an error, never panic, and never open a message it did not seal.
func FuzzOpen(f *testing.F) {
	k := mustKeyring(f, mustKey(f))
	good := k.Seal([]byte("hello"), []byte("aad"))
	f.Add(good)
	f.Add(good[:headerSize])
	f.Add([]byte{})
	f.Add([]byte{version})
	f.Add(append([]byte{2}, good[1:]...))
	f.Fuzz(func(t *testing.T, sealed []byte) {
		pt, err := k.Open(sealed, []byte("aad"))
		if err == nil && (string(pt) != "hello" || string(sealed) != string(good)) {
			t.Fatalf("opened a forged message: %x", sealed)
		}
		_, _ = SealedKeyID(sealed)
		if _, err := k.OpenEnvelope(sealed, sealed, valueAAD, keyAAD); err == nil {
			t.Fatal("opened a forged envelope")
		}
		if _, err := k.Rewrap(sealed, keyAAD); err == nil {
			t.Fatal("re-wrapped a forged data key")
		}
	})
}

func BenchmarkOpenEnvelope(b *testing.B) {
	k := mustKeyring(b, mustKey(b))
	e := mustEnvelope(b, k, strings.Repeat("v", 40))
	for b.Loop() {
		if _, err := k.OpenEnvelope(e.Value, e.Key, valueAAD, keyAAD); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBareAESGCMOpen(b *testing.B) {
	block, _ := aes.NewCipher(mustKey(b))
	aead, _ := cipher.NewGCM(block)
	nonce := make([]byte, 12)
	ct := aead.Seal(nil, nonce, []byte(strings.Repeat("v", 40)), nil)
	for b.Loop() {
		if _, err := aead.Open(nil, nonce, ct, nil); err != nil {
			b.Fatal(err)
		}
	}
}

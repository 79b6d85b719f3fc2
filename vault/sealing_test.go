package vault

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func MustKey(t testing.TB) []byte {
	t.Helper()
	key, err := ParseKey(GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func MustKeyring(t testing.TB, current []byte, previous ...[]byte) *Keyring {
	t.Helper()
	k, err := NewKeyring(current, previous...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const canary = "canary-Zq8Xv3-not-to-be-seen"

func MustSealedSecret(t testing.TB, k *Keyring, value string) *Secret {
	t.Helper()
	s := &Secret{ID: NewID(PrefixSecret), UserID: NewID(PrefixUser), Name: "API_KEY", Scope: ScopeAll}
	if err := k.sealSecret(s, value); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSecretRoundTrip(t *testing.T) {
	k := MustKeyring(t, MustKey(t))
	s := MustSealedSecret(t, k, canary)
	got, err := k.openSecret(s)
	if err != nil || got != canary {
		t.Fatalf("openSecret = %q, %v", got, err)
	}
	if bytes.Contains(s.SealedValue, []byte(canary)) || bytes.Contains(s.SealedKey, []byte(canary)) {
		t.Fatal("plaintext visible in sealed bytes")
	}
	if s.MasterKeyID != k.CurrentID() {
		t.Fatalf("MasterKeyID = %s, want %s", s.MasterKeyID, k.CurrentID())
	}
	if id, _ := SealedKeyID(s.SealedKey); id != k.CurrentID() {
		t.Fatalf("sealed key header id = %s, want %s", id, k.CurrentID())
	}
	again := MustSealedSecret(t, k, canary)
	if bytes.Equal(again.SealedValue[5:headerSize], s.SealedValue[5:headerSize]) {
		t.Fatal("nonce reused")
	}
}

// Every way a stored secret can be damaged or misplaced fails to open with
// an error (never a panic), and the error holds neither value nor key.
func TestOpenSecretFailures(t *testing.T) {
	key := MustKey(t)
	k := MustKeyring(t, key)
	other := MustKeyring(t, MustKey(t))
	tests := []struct {
		name   string
		keys   *Keyring
		mutate func(s *Secret)
		want   error
	}{
		{"tampered value byte", k, func(s *Secret) { s.SealedValue[len(s.SealedValue)-1] ^= 1 }, ErrOpen},
		{"tampered nonce", k, func(s *Secret) { s.SealedValue[6] ^= 1 }, ErrOpen},
		{"tampered data key", k, func(s *Secret) { s.SealedKey[headerSize] ^= 0x80 }, ErrOpen},
		{"tampered key id", k, func(s *Secret) { s.SealedKey[2] ^= 1 }, ErrUnknownKey},
		{"tampered version", k, func(s *Secret) { s.SealedValue[0] = 9 }, ErrVersion},
		{"truncated value", k, func(s *Secret) { s.SealedValue = s.SealedValue[:sealOverhead-1] }, ErrCiphertextShort},
		{"truncated tag", k, func(s *Secret) { s.SealedValue = s.SealedValue[:len(s.SealedValue)-1] }, ErrOpen},
		{"empty data key", k, func(s *Secret) { s.SealedKey = nil }, ErrCiphertextShort},
		{"wrong master key", other, func(s *Secret) {}, ErrUnknownKey},
		{"moved to another user", k, func(s *Secret) { s.UserID = NewID(PrefixUser) }, ErrOpen},
		{"moved to another row", k, func(s *Secret) { s.ID = NewID(PrefixSecret) }, ErrOpen},
		{"renamed without reseal", k, func(s *Secret) { s.Name = "OTHER_KEY" }, ErrOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := MustSealedSecret(t, k, canary)
			tt.mutate(s)
			_, err := tt.keys.openSecret(s)
			if !errors.Is(err, tt.want) {
				t.Fatalf("openSecret error = %v, want %v", err, tt.want)
			}
			msg := err.Error()
			if strings.Contains(msg, canary) || strings.Contains(msg, base64.StdEncoding.EncodeToString(key)) {
				t.Fatalf("error leaks value or key: %s", msg)
			}
			if !strings.Contains(msg, s.ID) {
				t.Fatalf("error %q does not name the secret", msg)
			}
		})
	}
}

func TestSwappedValuesFailToOpen(t *testing.T) {
	k := MustKeyring(t, MustKey(t))
	a, b := MustSealedSecret(t, k, "value-a"), MustSealedSecret(t, k, "value-b")
	a.SealedValue, b.SealedValue = b.SealedValue, a.SealedValue
	if _, err := k.openSecret(a); !errors.Is(err, ErrOpen) {
		t.Fatalf("swapped value opened: %v", err)
	}
	a.SealedValue, b.SealedValue = b.SealedValue, a.SealedValue
	a.SealedKey, b.SealedKey = b.SealedKey, a.SealedKey
	if _, err := k.openSecret(a); !errors.Is(err, ErrOpen) {
		t.Fatalf("swapped data key opened: %v", err)
	}
}

func TestRewrapAfterRename(t *testing.T) {
	k := MustKeyring(t, MustKey(t))
	s := MustSealedSecret(t, k, canary)
	s.Name = "RENAMED"
	if err := k.rewrapSecret(s, "API_KEY"); err != nil {
		t.Fatal(err)
	}
	if got, err := k.openSecret(s); err != nil || got != canary {
		t.Fatalf("after rename: %q, %v", got, err)
	}
}

func TestKeyringRotation(t *testing.T) {
	oldKey, newKey := MustKey(t), MustKey(t)
	old := MustKeyring(t, oldKey)
	s := MustSealedSecret(t, old, canary)
	rotated := MustKeyring(t, newKey, oldKey)
	if got, err := rotated.openSecret(s); err != nil || got != canary {
		t.Fatalf("previous key does not open: %q, %v", got, err)
	}
	if rotated.CurrentID() == old.CurrentID() || !rotated.Has(old.CurrentID()) {
		t.Fatal("rotated keyring ids wrong")
	}
	if _, err := NewKeyring(newKey, newKey); err == nil {
		t.Fatal("duplicate key accepted")
	}
}

func TestKeyCheck(t *testing.T) {
	k := MustKeyring(t, MustKey(t))
	c := k.newKeyCheck()
	if err := k.openKeyCheck(c); err != nil {
		t.Fatal(err)
	}
	if err := MustKeyring(t, MustKey(t)).openKeyCheck(c); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("wrong key opened the check: %v", err)
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

func BenchmarkOpenSecret(b *testing.B) {
	k := MustKeyring(b, MustKey(b))
	s := MustSealedSecret(b, k, strings.Repeat("v", 40))
	for b.Loop() {
		if _, err := k.openSecret(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBareAESGCMOpen(b *testing.B) {
	block, _ := aes.NewCipher(MustKey(b))
	aead, _ := cipher.NewGCM(block)
	nonce := make([]byte, 12)
	ct := aead.Seal(nil, nonce, []byte(strings.Repeat("v", 40)), nil)
	for b.Loop() {
		if _, err := aead.Open(nil, nonce, ct, nil); err != nil {
			b.Fatal(err)
		}
	}
}

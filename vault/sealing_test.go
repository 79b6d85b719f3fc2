package vault

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/envvault/envvault/seal"
)

// headerSize is the length of a sealed message's header: version, key id
// and nonce (the format is at the top of package seal).
const headerSize = 1 + 4 + 12

func MustKey(t testing.TB) []byte {
	t.Helper()
	key, err := seal.ParseKey(seal.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func MustKeyring(t testing.TB, current []byte, previous ...[]byte) keyring {
	t.Helper()
	k, err := seal.NewKeyring(current, previous...)
	if err != nil {
		t.Fatal(err)
	}
	return keyring{k}
}

const canary = "canary-Zq8Xv3-not-to-be-seen"

func MustSealedSecret(t testing.TB, k keyring, value string) *Secret {
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
	if id, _ := seal.SealedKeyID(s.SealedKey); id != k.CurrentID() {
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
		keys   keyring
		mutate func(s *Secret)
		want   error
	}{
		{"tampered value byte", k, func(s *Secret) { s.SealedValue[len(s.SealedValue)-1] ^= 1 }, seal.ErrOpen},
		{"tampered nonce", k, func(s *Secret) { s.SealedValue[6] ^= 1 }, seal.ErrOpen},
		{"tampered data key", k, func(s *Secret) { s.SealedKey[headerSize] ^= 0x80 }, seal.ErrOpen},
		{"tampered key id", k, func(s *Secret) { s.SealedKey[2] ^= 1 }, seal.ErrUnknownKey},
		{"tampered version", k, func(s *Secret) { s.SealedValue[0] = 9 }, seal.ErrVersion},
		{"truncated value", k, func(s *Secret) { s.SealedValue = s.SealedValue[:seal.Overhead-1] }, seal.ErrCiphertextShort},
		{"truncated tag", k, func(s *Secret) { s.SealedValue = s.SealedValue[:len(s.SealedValue)-1] }, seal.ErrOpen},
		{"empty data key", k, func(s *Secret) { s.SealedKey = nil }, seal.ErrCiphertextShort},
		{"wrong master key", other, func(s *Secret) {}, seal.ErrUnknownKey},
		{"moved to another user", k, func(s *Secret) { s.UserID = NewID(PrefixUser) }, seal.ErrOpen},
		{"moved to another row", k, func(s *Secret) { s.ID = NewID(PrefixSecret) }, seal.ErrOpen},
		{"renamed without reseal", k, func(s *Secret) { s.Name = "OTHER_KEY" }, seal.ErrOpen},
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
	if _, err := k.openSecret(a); !errors.Is(err, seal.ErrOpen) {
		t.Fatalf("swapped value opened: %v", err)
	}
	a.SealedValue, b.SealedValue = b.SealedValue, a.SealedValue
	a.SealedKey, b.SealedKey = b.SealedKey, a.SealedKey
	if _, err := k.openSecret(a); !errors.Is(err, seal.ErrOpen) {
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
	if _, err := seal.NewKeyring(newKey, newKey); err == nil {
		t.Fatal("duplicate key accepted")
	}
}

func TestKeyCheck(t *testing.T) {
	k := MustKeyring(t, MustKey(t))
	c := k.newKeyCheck()
	if err := k.openKeyCheck(c); err != nil {
		t.Fatal(err)
	}
	if err := MustKeyring(t, MustKey(t)).openKeyCheck(c); !errors.Is(err, seal.ErrUnknownKey) {
		t.Fatalf("wrong key opened the check: %v", err)
	}
}

// A secret and key check sealed before package seal existed still open:
// the labels and the AAD each is bound to are stored data.
func TestGoldenSecret(t *testing.T) {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}
	k := MustKeyring(t, key)
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	s := &Secret{ID: "sec_golden", UserID: "usr_golden", Name: "API_KEY",
		SealedValue: unhex("0100000000780ff9236718e0102aaab6bc3eea1f808bc8fd8a47cae0424ac4a0ef2ec1c91aebdcbc8ee6ba58d6"),
		SealedKey:   unhex("01ccbaaa108b67c921907947d2293f08379d9919be704348d0752488167e3938a30b42dc4f03ed81153f3172f1a20f1e2edbedbf4cb885e7a5b7475272a189c34a")}
	if got, err := k.openSecret(s); err != nil || got != "golden-value" {
		t.Fatalf("openSecret = %q, %v", got, err)
	}
	c := KeyCheck{KeyID: "ccbaaa10", Sealed: unhex("01ccbaaa1074b0bbd4cecf2e57424e8cfb79b231d72c2776b9bf192238ac8792631f5ccd1c74b02f45f5b7203d4b08e8e7b43cb39aad")}
	if err := k.openKeyCheck(c); err != nil {
		t.Fatal(err)
	}
}

// SealSecret, for seeding tools, seals exactly as the service does.
func TestSealSecret(t *testing.T) {
	k := MustKeyring(t, MustKey(t))
	s := &Secret{ID: NewID(PrefixSecret), UserID: NewID(PrefixUser), Name: "API_KEY"}
	if err := SealSecret(k.Keyring, s, canary); err != nil {
		t.Fatal(err)
	}
	if got, err := k.openSecret(s); err != nil || got != canary || s.MasterKeyID != k.CurrentID() {
		t.Fatalf("openSecret = %q, %v; key id %s", got, err, s.MasterKeyID)
	}
}

// A data key re-wrapped under the current key stays bound to its secret,
// and one under a master key the keyring lacks is named by that key's id.
func TestRewrapDataKey(t *testing.T) {
	oldKey := MustKey(t)
	s := MustSealedSecret(t, MustKeyring(t, oldKey), canary)
	rotated := MustKeyring(t, MustKey(t), oldKey)
	sealed, err := rotated.rewrapDataKey(s.SealedKey, s.UserID, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := seal.SealedKeyID(sealed); id != rotated.CurrentID() {
		t.Fatalf("re-wrapped under %s, want %s", id, rotated.CurrentID())
	}
	s.SealedKey = sealed
	if got, err := rotated.openSecret(s); err != nil || got != canary {
		t.Fatalf("after re-wrap: %q, %v", got, err)
	}
	if _, err := rotated.rewrapDataKey(s.SealedKey, s.UserID, NewID(PrefixSecret)); !errors.Is(err, seal.ErrOpen) {
		t.Fatalf("re-wrap for another secret: %v", err)
	}
	_, err = MustKeyring(t, MustKey(t)).rewrapDataKey(s.SealedKey, s.UserID, s.ID)
	if !errors.Is(err, seal.ErrUnknownKey) || !strings.Contains(err.Error(), rotated.CurrentID()) || !strings.Contains(err.Error(), s.ID) {
		t.Fatalf("re-wrap without the key: %v", err)
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

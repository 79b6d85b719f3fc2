package vault

import (
	"strings"
	"testing"
)

// FuzzValidate checks that the name and value validators never panic, never
// echo a value in an error, and accept exactly what the rules allow.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{"API_KEY", "api_key", "_X", "9LIVES", "", "A\x00", strings.Repeat("A", 257), "ÄPI", "A B"} {
		f.Add(s, "value-"+s)
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		nameErr := ValidateName("name", name)
		wantName := name != "" && len(name) <= MaxNameLen && (name[0] == '_' || name[0] >= 'A' && name[0] <= 'Z') &&
			strings.Trim(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == ""
		if (nameErr == nil) != wantName {
			t.Fatalf("ValidateName(%q) = %v, want ok=%v", name, nameErr, wantName)
		}
		if nameErr != nil && ErrorCode(nameErr) != EINVALID {
			t.Fatalf("code %s", ErrorCode(nameErr))
		}
		valueErr := ValidateValue("value", value)
		wantValue := value != "" && len(value) <= MaxValueLen && !strings.Contains(value, "\x00")
		if (valueErr == nil) != wantValue {
			t.Fatalf("ValidateValue(%q) = %v, want ok=%v", value, valueErr, wantValue)
		}
		if valueErr != nil && len(value) >= 8 && strings.Contains(valueErr.Error(), value) {
			t.Fatalf("error echoes value: %v", valueErr)
		}
	})
}

// FuzzOpenSecret feeds arbitrary bytes as a secret's sealed value and data
// key: opening, or re-wrapping the data key, must fail, never panic. The
// sealed-message parser itself is fuzzed by package seal's FuzzOpen.
func FuzzOpenSecret(f *testing.F) {
	k := MustKeyring(f, MustKey(f))
	good := k.Seal([]byte("hello"), []byte("aad"))
	f.Add(good)
	f.Add(good[:headerSize])
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add(append([]byte{2}, good[1:]...))
	f.Fuzz(func(t *testing.T, sealed []byte) {
		s := &Secret{ID: "sec_x", UserID: "usr_x", Name: "N", SealedValue: sealed, SealedKey: sealed}
		if _, err := k.openSecret(s); err == nil {
			t.Fatal("opened a forged secret")
		}
		if _, err := k.rewrapDataKey(sealed, s.UserID, s.ID); err == nil {
			t.Fatal("re-wrapped a forged data key")
		}
	})
}

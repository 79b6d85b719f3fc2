package vault

import (
	"errors"
	"fmt"

	"github.com/envvault/envvault/seal"
)

// What binds a sealed secret to its row. Package seal does the crypto; the
// vault only says what each sealed message is bound to, through its AAD:
// a secret's value to its user id, secret id and name, its data key to its
// user id and secret id. A value or data key copied into another row, or a
// secret renamed without a re-seal, fails to open. These labels are part of
// the stored data: changing one makes existing databases unreadable.
const (
	labelValue    = "envvault secret value v1"
	labelDataKey  = "envvault data key v1"
	labelKeyCheck = "envvault key check v1"
)

// valueAAD binds a secret's value to its user, id and name.
func valueAAD(s *Secret) []byte { return seal.AAD(labelValue, s.UserID, s.ID, s.Name) }

// dataKeyAAD binds a secret's data key to its user and id.
func dataKeyAAD(userID, secretID string) []byte { return seal.AAD(labelDataKey, userID, secretID) }

// keyring is the master keyring with the operations on secrets the
// Service needs; it never holds a data key.
type keyring struct{ *seal.Keyring }

// SealSecret seals value into s exactly as CreateSecret does: under a fresh
// data key, bound to s.UserID, s.ID and s.Name, the data key under the
// current master key of keys. It sets s.SealedValue, s.SealedKey and
// s.MasterKeyID and stores nothing. It is for tools that write many rows
// straight to a store, such as the seeding of rotation benchmarks; its only
// error is a failure to read randomness.
func SealSecret(keys *seal.Keyring, s *Secret, value string) error {
	e, err := keys.SealEnvelope([]byte(value), valueAAD(s), dataKeyAAD(s.UserID, s.ID))
	if err != nil {
		return fmt.Errorf("seal secret %s: %w", s.ID, err)
	}
	s.SealedValue, s.SealedKey, s.MasterKeyID = e.Value, e.Key, e.KeyID
	return nil
}

// sealSecret is SealSecret under the service's keyring.
func (k keyring) sealSecret(s *Secret, value string) error { return SealSecret(k.Keyring, s, value) }

// openSecret returns the plaintext value of s. Its errors name the secret,
// wrap the sentinel errors of package seal, and never contain key material
// or plaintext.
func (k keyring) openSecret(s *Secret) (string, error) {
	o := k.newSecretOpener()
	defer o.close()
	return o.open(s)
}

// secretOpener opens the values of many secrets one after another, as a
// release does, reusing its buffers: per secret it allocates the data
// key's cipher and the value's string, nothing else. It is not safe for
// concurrent use; close clears its buffers.
type secretOpener struct {
	o       *seal.Opener
	aad, pt []byte
}

func (k keyring) newSecretOpener() *secretOpener {
	return &secretOpener{o: k.NewOpener(), aad: make([]byte, 0, 256), pt: make([]byte, 0, 256)}
}

// open is openSecret.
func (so *secretOpener) open(s *Secret) (string, error) {
	so.aad = seal.AppendAAD(so.aad[:0], labelDataKey, s.UserID, s.ID)
	n := len(so.aad)
	so.aad = seal.AppendAAD(so.aad, labelValue, s.UserID, s.ID, s.Name)
	pt, err := so.o.AppendOpen(so.pt[:0], s.SealedValue, s.SealedKey, so.aad[n:], so.aad[:n])
	if err != nil {
		return "", fmt.Errorf("secret %s: %w", s.ID, err)
	}
	so.pt = pt
	v := string(pt)
	clear(pt)
	return v, nil
}

func (so *secretOpener) close() {
	so.o.Close()
	clear(so.pt[:cap(so.pt)])
}

// rewrapSecret reseals the value of s for its current UserID, ID and Name,
// which may differ from those it was sealed for (oldName), under a fresh
// data key. It is how a rename keeps the value bound to the new name.
func (k keyring) rewrapSecret(s *Secret, oldName string) error {
	renamed := *s
	renamed.Name = oldName
	value, err := k.openSecret(&renamed)
	if err != nil {
		return err
	}
	return k.sealSecret(s, value)
}

// rewrapDataKey opens a data key sealed for userID's secret secretID under
// any key of the keyring and seals it again under the current key, bound to
// the same user and secret. Its errors name the secret (and, for
// seal.ErrUnknownKey, the master key it is sealed under).
func (k keyring) rewrapDataKey(sealed []byte, userID, secretID string) ([]byte, error) {
	return k.rewrapKey(sealed, dataKeyAAD(userID, secretID), secretID)
}

// rewrapKey is rewrapDataKey for a data key bound to keyAAD (an oauth2
// secret's tokens have a data key of their own, oauth2KeyAAD).
func (k keyring) rewrapKey(sealed, keyAAD []byte, secretID string) ([]byte, error) {
	out, err := k.Rewrap(sealed, keyAAD)
	if err != nil {
		if errors.Is(err, seal.ErrUnknownKey) {
			if id, perr := seal.SealedKeyID(sealed); perr == nil {
				return nil, fmt.Errorf("data key of secret %s is sealed under master key %s: %w", secretID, id, err)
			}
		}
		return nil, fmt.Errorf("open data key of secret %s: %w", secretID, err)
	}
	return out, nil
}

// KeyCheck is a known value sealed under a master key, stored so that
// start-up can prove ENCRYPTION_KEY is the key the database was sealed with.
type KeyCheck struct {
	KeyID  string
	Sealed []byte
}

// newKeyCheck returns the key check value of the current master key.
func (k keyring) newKeyCheck() KeyCheck {
	return KeyCheck{KeyID: k.CurrentID(), Sealed: k.SealCheck(labelKeyCheck)}
}

// openKeyCheck verifies c; it returns the errors of seal.Keyring.OpenCheck.
func (k keyring) openKeyCheck(c KeyCheck) error { return k.OpenCheck(c.Sealed, labelKeyCheck) }

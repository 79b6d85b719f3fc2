package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// A sealed message is
//
//	version (1 byte) | key id (4 bytes, big endian) | nonce (12 bytes) | ciphertext | GCM tag (16 bytes)
//
// The key id says which key sealed it: a master key's id (see KeyID) for a
// sealed data key, and 0 for a value sealed under its own data key.
const (
	sealVersion  byte = 1
	keySize           = 32
	nonceSize         = 12
	tagSize           = 16
	headerSize        = 1 + 4 + nonceSize
	sealOverhead      = headerSize + tagSize
)

// Sentinel errors of the crypto layer. None of them carries key material or
// plaintext.
var (
	ErrCiphertextShort = errors.New("vault: sealed message too short")
	ErrVersion         = errors.New("vault: unknown sealed message version")
	ErrUnknownKey      = errors.New("vault: sealed under a key that is not configured")
	ErrOpen            = errors.New("vault: message authentication failed")
	ErrKeyLength       = errors.New("vault: key must be exactly 32 bytes")
)

// sealer is one AES-256-GCM key with the id written into what it seals.
type sealer struct {
	id   uint32
	aead cipher.AEAD
}

func newSealer(key []byte, id uint32) (*sealer, error) {
	if len(key) != keySize {
		return nil, ErrKeyLength
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("new aes cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("new gcm: %w", err)
	}
	return &sealer{id: id, aead: aead}, nil
}

// Seal encrypts plaintext bound to aad under a fresh random nonce.
func (s *sealer) Seal(plaintext, aad []byte) []byte {
	out := make([]byte, headerSize, headerSize+len(plaintext)+tagSize)
	out[0] = sealVersion
	binary.BigEndian.PutUint32(out[1:5], s.id)
	if _, err := rand.Read(out[5:headerSize]); err != nil {
		panic(fmt.Sprintf("vault: read random nonce: %v", err))
	}
	return s.aead.Seal(out, out[5:headerSize], plaintext, aad)
}

// Open authenticates and decrypts a message sealed by Seal with the same aad.
func (s *sealer) Open(sealed, aad []byte) ([]byte, error) {
	id, err := parseSealed(sealed)
	if err != nil {
		return nil, err
	}
	if id != s.id {
		return nil, ErrUnknownKey
	}
	return s.open(sealed, aad)
}

func (s *sealer) open(sealed, aad []byte) ([]byte, error) {
	pt, err := s.aead.Open(nil, sealed[5:headerSize], sealed[headerSize:], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// parseSealed checks the header of a sealed message and returns its key id.
// It checks every length before it slices.
func parseSealed(sealed []byte) (uint32, error) {
	if len(sealed) < 1 {
		return 0, ErrCiphertextShort
	}
	if sealed[0] != sealVersion {
		return 0, ErrVersion
	}
	if len(sealed) < sealOverhead {
		return 0, ErrCiphertextShort
	}
	return binary.BigEndian.Uint32(sealed[1:5]), nil
}

// SealedKeyID returns the id, as KeyID formats it, of the key that sealed a
// message.
func SealedKeyID(sealed []byte) (string, error) {
	id, err := parseSealed(sealed)
	if err != nil {
		return "", err
	}
	return formatKeyID(id), nil
}

// ParseKey decodes a master key given as standard or URL-safe base64 of
// exactly 32 bytes. Its errors never contain the key.
func ParseKey(encoded string) ([]byte, error) {
	encoded = strings.TrimSpace(encoded)
	if encoded == "" {
		return nil, errors.New("key is empty: expected base64 of exactly 32 bytes (make one with `envvault keygen`)")
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if key, err := enc.DecodeString(encoded); err == nil {
			if len(key) != keySize {
				return nil, fmt.Errorf("key decodes to %d bytes: expected base64 of exactly 32 bytes (make one with `envvault keygen`)", len(key))
			}
			return key, nil
		}
	}
	return nil, errors.New("key is not valid base64: expected base64 of exactly 32 bytes (make one with `envvault keygen`)")
}

// GenerateKey returns a fresh random master key, base64-encoded.
func GenerateKey() string {
	key := make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		panic(fmt.Sprintf("vault: read random key: %v", err))
	}
	return base64.StdEncoding.EncodeToString(key)
}

// KeyID returns the public id of a master key: the first 4 bytes of
// HMAC-SHA256(key, "envvault key id v1"), as 8 hex digits. It reveals
// nothing usable about the key.
func KeyID(key []byte) string { return formatKeyID(keyID(key)) }

func keyID(key []byte) uint32 {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("envvault key id v1"))
	return binary.BigEndian.Uint32(m.Sum(nil)[:4])
}

func formatKeyID(id uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], id)
	return hex.EncodeToString(b[:])
}

// Keyring holds the current master key, which seals, and previous ones,
// which may still open data keys sealed before a rotation.
type Keyring struct {
	current *sealer
	byID    map[uint32]*sealer
	session *sessionKeys // derived from the current key (session.go)
}

// NewKeyring returns a keyring whose current key is current. It fails if a
// key is not 32 bytes or two keys are the same.
func NewKeyring(current []byte, previous ...[]byte) (*Keyring, error) {
	keys := append([][]byte{current}, previous...)
	k := &Keyring{byID: make(map[uint32]*sealer, len(keys))}
	for i, key := range keys {
		for _, other := range keys[:i] {
			// Constant time: a key is never compared with an early exit.
			if subtle.ConstantTimeCompare(key, other) == 1 {
				return nil, fmt.Errorf("master key %d is given twice", i)
			}
		}
		id := keyID(key)
		if _, dup := k.byID[id]; dup {
			return nil, fmt.Errorf("master keys %s collide: use a different key", formatKeyID(id))
		}
		s, err := newSealer(key, id)
		if err != nil {
			return nil, fmt.Errorf("master key %d: %w", i, err)
		}
		k.byID[id] = s
		if i == 0 {
			k.current = s
			k.session = deriveSessionKeys(key)
		}
	}
	return k, nil
}

// CurrentID returns the id of the key that seals.
func (k *Keyring) CurrentID() string { return formatKeyID(k.current.id) }

// Has reports whether the keyring holds the key with the given id.
func (k *Keyring) Has(id string) bool {
	for i := range k.byID {
		if formatKeyID(i) == id {
			return true
		}
	}
	return false
}

// Seal encrypts plaintext bound to aad under the current key.
func (k *Keyring) Seal(plaintext, aad []byte) []byte { return k.current.Seal(plaintext, aad) }

// Open decrypts a message sealed under any key of the keyring. It returns
// ErrUnknownKey if the key that sealed it is not in the keyring, ErrOpen if
// the message or aad was changed, ErrVersion or ErrCiphertextShort if it is
// not a sealed message at all.
func (k *Keyring) Open(sealed, aad []byte) ([]byte, error) {
	id, err := parseSealed(sealed)
	if err != nil {
		return nil, err
	}
	s, ok := k.byID[id]
	if !ok {
		return nil, ErrUnknownKey
	}
	return s.open(sealed, aad)
}

// aad builds additional authenticated data from a purpose label and parts,
// each length-prefixed so that no two different part lists encode alike.
func aad(label string, parts ...string) []byte {
	n := len(label)
	for _, p := range parts {
		n += 4 + len(p)
	}
	b := make([]byte, 0, n)
	b = append(b, label...)
	for _, p := range parts {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return b
}

const (
	labelValue    = "envvault secret value v1"
	labelDataKey  = "envvault data key v1"
	labelKeyCheck = "envvault key check v1"
)

// sealSecret encrypts value under a fresh data key, bound to the user id,
// secret id and name, and seals the data key under the current master key.
// It sets s.SealedValue, s.SealedKey and s.MasterKeyID.
func (k *Keyring) sealSecret(s *Secret, value string) error {
	dek := make([]byte, keySize)
	defer clear(dek)
	if _, err := rand.Read(dek); err != nil {
		return fmt.Errorf("read random data key: %w", err)
	}
	ds, err := newSealer(dek, 0)
	if err != nil {
		return err
	}
	s.SealedValue = ds.Seal([]byte(value), aad(labelValue, s.UserID, s.ID, s.Name))
	s.SealedKey = k.Seal(dek, aad(labelDataKey, s.UserID, s.ID))
	s.MasterKeyID = k.CurrentID()
	return nil
}

// openSecret returns the plaintext value of s. Its errors never contain key
// material or plaintext.
func (k *Keyring) openSecret(s *Secret) (string, error) {
	dek, err := k.Open(s.SealedKey, aad(labelDataKey, s.UserID, s.ID))
	if err != nil {
		return "", fmt.Errorf("open data key of secret %s: %w", s.ID, err)
	}
	defer clear(dek)
	ds, err := newSealer(dek, 0)
	if err != nil {
		return "", fmt.Errorf("open data key of secret %s: %w", s.ID, err)
	}
	pt, err := ds.Open(s.SealedValue, aad(labelValue, s.UserID, s.ID, s.Name))
	if err != nil {
		return "", fmt.Errorf("open value of secret %s: %w", s.ID, err)
	}
	return string(pt), nil
}

// rewrapSecret reseals the value of s for its current UserID, ID and Name,
// which may differ from those it was sealed for (oldName), under a fresh
// data key. It is how a rename keeps the value bound to the new name.
func (k *Keyring) rewrapSecret(s *Secret, oldName string) error {
	renamed := *s
	renamed.Name = oldName
	value, err := k.openSecret(&renamed)
	if err != nil {
		return err
	}
	return k.sealSecret(s, value)
}

// KeyCheck is a known value sealed under a master key, stored so that
// start-up can prove ENCRYPTION_KEY is the key the database was sealed with.
type KeyCheck struct {
	KeyID  string
	Sealed []byte
}

func (k *Keyring) newKeyCheck() KeyCheck {
	return KeyCheck{KeyID: k.CurrentID(), Sealed: k.Seal([]byte(labelKeyCheck), aad(labelKeyCheck))}
}

func (k *Keyring) openKeyCheck(c KeyCheck) error {
	pt, err := k.Open(c.Sealed, aad(labelKeyCheck))
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(pt, []byte(labelKeyCheck)) != 1 {
		return ErrOpen
	}
	return nil
}

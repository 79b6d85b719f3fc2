// Package seal is envvault's crypto layer, the one place that holds key
// material: it seals and opens messages with AES-256-GCM under a keyring of
// master keys, seals values in envelopes under fresh data keys, re-wraps
// data keys after a rotation, and derives keys for other purposes (MAC).
// Callers above it pass plaintext, additional authenticated data (AAD) and
// sealed bytes; they never see a key.
//
// A sealed message is
//
//	version (1 byte) | key id (4 bytes, big endian) | nonce (12 bytes) | ciphertext | GCM tag (16 bytes)
//
// The version is 1. The key id says which key sealed it: a master key's id
// (see KeyID) for a message sealed by a Keyring, such as a data key, and 0
// for a value sealed under its own data key in an envelope. The nonce is
// random per message. The AAD is not stored: the opener must give the same
// bytes, normally built with AAD from a purpose label and the ids the
// message is bound to. This format and every label in use are part of the
// stored data: changing either makes existing databases unreadable.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

const (
	version    byte = 1
	keySize         = 32
	nonceSize       = 12
	tagSize         = 16
	nonceAt         = 1 + 4 // after the version and key id
	headerSize      = nonceAt + nonceSize
	// Overhead is how many bytes a sealed message has beyond its plaintext:
	// anything shorter is not a sealed message.
	Overhead = headerSize + tagSize
)

// Sentinel errors of the crypto layer. None of them, nor any error of this
// package, carries key material or plaintext.
var (
	ErrCiphertextShort = errors.New("seal: sealed message too short")
	ErrVersion         = errors.New("seal: unknown sealed message version")
	ErrUnknownKey      = errors.New("seal: sealed under a key that is not configured")
	ErrOpen            = errors.New("seal: message authentication failed")
	ErrKeyLength       = errors.New("seal: key must be exactly 32 bytes")
)

// sealer is one AES-256-GCM key with the id written into what it seals.
type sealer struct {
	id   uint32
	aead cipher.AEAD
}

// newSealer returns a sealer of key; ErrKeyLength if key is not 32 bytes.
func newSealer(key []byte, id uint32) (*sealer, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	return &sealer{id: id, aead: aead}, nil
}

// newAEAD returns AES-256-GCM under key; ErrKeyLength if key is not 32
// bytes.
func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != keySize {
		return nil, ErrKeyLength
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal: new aes cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("seal: new gcm: %w", err)
	}
	return aead, nil
}

// seal encrypts plaintext bound to aad under a fresh random nonce.
func (s *sealer) seal(plaintext, aad []byte) []byte {
	out := make([]byte, headerSize, headerSize+len(plaintext)+tagSize)
	out[0] = version
	binary.BigEndian.PutUint32(out[1:nonceAt], s.id)
	if _, err := rand.Read(out[nonceAt:headerSize]); err != nil {
		panic(fmt.Sprintf("seal: read random nonce: %v", err))
	}
	return s.aead.Seal(out, out[nonceAt:headerSize], plaintext, aad)
}

// decrypt authenticates and decrypts a message whose header parse checked.
func (s *sealer) decrypt(sealed, aad []byte) ([]byte, error) {
	pt, err := s.aead.Open(nil, sealed[nonceAt:headerSize], sealed[headerSize:], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// parse checks the header of a sealed message and returns its key id. It
// checks every length before it slices. Returns ErrCiphertextShort or
// ErrVersion.
func parse(sealed []byte) (uint32, error) {
	if len(sealed) < 1 {
		return 0, ErrCiphertextShort
	}
	if sealed[0] != version {
		return 0, ErrVersion
	}
	if len(sealed) < Overhead {
		return 0, ErrCiphertextShort
	}
	return binary.BigEndian.Uint32(sealed[1:nonceAt]), nil
}

// SealedKeyID returns the id, as KeyID formats it, of the key that sealed a
// message. Returns ErrCiphertextShort or ErrVersion if it is not a sealed
// message.
func SealedKeyID(sealed []byte) (string, error) {
	id, err := parse(sealed)
	if err != nil {
		return "", err
	}
	return formatKeyID(id), nil
}

// ParseKey decodes a master key given as standard or URL-safe base64, with
// or without padding, of exactly 32 bytes. Its errors never contain the key.
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

// GenerateKey returns a fresh random master key, standard base64.
func GenerateKey() string {
	key := make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		panic(fmt.Sprintf("seal: read random key: %v", err))
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

// AAD builds additional authenticated data from a purpose label and parts,
// each part length-prefixed (4 bytes, big endian) so that no two different
// part lists encode alike.
func AAD(label string, parts ...string) []byte {
	n := len(label)
	for _, p := range parts {
		n += 4 + len(p)
	}
	return AppendAAD(make([]byte, 0, n), label, parts...)
}

// AppendAAD appends AAD(label, parts...) to b and returns the extended
// slice, for a caller that reuses one buffer.
func AppendAAD(b []byte, label string, parts ...string) []byte {
	b = append(b, label...)
	for _, p := range parts {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return b
}

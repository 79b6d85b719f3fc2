package seal

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
)

// Keyring holds the current master key, which seals, and previous ones,
// which may still open what was sealed before a rotation.
type Keyring struct {
	current    *sealer
	currentKey []byte // a copy, for MAC
	byID       map[uint32]*sealer
}

// NewKeyring returns a keyring whose current key is current. It fails if a
// key is not 32 bytes (wrapping ErrKeyLength) or two keys are the same. It
// keeps no reference to the slices it is given.
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
			k.currentKey = append([]byte(nil), key...)
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
func (k *Keyring) Seal(plaintext, aad []byte) []byte { return k.current.seal(plaintext, aad) }

// Open decrypts a message sealed under any key of the keyring. It returns
// ErrUnknownKey if the key that sealed it is not in the keyring, ErrOpen if
// the message or aad was changed, ErrVersion or ErrCiphertextShort if it is
// not a sealed message at all.
func (k *Keyring) Open(sealed, aad []byte) ([]byte, error) {
	id, err := parse(sealed)
	if err != nil {
		return nil, err
	}
	s, ok := k.byID[id]
	if !ok {
		return nil, ErrUnknownKey
	}
	return s.decrypt(sealed, aad)
}

// Envelope is a value sealed under a fresh data key, and that data key
// sealed under master key KeyID.
type Envelope struct {
	Value []byte // the value under the data key (key id 0)
	Key   []byte // the data key under the master key
	KeyID string
}

// SealEnvelope seals plaintext bound to valueAAD under a fresh random data
// key, and the data key bound to keyAAD under the current master key. The
// data key is cleared before it returns. Its only error is a failure to
// read randomness.
func (k *Keyring) SealEnvelope(plaintext, valueAAD, keyAAD []byte) (Envelope, error) {
	dek := make([]byte, keySize)
	defer clear(dek)
	if _, err := rand.Read(dek); err != nil {
		return Envelope{}, fmt.Errorf("seal: read random data key: %w", err)
	}
	ds, err := newSealer(dek, 0)
	if err != nil {
		return Envelope{}, err
	}
	return Envelope{Value: ds.seal(plaintext, valueAAD), Key: k.Seal(dek, keyAAD), KeyID: k.CurrentID()}, nil
}

// OpenEnvelope opens the data key key (bound to keyAAD) with the keyring,
// then value (bound to valueAAD) with the data key, which it clears after
// use. Its errors wrap those of Open, saying whether the data key or the
// value failed.
func (k *Keyring) OpenEnvelope(value, key, valueAAD, keyAAD []byte) ([]byte, error) {
	o := k.NewOpener()
	defer o.Close()
	return o.open(nil, value, key, valueAAD, keyAAD)
}

// Opener opens envelopes one after another with fewer allocations than
// OpenEnvelope: it opens each data key into one buffer it reuses and
// clears, and the value into a buffer the caller reuses. It is not safe
// for concurrent use; Close clears its buffer.
type Opener struct {
	k   *Keyring
	dek []byte
}

// NewOpener returns an Opener of envelopes sealed under the keyring.
func (k *Keyring) NewOpener() *Opener { return &Opener{k: k, dek: make([]byte, 0, keySize)} }

// AppendOpen is OpenEnvelope that appends the plaintext to dst and returns
// the extended slice; the caller clears dst when done with the plaintext.
// Its errors are those of OpenEnvelope.
func (o *Opener) AppendOpen(dst, value, key, valueAAD, keyAAD []byte) ([]byte, error) {
	return o.open(dst, value, key, valueAAD, keyAAD)
}

// Close clears the last data key opened.
func (o *Opener) Close() { clear(o.dek[:cap(o.dek)]) }

func (o *Opener) open(dst, value, key, valueAAD, keyAAD []byte) ([]byte, error) {
	id, err := parse(key)
	if err != nil {
		return nil, fmt.Errorf("open data key: %w", err)
	}
	master, ok := o.k.byID[id]
	if !ok {
		return nil, fmt.Errorf("open data key: %w", ErrUnknownKey)
	}
	o.dek, err = master.aead.Open(o.dek[:0], key[nonceAt:headerSize], key[headerSize:], keyAAD)
	if err != nil {
		return nil, fmt.Errorf("open data key: %w", ErrOpen)
	}
	aead, err := newAEAD(o.dek)
	clear(o.dek)
	if err != nil {
		return nil, fmt.Errorf("open data key: %w", err)
	}
	if id, err := parse(value); err != nil {
		return nil, fmt.Errorf("open value: %w", err)
	} else if id != 0 { // a value is sealed under its data key, id 0
		return nil, fmt.Errorf("open value: %w", ErrUnknownKey)
	}
	pt, err := aead.Open(dst, value[nonceAt:headerSize], value[headerSize:], valueAAD)
	if err != nil {
		return nil, fmt.Errorf("open value: %w", ErrOpen)
	}
	return pt, nil
}

// Rewrap opens a data key sealed bound to keyAAD under any key of the
// keyring and seals it again, bound to the same keyAAD, under the current
// key. The data key is cleared after use. Its errors are those of Open.
func (k *Keyring) Rewrap(sealedKey, keyAAD []byte) ([]byte, error) {
	dek, err := k.Open(sealedKey, keyAAD)
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	return k.Seal(dek, keyAAD), nil
}

// SealCheck returns a key check value: label sealed under the current key,
// bound to AAD(label). Stored beside sealed data, it lets a later start-up
// prove with OpenCheck that it holds the key the data was sealed with.
func (k *Keyring) SealCheck(label string) []byte {
	return k.Seal([]byte(label), AAD(label))
}

// OpenCheck verifies a key check value made by SealCheck with the same
// label, comparing in constant time. Returns the errors of Open, or ErrOpen
// if it opens to anything but label.
func (k *Keyring) OpenCheck(sealed []byte, label string) error {
	pt, err := k.Open(sealed, AAD(label))
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(pt, []byte(label)) != 1 {
		return ErrOpen
	}
	return nil
}

// MACSize is the length of a MAC's sum.
const MACSize = sha256.Size

// MAC is HMAC-SHA256 under a key derived from a master key for one
// purpose. It never exposes its key.
type MAC struct{ key []byte }

// MAC returns the MAC whose key is HKDF-SHA256 of the current master key
// with salt and info. A distinct info per purpose keeps the derived keys
// independent of each other and of every other use of the master key; the
// same master key, salt and info always give the same key, in any process.
func (k *Keyring) MAC(salt, info string) *MAC {
	key, err := hkdf.Key(sha256.New, k.currentKey, []byte(salt), info, keySize)
	if err != nil {
		// HKDF-SHA256 yields up to 255*32 bytes; 32 never fails.
		panic(fmt.Sprintf("seal: derive key: %v", err))
	}
	return &MAC{key: key}
}

// Sum returns the HMAC-SHA256 of msg, MACSize bytes. A caller MACing more
// than one field frames them first, as AAD does.
func (m *MAC) Sum(msg []byte) []byte {
	h := hmac.New(sha256.New, m.key)
	h.Write(msg)
	return h.Sum(nil)
}

// Verify reports, in constant time, whether sum is the MAC of msg.
func (m *MAC) Verify(msg, sum []byte) bool { return hmac.Equal(sum, m.Sum(msg)) }

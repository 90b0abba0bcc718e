package oauth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"
)

// sealer encrypts and authenticates small values with AES-256-GCM: the
// pending authorization request carried through the browser while the person
// signs in (so it cannot be read or altered there), and the successor
// refresh token kept for the reuse window (so a database dump does not hold
// a usable token). The additional data names the purpose, so a value sealed
// for one use never opens for another.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != 32 {
		return nil, errors.New("oauth: seal key must be 32 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

// Seal returns nonce || ciphertext of plain for purpose.
func (s *sealer) Seal(purpose string, plain []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return s.aead.Seal(nonce, nonce, plain, []byte(purpose))
}

// Open reverses Seal; any tampering, truncation or other purpose fails.
func (s *sealer) Open(purpose string, sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, errors.New("oauth: sealed value too short")
	}
	return s.aead.Open(nil, sealed[:n], sealed[n:], []byte(purpose))
}

// SealString and OpenString use unpadded base64url, for URLs and forms.
func (s *sealer) SealString(purpose string, plain []byte) string {
	return base64.RawURLEncoding.EncodeToString(s.Seal(purpose, plain))
}

func (s *sealer) OpenString(purpose, sealed string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil {
		return nil, errors.New("oauth: sealed value is not base64url")
	}
	return s.Open(purpose, b)
}

// expiring is a sealed JSON value with an expiry (unix seconds).
type expiring interface{ expiresAt() int64 }

// SealJSON seals v as JSON for purpose, for a URL or form field.
func (s *sealer) SealJSON(purpose string, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // our own plain structs always encode
	}
	return s.SealString(purpose, b)
}

// OpenJSON opens a value SealJSON made for purpose into v, refusing
// anything longer than max characters and anything expired.
func (s *sealer) OpenJSON(purpose, raw string, max int, v expiring) error {
	if raw == "" || len(raw) > max {
		return errors.New("oauth: no sealed value")
	}
	b, err := s.OpenString(purpose, raw)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return err
	}
	if time.Now().Unix() > v.expiresAt() {
		return errors.New("oauth: sealed value expired")
	}
	return nil
}

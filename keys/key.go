package keys

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/oauthd/oauthd/storage"
)

// rsaBits is the modulus size of generated RSA keys.
const rsaBits = 2048

// Key is a decrypted, parsed signing key held in memory.
type Key struct {
	KID         string
	Alg         string
	CreatedAt   time.Time
	ActivatesAt time.Time
	RetiresAt   *time.Time

	private crypto.Signer
	public  crypto.PublicKey
	jwk     json.RawMessage // public JWK, as served

	signers *sync.Map // typ header → jose.Signer; built once, shared by copies
}

// Public returns the public key (a *rsa.PublicKey, *ecdsa.PublicKey or
// ed25519.PublicKey).
func (k *Key) Public() crypto.PublicKey { return k.public }

func generate(alg string) (crypto.Signer, error) {
	switch alg {
	case RS256:
		return rsa.GenerateKey(rand.Reader, rsaBits)
	case ES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case EdDSA:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, fmt.Errorf("unsupported algorithm %q", alg)
}

// newRecord generates a key for alg and returns it ready to store: private
// part encrypted with aead, kid = RFC 7638 thumbprint of the public key.
func newRecord(aead cipher.AEAD, alg string, activatesAt time.Time) (storage.SigningKey, error) {
	priv, err := generate(alg)
	if err != nil {
		return storage.SigningKey{}, err
	}
	pub := jose.JSONWebKey{Key: priv.Public(), Algorithm: alg, Use: "sig"}
	thumb, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return storage.SigningKey{}, err
	}
	pub.KeyID = base64.RawURLEncoding.EncodeToString(thumb)
	jwk, err := pub.MarshalJSON()
	if err != nil {
		return storage.SigningKey{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return storage.SigningKey{}, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return storage.SigningKey{}, err
	}
	// The kid is associated data: a ciphertext moved to another row fails to open.
	sealed := aead.Seal(nonce, nonce, der, []byte(pub.KeyID))
	return storage.SigningKey{
		KID:         pub.KeyID,
		Alg:         alg,
		PrivateKey:  sealed,
		PublicJWK:   string(jwk),
		ActivatesAt: activatesAt.UTC(),
	}, nil
}

// errUndecryptable means the key was encrypted under another system secret.
var errUndecryptable = errors.New("cannot decrypt signing key: OAUTHD_SECRET differs from the secret the key was created with")

// openRecord decrypts a stored key's PKCS#8 DER.
func openRecord(aead cipher.AEAD, r storage.SigningKey) ([]byte, error) {
	if len(r.PrivateKey) < aead.NonceSize() {
		return nil, fmt.Errorf("key %s: %w", r.KID, errUndecryptable)
	}
	nonce, sealed := r.PrivateKey[:aead.NonceSize()], r.PrivateKey[aead.NonceSize():]
	der, err := aead.Open(nil, nonce, sealed, []byte(r.KID))
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", r.KID, errUndecryptable)
	}
	return der, nil
}

// parseRecord decrypts and parses a stored key.
func parseRecord(aead cipher.AEAD, r storage.SigningKey) (*Key, error) {
	der, err := openRecord(aead, r)
	if err != nil {
		return nil, err
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("key %s: parse private key: %w", r.KID, err)
	}
	priv, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key %s: unsupported key type %T", r.KID, parsed)
	}
	if err := checkAlg(r.Alg, priv); err != nil {
		return nil, fmt.Errorf("key %s: %w", r.KID, err)
	}
	return &Key{
		KID:         r.KID,
		Alg:         r.Alg,
		CreatedAt:   r.CreatedAt,
		ActivatesAt: r.ActivatesAt,
		RetiresAt:   r.RetiresAt,
		private:     priv,
		public:      priv.Public(),
		jwk:         json.RawMessage(r.PublicJWK),
		signers:     &sync.Map{},
	}, nil
}

func checkAlg(alg string, k crypto.Signer) error {
	switch k.(type) {
	case *rsa.PrivateKey:
		if alg == RS256 {
			return nil
		}
	case *ecdsa.PrivateKey:
		if alg == ES256 {
			return nil
		}
	case ed25519.PrivateKey:
		if alg == EdDSA {
			return nil
		}
	}
	return fmt.Errorf("algorithm %s does not match key type %T", alg, k)
}

func newAEAD(kek []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// sign returns the compact JWS of payload with header typ and this key's kid.
func (k *Key) sign(typ string, payload []byte) (string, error) {
	var s jose.Signer
	if v, ok := k.signers.Load(typ); ok {
		s = v.(jose.Signer)
	} else {
		opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ))
		ns, err := jose.NewSigner(jose.SigningKey{
			Algorithm: jose.SignatureAlgorithm(k.Alg),
			Key:       jose.JSONWebKey{Key: k.private, KeyID: k.KID, Algorithm: k.Alg},
		}, opts)
		if err != nil {
			return "", err
		}
		v, _ := k.signers.LoadOrStore(typ, ns)
		s = v.(jose.Signer)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// etagOf returns a strong ETag for a document.
func etagOf(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
}

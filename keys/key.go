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
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

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

	headers *sync.Map // typ → encoded protected header; built once, shared by copies
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
		headers:     &sync.Map{},
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

// sign returns the compact JWS (RFC 7515 §7.1) of payload with header typ
// and this key's kid.
//
// This is the hottest code of the server (every token request), so it is
// written out rather than going through go-jose's signer, which marshals
// the same protected header to JSON on every call: here the encoded header
// is built once per key and typ, and the signature is made directly with
// the standard library. go-jose still verifies (Verify) and builds the JWKS;
// the tests check every signed token with it.
func (k *Key) sign(typ string, payload []byte) (string, error) {
	prefix, err := k.headerPrefix(typ)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	buf := make([]byte, 0, len(prefix)+enc.EncodedLen(len(payload))+1+enc.EncodedLen(512))
	buf = append(buf, prefix...)
	buf = enc.AppendEncode(buf, payload)
	sig, err := k.signingInput(buf)
	if err != nil {
		return "", err
	}
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)
	return string(buf), nil
}

// headerPrefix returns base64url(protected header) + "." for typ, built once.
func (k *Key) headerPrefix(typ string) (string, error) {
	if v, ok := k.headers.Load(typ); ok {
		return v.(string), nil
	}
	h, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{k.Alg, k.KID, typ})
	if err != nil {
		return "", err
	}
	v, _ := k.headers.LoadOrStore(typ, base64.RawURLEncoding.EncodeToString(h)+".")
	return v.(string), nil
}

// signingInput signs the JWS signing input with the algorithm of the key:
// RS256 (RSASSA-PKCS1-v1_5, SHA-256), ES256 (P-256, SHA-256, R||S as RFC
// 7518 §3.4 requires, not ASN.1) or EdDSA (Ed25519, RFC 8037).
func (k *Key) signingInput(input []byte) ([]byte, error) {
	switch priv := k.private.(type) {
	case *ecdsa.PrivateKey:
		digest := sha256.Sum256(input)
		der, err := ecdsa.SignASN1(rand.Reader, priv, digest[:])
		if err != nil {
			return nil, err
		}
		return derToFixed(der, 32)
	case *rsa.PrivateKey:
		digest := sha256.Sum256(input)
		return rsa.SignPKCS1v15(nil, priv, crypto.SHA256, digest[:])
	case ed25519.PrivateKey:
		return ed25519.Sign(priv, input), nil
	}
	return nil, fmt.Errorf("key %s: unsupported key type %T", k.KID, k.private)
}

// derToFixed converts an ASN.1 ECDSA signature to the fixed-size R||S form.
func derToFixed(der []byte, size int) ([]byte, error) {
	var r, s []byte
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, asn1.SEQUENCE) || !in.Empty() ||
		!seq.ReadASN1Integer(&r) || !seq.ReadASN1Integer(&s) || !seq.Empty() {
		return nil, errors.New("malformed ECDSA signature")
	}
	out := make([]byte, 2*size)
	if !fillFixed(out[:size], r) || !fillFixed(out[size:], s) {
		return nil, errors.New("ECDSA signature component too large")
	}
	return out, nil
}

// fillFixed writes the big-endian integer v (possibly with a leading zero
// byte from DER) right-aligned into dst.
func fillFixed(dst, v []byte) bool {
	for len(v) > 0 && v[0] == 0 {
		v = v[1:]
	}
	if len(v) > len(dst) {
		return false
	}
	copy(dst[len(dst)-len(v):], v)
	return true
}

// etagOf returns a strong ETag for a document.
func etagOf(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
}

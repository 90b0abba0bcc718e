package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/ory/fosite/token/jwt"

	"github.com/oauthd/oauthd/keys"
)

// verifier is what the signer needs from the key manager to read tokens.
type verifier interface {
	Verify(ctx context.Context, token string) (*keys.Verified, error)
}

// signer adapts our key manager to fosite's jwt.Signer. fosite's own
// DefaultSigner signs with one key, verifies only against that key (so
// rotation breaks every older token), writes typ "JWT" and knows no Ed25519.
// This one signs through sign (keys.Manager.SignAccessToken: the active key
// of the access-token algorithm, typ at+jwt, RFC 9068 §2.1; the ID-token
// signer will use SignIDToken) and verifies by kid against every published
// key.
type signer struct {
	sign func(payload []byte) (string, error)
	keys verifier
}

var _ jwt.Signer = (*signer)(nil)

// Generate signs claims. The header argument is ignored on purpose: the
// signer owns typ and kid, so a stale kid in a stored session can never end
// up in a new token.
func (s *signer) Generate(_ context.Context, claims jwt.MapClaims, _ jwt.Mapper) (string, string, error) {
	if sc, ok := claims["scope"].(string); ok && sc == "" {
		delete(claims, "scope") // RFC 9068 §2.2.3: scope is present when scopes were granted
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", "", fmt.Errorf("encode claims: %w", err)
	}
	token, err := s.sign(payload)
	if err != nil {
		return "", "", err
	}
	return token, token[strings.LastIndexByte(token, '.')+1:], nil
}

// Decode verifies the signature by kid and returns the token with its
// claims. Claim validation (exp, iat, nbf) is the caller's.
func (s *signer) Decode(ctx context.Context, token string) (*jwt.Token, error) {
	v, err := s.keys.Verify(ctx, token)
	if err != nil {
		kind := uint32(jwt.ValidationErrorSignatureInvalid)
		if errors.Is(err, keys.ErrUnknownKey) {
			kind = jwt.ValidationErrorUnverifiable
		}
		return nil, &jwt.ValidationError{Errors: kind, Inner: err}
	}
	var claims jwt.MapClaims
	if err := json.Unmarshal(v.Payload, &claims); err != nil {
		return nil, &jwt.ValidationError{Errors: jwt.ValidationErrorMalformed, Inner: err}
	}
	return &jwt.Token{
		Header: map[string]interface{}{"alg": v.Alg, "kid": v.KID, "typ": v.Typ},
		Claims: claims,
		Method: "",
	}, nil
}

// Validate verifies the token and its time claims and returns its signature.
func (s *signer) Validate(ctx context.Context, token string) (string, error) {
	t, err := s.Decode(ctx, token)
	if err != nil {
		return "", err
	}
	if err := t.Claims.Valid(); err != nil {
		return "", err
	}
	return s.GetSignature(ctx, token)
}

// Hash is used for at_hash/c_hash (OIDC Core §3.1.3.6): SHA-256 for RS256,
// ES256 and (by convention) EdDSA.
func (s *signer) Hash(_ context.Context, in []byte) ([]byte, error) {
	sum := sha256.Sum256(in)
	return sum[:], nil
}

// GetSignature returns the third segment of a compact JWS.
func (s *signer) GetSignature(_ context.Context, token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errors.New("token is not a compact JWS")
	}
	return parts[2], nil
}

// GetSigningMethodLength is the size of the hash Hash returns.
func (s *signer) GetSigningMethodLength(context.Context) int { return sha256.Size }

package accounts

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"
)

// Params are the argon2id cost parameters (RFC 9106). They are written into
// every hash, so changing them affects new hashes only.
type Params struct {
	MemoryKiB   uint32
	Iterations  uint32
	Parallelism uint8
}

// DefaultParams: 64 MiB, 2 passes, 2 lanes (about 100 ms on one core of the
// reference machine); RFC 9106 §7.4 and OWASP's argon2id guidance sit around it.
var DefaultParams = Params{MemoryKiB: 64 << 10, Iterations: 2, Parallelism: 2}

// Validate reports parameters that are too weak or absurd.
func (p Params) Validate() error {
	switch {
	case p.MemoryKiB < 8<<10:
		return fmt.Errorf("argon2 memory %d KiB is below the minimum of 8192 KiB", p.MemoryKiB)
	case p.MemoryKiB > 4<<20:
		return fmt.Errorf("argon2 memory %d KiB is above the maximum of 4 GiB", p.MemoryKiB)
	case p.Iterations < 1 || p.Iterations > 100:
		return fmt.Errorf("argon2 iterations must be between 1 and 100")
	case p.Parallelism < 1:
		return fmt.Errorf("argon2 parallelism must be at least 1")
	}
	return nil
}

const (
	saltLen = 16
	keyLen  = 32
	// maxPasswordBytes bounds the work an unauthenticated request can ask
	// for; passphrases fit easily.
	maxPasswordBytes = 1024
	minPasswordRunes = 8
)

// ErrMismatch: the password does not match.
var ErrMismatch = errors.New("accounts: password mismatch")

// normalizePassword applies NFKC (NIST SP 800-63B §5.1.1.2), so the same
// password typed on different keyboards or platforms hashes the same.
func normalizePassword(pw string) []byte { return []byte(norm.NFKC.String(pw)) }

// hash returns the PHC string of password under p.
func hash(password string, p Params) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey(normalizePassword(password), salt, p.Iterations, p.MemoryKiB, p.Parallelism, keyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Iterations, p.Parallelism,
		enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// verify checks password against a PHC string in constant time.
func verify(encoded, password string) error {
	p, salt, want, err := parseHash(encoded)
	if err != nil {
		return err
	}
	got := argon2.IDKey(normalizePassword(password), salt, p.Iterations, p.MemoryKiB, p.Parallelism, uint32(len(want)))
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return ErrMismatch
	}
	return nil
}

// parseHash reads "$argon2id$v=19$m=..,t=..,p=..$salt$key".
func parseHash(encoded string) (Params, []byte, []byte, error) {
	var p Params
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, errors.New("accounts: not an argon2id hash")
	}
	var m, t, par uint64
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil {
			return p, nil, nil, errors.New("accounts: bad argon2id parameters")
		}
		switch k {
		case "m":
			m = n
		case "t":
			t = n
		case "p":
			par = n
		}
	}
	if m == 0 || t == 0 || par == 0 || par > 255 {
		return p, nil, nil, errors.New("accounts: bad argon2id parameters")
	}
	p = Params{MemoryKiB: uint32(m), Iterations: uint32(t), Parallelism: uint8(par)}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 {
		return p, nil, nil, errors.New("accounts: bad argon2id salt or key")
	}
	return p, salt, key, nil
}

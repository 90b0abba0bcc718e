package keys

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"math/big"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

func derSig(r, s *big.Int) []byte {
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(r)
		b.AddASN1BigInt(s)
	})
	return b.BytesOrPanic()
}

// TestDERToFixed covers the R||S conversion of ES256 signatures, whose
// rare cases (a component with its top bit set gets a leading zero in DER;
// a short component must be left-padded) random signatures hit only once
// in a few hundred tokens.
func TestDERToFixed(t *testing.T) {
	full := new(big.Int).SetBytes(bytes.Repeat([]byte{0xff}, 32)) // DER adds a 0x00
	short := big.NewInt(0x0102)                                   // must be left-padded
	tests := []struct {
		name string
		r, s *big.Int
	}{
		{"high bit set", full, full},
		{"short components", short, big.NewInt(1)},
		{"mixed", full, short},
	}
	for _, tc := range tests {
		out, err := derToFixed(derSig(tc.r, tc.s), 32)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(out) != 64 || new(big.Int).SetBytes(out[:32]).Cmp(tc.r) != 0 || new(big.Int).SetBytes(out[32:]).Cmp(tc.s) != 0 {
			t.Errorf("%s: got %x", tc.name, out)
		}
	}
	tooBig := new(big.Int).Lsh(big.NewInt(1), 256)
	if _, err := derToFixed(derSig(tooBig, short), 32); err == nil {
		t.Error("accepted a 257-bit component")
	}
	for _, bad := range [][]byte{nil, {0x30}, {0x30, 0x00}, append(derSig(short, short), 0)} {
		if _, err := derToFixed(bad, 32); err == nil {
			t.Errorf("accepted malformed DER %x", bad)
		}
	}

	// Real signatures verify after conversion.
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	digest := sha256.Sum256([]byte("x"))
	for i := 0; i < 200; i++ {
		der, _ := ecdsa.SignASN1(rand.Reader, priv, digest[:])
		out, err := derToFixed(der, 32)
		if err != nil {
			t.Fatal(err)
		}
		r, s := new(big.Int).SetBytes(out[:32]), new(big.Int).SetBytes(out[32:])
		if !ecdsa.Verify(&priv.PublicKey, digest[:], r, s) {
			t.Fatal("converted signature does not verify")
		}
	}
}

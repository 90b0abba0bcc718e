package accounts

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/oauthd/oauthd/storage/storagetest"
)

// cheap are the cheapest parameters Validate accepts, to keep tests fast.
var cheap = Params{MemoryKiB: 8 << 10, Iterations: 1, Parallelism: 1}

func TestNormalizeUsername(t *testing.T) {
	same := [][]string{
		{"alice", "Alice", "ALICE", "aLiCe"},
		{"zoë", "Zoë", "zoe\u0308", "ZOE\u0308"}, // composed and decomposed ë
		{"straße", "STRASSE", "strasse"},         // full case folding
	}
	for _, group := range same {
		want, err := NormalizeUsername(group[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range group[1:] {
			if got, err := NormalizeUsername(v); err != nil || got != want {
				t.Errorf("NormalizeUsername(%q) = %q, %v; want %q", v, got, err, want)
			}
		}
	}
	for _, bad := range []string{"", " alice", "alice ", "al\x00ice", "al\u200bice", "a\tb", strings.Repeat("x", 129), "\xff"} {
		if _, err := NormalizeUsername(bad); err == nil {
			t.Errorf("NormalizeUsername(%q) accepted", bad)
		}
	}
	if _, err := NormalizeUsername("ann.lee+1@example.com"); err != nil {
		t.Errorf("email-like username refused: %v", err)
	}
}

func TestPasswordHashing(t *testing.T) {
	h, err := hash("correct horse", cheap)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=8192,t=1,p=1$") || strings.Contains(h, "correct") {
		t.Fatalf("hash %q", h)
	}
	h2, _ := hash("correct horse", cheap)
	if h == h2 {
		t.Error("two hashes of one password are equal: salt not random")
	}
	tests := []struct {
		name, pw string
		ok       bool
	}{
		{"same", "correct horse", true},
		{"NFKC-equal (fullwidth letters)", "ｃｏｒｒｅｃｔ horse", true},
		{"different", "correct horsE", false},
		{"prefix", "correct hors", false},
		{"empty", "", false},
	}
	for _, tc := range tests {
		if err := verify(h, tc.pw); (err == nil) != tc.ok {
			t.Errorf("%s: verify = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5", "$argon2id$v=19$m=0,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=18$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5", "$argon2id$v=19$m=64,t=1,p=1$!!$a2V5", "hmac-sha256$abc"} {
		if err := verify(bad, "x"); err == nil {
			t.Errorf("verify accepted hash %q", bad)
		}
	}
}

func TestParamsValidate(t *testing.T) {
	for p, ok := range map[Params]bool{
		DefaultParams: true,
		cheap:         true,
		{MemoryKiB: 64, Iterations: 1, Parallelism: 1}:       false,
		{MemoryKiB: 64 << 10, Iterations: 0, Parallelism: 1}: false,
		{MemoryKiB: 64 << 10, Iterations: 1, Parallelism: 0}: false,
		{MemoryKiB: 8 << 20, Iterations: 1, Parallelism: 1}:  false,
	} {
		if err := p.Validate(); (err == nil) != ok {
			t.Errorf("%+v: %v, want ok=%v", p, err, ok)
		}
	}
}

func TestCreateAndAuthenticate(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			a, err := New(b.Open(t), cheap, 2)
			if err != nil {
				t.Fatal(err)
			}
			u, err := a.Create(ctx, NewUser{Username: "Alice", Password: "correct horse", Email: "alice@example.com", Name: "Alice A."})
			if err != nil {
				t.Fatal(err)
			}
			if u.Username != "alice" || !strings.HasPrefix(u.ID, "u_") || len(u.ID) != 24 {
				t.Errorf("created %+v", u)
			}
			for _, dup := range []string{"alice", "ALICE", "Alice"} {
				if _, err := a.Create(ctx, NewUser{Username: dup, Password: "another password"}); !errors.Is(err, ErrUsernameTaken) {
					t.Errorf("duplicate %q: %v", dup, err)
				}
			}
			var inv *InvalidError
			for _, bad := range []NewUser{
				{Username: "bob", Password: "short"},
				{Username: "bob", Password: strings.Repeat("p", 1025)},
				{Username: " bob", Password: "long enough"},
				{Username: "bob", Password: "long enough", Email: "not-an-email"},
			} {
				if _, err := a.Create(ctx, bad); !errors.As(err, &inv) {
					t.Errorf("%+v: %v, want InvalidError", bad, err)
				}
			}

			if got, err := a.Authenticate(ctx, "ALICE", "correct horse"); err != nil || got.ID != u.ID {
				t.Errorf("Authenticate: %v %v", got, err)
			}
			for _, tc := range [][2]string{{"alice", "wrong horse"}, {"nobody", "correct horse"}, {"", "x"}, {"alice", strings.Repeat("x", 5000)}} {
				if _, err := a.Authenticate(ctx, tc[0], tc[1]); !errors.Is(err, ErrBadCredentials) {
					t.Errorf("Authenticate(%q, ...) = %v, want ErrBadCredentials", tc[0], err)
				}
			}
		})
	}
}

func TestHashingIsBounded(t *testing.T) {
	a, err := New(nil, cheap, 1)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	inside, most := 0, 0
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = a.acquire(context.Background())
			mu.Lock()
			inside++
			if inside > most {
				most = inside
			}
			mu.Unlock()
			_, _ = hash("password", cheap)
			mu.Lock()
			inside--
			mu.Unlock()
			a.release()
		}()
	}
	wg.Wait()
	if most != 1 {
		t.Errorf("%d hashes ran at once with a limit of 1", most)
	}
	ctx, cancel := context.WithCancel(context.Background())
	_ = a.acquire(context.Background())
	cancel()
	if err := a.acquire(ctx); err == nil {
		t.Error("acquire ignored a cancelled context while full")
	}
}

package oauth

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/oauthd/oauthd/storage"
)

// fakeClients is a store whose GetClient can be held, to order races.
type fakeClients struct {
	calls   atomic.Int64
	hold    chan struct{} // when non-nil, GetClient waits for it
	entered chan struct{}
	err     error
	secret  string
}

func (f *fakeClients) GetClient(ctx context.Context, id string) (*storage.Client, error) {
	f.calls.Add(1)
	if f.entered != nil {
		f.entered <- struct{}{}
	}
	if f.hold != nil {
		<-f.hold
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if f.err != nil {
		return nil, f.err
	}
	if id == "missing" {
		return nil, storage.ErrNotFound
	}
	return &storage.Client{ID: id, SecretHash: f.secret, TokenEndpointAuthMethod: AuthMethodBasic}, nil
}
func (f *fakeClients) UseJTI(context.Context, string, time.Time) error { return nil }
func (f *fakeClients) JTIUsed(context.Context, string) (bool, error)   { return false, nil }

func TestClientCache(t *testing.T) {
	t.Run("hits and negative hits", func(t *testing.T) {
		st := &fakeClients{}
		c := newClientCache(st, time.Minute)
		for i := 0; i < 3; i++ {
			if _, err := c.get(context.Background(), "a"); err != nil {
				t.Fatal(err)
			}
			if _, err := c.get(context.Background(), "missing"); !errors.Is(err, fosite.ErrNotFound) {
				t.Fatalf("missing: %v", err)
			}
		}
		if n := st.calls.Load(); n != 2 {
			t.Errorf("%d lookups, want 2 (one per id)", n)
		}
	})
	t.Run("implausible ids never reach the store", func(t *testing.T) {
		st := &fakeClients{}
		c := newClientCache(st, time.Minute)
		for _, id := range []string{"", "a\x00b", "\xc3\x28", string(make([]byte, 300))} {
			if _, err := c.get(context.Background(), id); !errors.Is(err, fosite.ErrNotFound) {
				t.Errorf("%q: %v", id, err)
			}
		}
		if st.calls.Load() != 0 {
			t.Error("store was asked")
		}
	})
	t.Run("a cancelled caller does not fail the shared lookup", func(t *testing.T) {
		c := newClientCache(&fakeClients{}, time.Minute)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := c.get(ctx, "a"); err != nil {
			t.Fatalf("lookup failed with the caller's cancellation: %v", err)
		}
	})
	t.Run("storage failure is unavailable, not unknown", func(t *testing.T) {
		c := newClientCache(&fakeClients{err: storage.ErrUnavailable}, time.Minute)
		_, err := c.get(context.Background(), "a")
		if !errors.Is(err, errUnavailable) || errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("invalidation during a lookup wins", func(t *testing.T) {
		st := &fakeClients{hold: make(chan struct{}), entered: make(chan struct{}, 1), secret: "old"}
		c := newClientCache(st, time.Minute)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = c.get(context.Background(), "a")
		}()
		<-st.entered      // the lookup has read nothing yet
		c.Invalidate("a") // the client changes meanwhile
		close(st.hold)    // the lookup returns the old record
		<-done
		st.entered, st.secret = nil, "new"
		cl, err := c.get(context.Background(), "a")
		if err != nil || string(cl.GetHashedSecret()) != "new" {
			t.Fatalf("stale client served after invalidation: %q %v", cl.GetHashedSecret(), err)
		}
	})
}

package storage

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// TokenState is where a refresh token is in its life.
type TokenState string

const (
	// TokenActive: the one valid token of its family (the database allows
	// at most one per grant session).
	TokenActive TokenState = "active"
	// TokenRotated: used once and replaced by its successor. Kept until it
	// expires so that presenting it again is recognised (replay within the
	// reuse window, theft after it).
	TokenRotated TokenState = "rotated"
	// TokenRevoked: its grant session was revoked.
	TokenRevoked TokenState = "revoked"
)

// Why a grant session ended (its revoked_reason).
const (
	// ReasonRefreshTokenReuse: one of its rotated refresh tokens was
	// presented again (RFC 9700 §4.14).
	ReasonRefreshTokenReuse = "refresh token reuse"
	// ReasonCodeReuse: its authorization code was presented again (RFC 6749
	// §4.1.2).
	ReasonCodeReuse = "authorization code reuse"
	// ReasonUser: the user revoked it on the account page.
	ReasonUser = "revoked by the user"
	// ReasonAdmin: an operator revoked it through the admin API.
	ReasonAdmin = "revoked by an admin"
	// ReasonLogout: RP-initiated logout ended it.
	ReasonLogout = "logout"
	// ReasonClient: the client revoked its refresh token (RFC 7009).
	ReasonClient = "revoked by the client"
)

// RefreshToken is one opaque refresh token, known only by its HMAC
// signature: the token itself is never stored. Its family is its grant
// session.
type RefreshToken struct {
	Signature string `gorm:"column:signature;primaryKey"`
	SessionID string `gorm:"column:session_id"`
	ClientID  string `gorm:"column:client_id"`
	// RequestData is the caller's serialized request (scopes, audience,
	// session claims); storage does not look inside.
	RequestData []byte
	CreatedAt   time.Time
	ExpiresAt   time.Time
	State       TokenState
	RotatedAt   *time.Time
	// SuccessorSignature is the signature of the token this one was rotated
	// into; empty unless State is rotated.
	SuccessorSignature string
	// SuccessorSealed is the successor token encrypted by the caller, kept
	// for the reuse window only (nil when the window was 0, after the
	// pruning job cleared it, and once the family is revoked).
	SuccessorSealed []byte
}

// TableName pins the table name.
func (RefreshToken) TableName() string { return "refresh_tokens" }

// row returns the copy of t that is written: nil RequestData becomes empty
// (the column is NOT NULL) and every time is UTC.
func (t *RefreshToken) row() *RefreshToken {
	r := *t
	if r.RequestData == nil {
		r.RequestData = []byte{}
	}
	r.CreatedAt, r.ExpiresAt, r.RotatedAt = r.CreatedAt.UTC(), r.ExpiresAt.UTC(), utc(r.RotatedAt)
	return &r
}

// CreateRefreshToken inserts the first refresh token of a family (a code
// exchange): t is stored active, with no successor. CreatedAt defaults to
// the store's clock; an empty ClientID is the session's client. It fails
// with ErrConflict when the signature exists, the session already has an
// active token (the partial unique index: at most one valid token per
// family) or belongs to another client, and with ErrNotFound when the
// session is unknown or has ended.
// Later tokens of the family come from RotateRefreshToken.
func (s *Store) CreateRefreshToken(ctx context.Context, t *RefreshToken) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.now()
	}
	t.State, t.RotatedAt, t.SuccessorSignature, t.SuccessorSealed = TokenActive, nil, "", nil
	return s.tx(ctx, "create refresh token", func(ctx context.Context) error {
		db := s.conn(ctx)
		// Locking the session orders this insert with a concurrent
		// revocation of it, which would otherwise miss the new token.
		g, err := s.lockSession(db, "id = ?", t.SessionID)
		if err != nil {
			return fmt.Errorf("storage: create refresh token: session %q: %w", t.SessionID, err)
		}
		if !g.Live(t.CreatedAt) {
			return fmt.Errorf("storage: create refresh token: session %q has ended: %w", t.SessionID, ErrNotFound)
		}
		if t.ClientID == "" {
			t.ClientID = g.ClientID
		}
		if t.ClientID != g.ClientID {
			return fmt.Errorf("storage: create refresh token: client %q is not the client %q of session %q: %w", t.ClientID, g.ClientID, g.ID, ErrConflict)
		}
		return translate("create refresh token", db.Create(t.row()).Error)
	})
}

// GetRefreshToken loads a token by signature, in whatever state.
// ErrNotFound when unknown.
func (s *Store) GetRefreshToken(ctx context.Context, signature string) (*RefreshToken, error) {
	var t RefreshToken
	if err := s.conn(ctx).Where("signature = ?", signature).Take(&t).Error; err != nil {
		return nil, translate("get refresh token", err)
	}
	return &t, nil
}

// RotateOutcome says what RotateRefreshToken did.
type RotateOutcome string

const (
	// RotateNotFound: no token with that signature (never issued, or pruned
	// after expiry). Nothing changed.
	RotateNotFound RotateOutcome = "not_found"
	// RotateRevoked: the token is revoked, or its session is revoked or
	// expired. Nothing changed.
	RotateRevoked RotateOutcome = "revoked"
	// RotateExpired: the token is active but past its expiry. Nothing changed.
	RotateExpired RotateOutcome = "expired"
	// RotateRotated: the token was active; the child from NewChild is now
	// the active token and the parent is rotated.
	RotateRotated RotateOutcome = "rotated"
	// RotateReplayed: the token was rotated less than the reuse window ago
	// and its successor is still active: the result carries that successor
	// (and its sealed form) again. Nothing changed.
	RotateReplayed RotateOutcome = "replayed"
	// RotateTheft: a rotated token was presented outside the reuse window,
	// or an older ancestor was: the session and every token of it are now
	// revoked (reason ReasonRefreshTokenReuse).
	RotateTheft RotateOutcome = "theft"
)

// RotateRequest asks RotateRefreshToken to rotate the token ParentSignature.
type RotateRequest struct {
	ParentSignature string
	// ClientID, when set, must be the client the token was issued to: a
	// token presented by another client is treated as unknown (RFC 6749
	// §6: the refresh token is bound to the client) and nothing changes.
	ClientID string
	// Now is the time of the request; zero means the store's clock.
	Now time.Time
	// ReuseWindow is how long after a rotation the parent may be presented
	// again and get the same child. 0 disables replay: any second use is
	// theft, and the sealed child is not stored at all.
	ReuseWindow time.Duration
	// IdleTTL moves the session's idle expiry on rotation (capped at its
	// absolute expiry); <= 0 means no idle limit.
	IdleTTL time.Duration
	// NewChild makes the child token. It is called at most once per
	// RotateRefreshToken, before or inside the transaction (keep it free of
	// I/O), and its child may go unused (any outcome but RotateRotated).
	// It returns the child's row (Signature, ExpiresAt and RequestData are used; the family,
	// client, state and creation time are set by storage) and the child
	// token encrypted by the caller, kept in the parent for the reuse
	// window. A child without RequestData gets the parent's. If the
	// transaction is retried, the same child is used again.
	NewChild func() (child RefreshToken, sealed []byte, err error)
}

// RotateResult is what RotateRefreshToken found and did.
type RotateResult struct {
	Outcome RotateOutcome
	// SessionID is the family (grant session); empty for RotateNotFound.
	SessionID string
	// Parent is the presented token as found, before any change; nil for
	// RotateNotFound.
	Parent *RefreshToken
	// Child is the new token (RotateRotated) or the parent's still-active
	// successor (RotateReplayed); nil otherwise.
	Child *RefreshToken
	// Sealed is the child token encrypted by the caller: what NewChild
	// returned (RotateRotated) or what the parent kept (RotateReplayed).
	Sealed []byte
}

// rotateRetries is how many times a rotation that lost a race with another
// transaction (serialization failure, deadlock, busy SQLite) is run again.
const rotateRetries = 5

// RotateRefreshToken rotates a refresh token, atomically. The common case
// (an active, unexpired token of this client in a live session) is one
// statement on PostgreSQL and one grouped write on SQLite (rotateFast);
// anything else goes to one transaction that locks the token's grant
// session, then the token itself (SELECT ... FOR UPDATE on PostgreSQL; on
// SQLite the transaction holds the database write lock from BEGIN
// IMMEDIATE), decides, and writes. Both lock the session before the token,
// as every writer of a family does, which rules out deadlocks between a
// rotation and a revocation; concurrent rotations of one family run one
// after the other, and each sees what the previous one committed; families
// do not wait for each other.
//
// Outcomes (see RotateOutcome): NotFound, Revoked, Expired change nothing;
// Rotated inserts the child, marks the parent rotated (keeping the sealed
// child when ReuseWindow > 0) and touches the session; Replayed returns the
// existing successor; Theft revokes the session and all its tokens. Only
// errors are errors: every outcome comes with a nil error.
//
// With ReuseWindow 0, concurrent presentations of one token are
// indistinguishable from theft: one rotates, the next is Theft (and revokes
// the family, including the child just issued), the rest are Revoked.
//
// A transaction that loses a race is retried up to rotateRetries times
// after a short random pause; if it keeps losing, the error is
// ErrUnavailable. When ctx carries a transaction (WithTx) there is no
// retry: the caller's transaction is already aborted and must be retried
// by the caller.
func (s *Store) RotateRefreshToken(ctx context.Context, req RotateRequest) (RotateResult, error) {
	if req.NewChild == nil {
		return RotateResult{}, errors.New("storage: rotate refresh token: NewChild is nil")
	}
	now := req.Now
	if now.IsZero() {
		now = s.now()
	}
	now = now.UTC()
	// NewChild at most once, even across retries.
	var (
		called      bool
		child       RefreshToken
		sealed      []byte
		newChildErr error
	)
	newChild := func() (RefreshToken, []byte, error) {
		if !called {
			called = true
			child, sealed, newChildErr = req.NewChild()
		}
		return child, sealed, newChildErr
	}
	_, inTx := ctx.Value(txKey{}).(*gorm.DB)
	if !inTx {
		res, ok, err := s.rotateFast(ctx, req, now, newChild)
		switch {
		case ok:
			return res, nil
		case err != nil && !isRetryable(err):
			return RotateResult{}, err
		}
		// Not the common case, or it lost a race: the general path decides.
	}
	for attempt := 0; ; attempt++ {
		var res RotateResult
		err := s.tx(ctx, "rotate refresh token", func(ctx context.Context) error {
			var err error
			res, err = s.rotate(s.conn(ctx), req, now, newChild)
			return err
		})
		if err == nil {
			return res, nil
		}
		if !isRetryable(err) {
			return RotateResult{}, err
		}
		if inTx || attempt == rotateRetries {
			if !errors.Is(err, ErrUnavailable) {
				err = fmt.Errorf("storage: rotate refresh token: %w: %w", ErrUnavailable, err)
			}
			return RotateResult{}, err
		}
		// Between half and all of 5 ms, doubling per attempt (at most
		// 155 ms in all): long enough for the winner to commit, short
		// enough for a token request; the random half spreads the losers.
		d := 5 * time.Millisecond << attempt
		pause := d/2 + rand.N(d/2)
		select {
		case <-ctx.Done():
			return RotateResult{}, translate("rotate refresh token", ctx.Err())
		case <-time.After(pause):
		}
	}
}

// rotate is one attempt of RotateRefreshToken inside transaction db.
func (s *Store) rotate(db *gorm.DB, req RotateRequest, now time.Time, newChild func() (RefreshToken, []byte, error)) (RotateResult, error) {
	sess, err := s.lockSession(db, "id = (SELECT session_id FROM refresh_tokens WHERE signature = ?)", req.ParentSignature)
	if errors.Is(err, ErrNotFound) {
		return RotateResult{Outcome: RotateNotFound}, nil
	}
	if err != nil {
		return RotateResult{}, err
	}
	q := db
	if s.dialect == Postgres {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	var parent RefreshToken
	if err := q.Where("signature = ?", req.ParentSignature).Take(&parent).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) { // pruned since the session lookup
			return RotateResult{Outcome: RotateNotFound}, nil
		}
		return RotateResult{}, translate("lock refresh token", err)
	}
	if req.ClientID != "" && parent.ClientID != req.ClientID {
		return RotateResult{Outcome: RotateNotFound}, nil
	}
	found := parent // the result reports the parent as found
	res := RotateResult{SessionID: sess.ID, Parent: &found}

	if parent.State == TokenRevoked || !sess.Live(now) {
		res.Outcome = RotateRevoked
		return res, nil
	}
	switch parent.State {
	case TokenActive:
		if !now.Before(parent.ExpiresAt) {
			res.Outcome = RotateExpired
			return res, nil
		}
		c, sealed, err := newChild()
		if err != nil {
			return RotateResult{}, err
		}
		if c.Signature == "" {
			return RotateResult{}, errors.New("storage: rotate refresh token: NewChild returned no signature")
		}
		c.SessionID, c.ClientID, c.State, c.CreatedAt = parent.SessionID, parent.ClientID, TokenActive, now
		if c.RequestData == nil {
			c.RequestData = parent.RequestData
		}
		c.RotatedAt, c.SuccessorSignature, c.SuccessorSealed = nil, "", nil
		var keep any // NULL unless there is a window to replay in
		if req.ReuseWindow > 0 && len(sealed) > 0 {
			keep = sealed
		}
		// The parent leaves 'active' before the child enters it, or the
		// one-active-token index would refuse the child.
		upd := db.Exec("UPDATE refresh_tokens SET state = ?, rotated_at = ?, successor_signature = ?, successor_sealed = ? WHERE signature = ? AND state = ?",
			TokenRotated, now, c.Signature, keep, parent.Signature, TokenActive)
		if upd.Error != nil {
			return RotateResult{}, translate("rotate refresh token", upd.Error)
		}
		if upd.RowsAffected != 1 { // cannot happen while the row is locked
			return RotateResult{}, translate("rotate refresh token", ErrConflict)
		}
		if err := db.Create(c.row()).Error; err != nil {
			return RotateResult{}, translate("create rotated refresh token", err)
		}
		if err := db.Exec("UPDATE grant_sessions SET last_used_at = ?, idle_expires_at = ? WHERE id = ?",
			now, idleExpiry(now, req.IdleTTL, sess.AbsoluteExpiresAt), sess.ID).Error; err != nil {
			return RotateResult{}, translate("touch grant session", err)
		}
		stored := c.row()
		res.Outcome, res.Child, res.Sealed = RotateRotated, stored, sealed
		return res, nil

	case TokenRotated:
		if replayable(&parent, now, req.ReuseWindow) {
			var succ RefreshToken
			err := db.Where("signature = ?", parent.SuccessorSignature).Take(&succ).Error
			switch {
			case err == nil && succ.State == TokenActive:
				res.Outcome, res.Child, res.Sealed = RotateReplayed, &succ, parent.SuccessorSealed
				return res, nil
			case err != nil && !errors.Is(err, gorm.ErrRecordNotFound):
				return RotateResult{}, translate("get successor refresh token", err)
			}
		}
		if _, err := s.revokeSession(db, sess.ID, ReasonRefreshTokenReuse, now); err != nil {
			return RotateResult{}, err
		}
		res.Outcome = RotateTheft
		return res, nil
	}
	return RotateResult{}, fmt.Errorf("storage: rotate refresh token: unknown state %q", parent.State)
}

// replayable reports whether rotated token t may be presented again at now
// and get its successor: the window is open (a rotation time slightly in
// the future, from another process's clock, counts as just now) and the
// sealed successor is still kept.
func replayable(t *RefreshToken, now time.Time, window time.Duration) bool {
	return window > 0 && t.RotatedAt != nil && now.Sub(*t.RotatedAt) < window && len(t.SuccessorSealed) > 0
}

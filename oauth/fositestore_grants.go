package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
	fositestorage "github.com/ory/fosite/storage"

	"github.com/oauthd/oauthd/storage"
)

// The fosite storage for user grants: authorization codes (each its own
// PKCE binding), OpenID Connect request rows, pushed authorization
// requests, and the code exchange's writes. Rotation of refresh tokens
// does not go through fosite (see refresh.go and ADR 0005).
//
// fosite's contract, and where we differ from its memory store:
//   - a used code is returned together with ErrInvalidatedAuthorizeCode, so
//     fosite can revoke what was issued from it (RFC 6749 §4.1.2);
//   - the exchange's writes (code used, grant session, first refresh
//     token) are collected between BeginTX and Commit and made in one
//     storage call;
//   - the OIDC row is keyed by the SHA-256 of the raw code, never the code;
//   - storage failures are marked errUnavailable (503), never "not found";
//   - a PAR request is taken (read and deleted) once, and only before it
//     expires (fosite checks neither).

var (
	_ oauth2.CoreStorage                 = (*fositeStore)(nil)
	_ oauth2.TokenRevocationStorage      = (*fositeStore)(nil)
	_ openid.OpenIDConnectRequestStorage = (*fositeStore)(nil)
	_ pkce.PKCERequestStorage            = (*fositeStore)(nil)
	_ fosite.PARStorage                  = (*fositeStore)(nil)
	_ fositestorage.Transactional        = (*fositeStore)(nil)
)

// codeUsedError answers the loser of concurrent exchanges of one code:
// invalid_grant, and (once fosite has given up the exchange) the token
// endpoint revokes the grant the winner started, as for any second use of
// a code (RFC 6749 §4.1.2).
type codeUsedError struct{ sessionID string }

func (e *codeUsedError) Error() string { return "oauth: authorization code already used" }

var errCodeUsed = &oauthError{Status: http.StatusBadRequest, Code: "invalid_grant", Description: "The authorization code has already been used."}

// storageErr maps a storage error for fosite: not found is fosite's
// ErrNotFound, anything else is a 503.
func storageErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, fosite.ErrNotFound):
		// (decodeRequest answers fosite.ErrNotFound for a deleted client)
		return fosite.ErrNotFound
	case errors.Is(err, errUnavailable):
		return err
	}
	return errors.Join(errUnavailable, err)
}

// BeginTX, Commit and Rollback make the code exchange one storage call.
// Between them fosite marks the code used (InvalidateAuthorizeCodeSession)
// and stores the first refresh token (CreateRefreshTokenSession); both are
// only collected, and Commit writes them with the grant session in one
// statement (storage.RedeemAuthorizationCode): all or nothing, and one
// round trip instead of one per write, on the path of every login. A
// concurrent exchange of the same code loses there, with codeUsedError.
func (f *fositeStore) BeginTX(ctx context.Context) (context.Context, error) {
	return context.WithValue(ctx, exchangeKey{}, &exchange{}), nil
}

func (f *fositeStore) Commit(ctx context.Context) error {
	x, _ := ctx.Value(exchangeKey{}).(*exchange)
	if x == nil || x.redemption.Session == nil {
		return nil // nothing was collected
	}
	err := f.store.RedeemAuthorizationCode(ctx, x.redemption)
	if errors.Is(err, storage.ErrConflict) {
		return &codeUsedError{sessionID: x.redemption.Session.ID}
	}
	return storageErr(err)
}

// Rollback drops what was collected: nothing was written.
func (f *fositeStore) Rollback(ctx context.Context) error {
	if x, _ := ctx.Value(exchangeKey{}).(*exchange); x != nil {
		*x = exchange{}
	}
	return nil
}

type exchangeKey struct{}

// exchange collects the writes of one code exchange until Commit.
type exchange struct {
	redemption storage.Redemption
}

// CreateAuthorizeCodeSession stores the code's request under the code's
// HMAC signature. Its id is the grant session id (sid) chosen at the
// authorization endpoint.
func (f *fositeStore) CreateAuthorizeCodeSession(ctx context.Context, signature string, r fosite.Requester) error {
	data, err := encodeRequest(r)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	return storageErr(f.store.CreateAuthorizationCode(ctx, &storage.AuthorizationCode{
		Signature:   signature,
		SessionID:   r.GetID(),
		ClientID:    r.GetClient().GetID(),
		RequestData: data,
		CreatedAt:   now,
		ExpiresAt:   expiry(r, fosite.AuthorizeCode, now.Add(f.cfg.AuthorizeCodeTTL)),
	}))
}

// GetAuthorizeCodeSession returns the code's request; a used code comes back
// with fosite.ErrInvalidatedAuthorizeCode and its request (fosite revokes
// the grant with it). fosite reads the code twice per exchange: the row is
// kept for the request in its context (see withCodeMemo).
func (f *fositeStore) GetAuthorizeCodeSession(ctx context.Context, signature string, _ fosite.Session) (fosite.Requester, error) {
	row, req, err := f.authorizationCode(ctx, signature)
	if err != nil {
		return nil, err
	}
	if row.UsedAt != nil {
		return req, fosite.ErrInvalidatedAuthorizeCode
	}
	if !time.Now().Before(row.ExpiresAt) {
		// fosite would notice only in its response step and answer
		// invalid_request; an expired code is invalid_grant (RFC 6749 §5.2).
		return nil, fosite.ErrNotFound
	}
	return req, nil
}

// authorizationCode returns the code's row and its decoded request. An
// unused code is kept for the rest of the token request (see codeMemo).
func (f *fositeStore) authorizationCode(ctx context.Context, signature string) (*storage.AuthorizationCode, fosite.Requester, error) {
	memo, _ := ctx.Value(codeMemoKey{}).(*codeMemo)
	if memo != nil && memo.row != nil && memo.row.Signature == signature {
		return memo.row, memo.req, nil
	}
	row, err := f.store.GetAuthorizationCode(ctx, signature)
	if err != nil {
		return nil, nil, storageErr(err)
	}
	req, err := decodeRequest(ctx, row.RequestData, f)
	if err != nil {
		return nil, nil, storageErr(err)
	}
	if memo != nil && row.UsedAt == nil {
		memo.row, memo.req = row, req
	}
	return row, req, nil
}

type codeMemoKey struct{}

// codeMemo keeps the code fosite reads three times in one token request
// (the code handler twice, the PKCE handler once) and whether fosite's
// PKCE handler took the code's PKCE binding. Sharing one decoded request
// is safe: the readers read it, and the code handler adopts its session
// for the token request, as it would from a fresh read.
type codeMemo struct {
	row       *storage.AuthorizationCode
	req       fosite.Requester
	pkceTaken bool
}

func withCodeMemo(ctx context.Context) context.Context {
	return context.WithValue(ctx, codeMemoKey{}, &codeMemo{})
}

// InvalidateAuthorizeCodeSession marks the code used and starts its grant
// session, in the exchange Commit writes (see BeginTX). Of concurrent
// exchanges exactly one commits; the others answer invalid_grant.
func (f *fositeStore) InvalidateAuthorizeCodeSession(ctx context.Context, signature string) error {
	row, req, err := f.authorizationCode(ctx, signature)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	sess := req.GetSession().(*Session)
	idle := f.cfg.AccessTokenTTL // without a refresh token the grant lives as long as its access token
	if issuesRefreshToken(req) {
		idle = f.cfg.RefreshTokenTTL
	}
	absolute := now.Add(f.cfg.GrantSessionMaxLifetime)
	idleExp := now.Add(idle)
	if idleExp.After(absolute) {
		idleExp = absolute
	}
	authTime := sess.Claims.AuthTime
	if authTime.IsZero() {
		authTime = now
	}
	r := storage.Redemption{CodeSignature: signature, Now: now, Session: &storage.GrantSession{
		ID:                row.SessionID,
		UserID:            sess.Subject,
		ClientID:          row.ClientID,
		Scope:             strings.Join(req.GetGrantedScopes(), " "),
		Audience:          req.GetGrantedAudience(),
		AuthTime:          authTime,
		CreatedAt:         now,
		LastUsedAt:        now,
		IdleExpiresAt:     idleExp,
		AbsoluteExpiresAt: absolute,
		UserAgent:         sess.UserAgent,
		IP:                sess.IP,
	}}
	if x, _ := ctx.Value(exchangeKey{}).(*exchange); x != nil {
		x.redemption = r
		return nil
	}
	// Outside an exchange (fosite always opens one): write at once.
	if err := f.store.RedeemAuthorizationCode(ctx, r); errors.Is(err, storage.ErrConflict) {
		return &codeUsedError{sessionID: row.SessionID}
	} else if err != nil {
		return storageErr(err)
	}
	return nil
}

// issuesRefreshToken is fosite's rule (and the contract's): the client has
// the refresh_token grant and offline_access was granted.
func issuesRefreshToken(r fosite.Requester) bool {
	return r.GetClient().GetGrantTypes().Has(GrantRefreshToken) && r.GetGrantedScopes().Has(ScopeOfflineAccess)
}

// expiry is the request session's expiry for kind, or def when unset.
func expiry(r fosite.Requester, kind fosite.TokenType, def time.Time) time.Time {
	if s := r.GetSession(); s != nil {
		if t := s.GetExpiresAt(kind); !t.IsZero() {
			return t.UTC()
		}
	}
	return def.UTC()
}

// CreateRefreshTokenSession stores the first refresh token of a grant (at
// the code exchange), in the family named by the request id (the sid).
func (f *fositeStore) CreateRefreshTokenSession(ctx context.Context, signature, _ string, r fosite.Requester) error {
	data, err := encodeRequest(r)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	t := &storage.RefreshToken{
		Signature:   signature,
		SessionID:   r.GetID(),
		ClientID:    r.GetClient().GetID(),
		RequestData: data,
		CreatedAt:   now,
		ExpiresAt:   expiry(r, fosite.RefreshToken, now.Add(f.cfg.RefreshTokenTTL)),
		State:       storage.TokenActive,
	}
	if x, _ := ctx.Value(exchangeKey{}).(*exchange); x != nil && x.redemption.Session != nil && x.redemption.Session.ID == t.SessionID {
		x.redemption.FirstToken = t // written with the session, at Commit
		return nil
	}
	return storageErr(f.store.CreateRefreshToken(ctx, t))
}

// GetRefreshTokenSession is part of fosite's storage contract; refresh,
// revocation and introspection of refresh tokens are ours (refresh.go,
// revoke.go, introspect.go) and read the token row directly.
func (f *fositeStore) GetRefreshTokenSession(ctx context.Context, signature string, _ fosite.Session) (fosite.Requester, error) {
	row, err := f.store.GetRefreshToken(ctx, signature)
	if err != nil {
		return nil, storageErr(err)
	}
	req, err := decodeRequest(ctx, row.RequestData, f)
	if err != nil {
		return nil, storageErr(err)
	}
	if row.State != storage.TokenActive {
		return req, fosite.ErrInactiveToken
	}
	return req, nil
}

// DeleteRefreshTokenSession ends the token's whole grant session.
func (f *fositeStore) DeleteRefreshTokenSession(ctx context.Context, signature string) error {
	row, err := f.store.GetRefreshToken(ctx, signature)
	if err != nil {
		return storageErr(err)
	}
	return f.revokeGrant(ctx, row.SessionID, storage.ReasonClient)
}

// RotateRefreshToken is never reached: rotation happens in our refresh
// handler, atomically with the reuse check (ADR 0005).
func (f *fositeStore) RotateRefreshToken(context.Context, string, string) error {
	return errors.New("oauth: refresh tokens are rotated by the refresh handler")
}

// RevokeRefreshToken and RevokeAccessToken revoke by request id, which is
// the grant session id: fosite calls them when a code is used twice.
func (f *fositeStore) RevokeRefreshToken(ctx context.Context, requestID string) error {
	return f.revokeGrant(ctx, requestID, storage.ReasonCodeReuse)
}

func (f *fositeStore) RevokeAccessToken(ctx context.Context, requestID string) error {
	return f.revokeGrant(ctx, requestID, storage.ReasonCodeReuse)
}

func (f *fositeStore) revokeGrant(ctx context.Context, sid, reason string) error {
	err := f.store.RevokeGrantSession(ctx, sid, reason, time.Now())
	if errors.Is(err, storage.ErrNotFound) {
		return nil // never started (the first exchange failed): nothing to revoke
	}
	if err != nil && f.logger != nil {
		// fosite only appends this failure to a hint of the invalid_grant
		// answer: log it so an operator sees the grant is still live.
		f.logger.ErrorContext(ctx, "revoking a grant session failed", "sid", sid, "reason", reason, "err", err)
	}
	return storageErr(err)
}

// CreatePKCERequestSession stores nothing: the PKCE binding is the code's
// own stored request, whose form keeps code_challenge and its method
// (SanitationWhiteList, provider.go).
func (f *fositeStore) CreatePKCERequestSession(context.Context, string, fosite.Requester) error {
	return nil
}

// GetPKCERequestSession returns the code's request, for its challenge.
// fosite asks for it right after reading the code, and the request it
// returns is the one the code was issued with. A concurrent exchange that
// spends the code in between is caught when this one commits.
func (f *fositeStore) GetPKCERequestSession(ctx context.Context, signature string, _ fosite.Session) (fosite.Requester, error) {
	row, req, err := f.authorizationCode(ctx, signature)
	if err != nil {
		return nil, err
	}
	if row.UsedAt != nil {
		return nil, fosite.ErrNotFound // the code handler has refused it already
	}
	return req, nil
}

// DeletePKCERequestSession is called by fosite's PKCE handler right after
// reading the binding, before it checks the verifier. The binding goes
// with the code: a failed check spends the code (spendFailedCode), so a
// failed attempt still uses it up, and a successful exchange spends it.
func (f *fositeStore) DeletePKCERequestSession(ctx context.Context, _ string) error {
	if memo, _ := ctx.Value(codeMemoKey{}).(*codeMemo); memo != nil {
		memo.pkceTaken = true
	}
	return nil
}

// spendFailedCode is called when a token request for a code failed: if
// fosite had taken the code's PKCE binding, the failure is the PKCE check
// (the last token endpoint handler), and the code is spent, so the right
// verifier no longer redeems it and an exchange still in flight fails; if
// an exchange committed first, this was a second use, which revokes its
// grant.
func (f *fositeStore) spendFailedCode(ctx context.Context) error {
	memo, _ := ctx.Value(codeMemoKey{}).(*codeMemo)
	if memo == nil || !memo.pkceTaken || memo.row == nil {
		return nil
	}
	switch err := f.store.InvalidateAuthorizationCode(ctx, memo.row.Signature, time.Now().UTC()); {
	case err == nil, errors.Is(err, storage.ErrNotFound):
		return nil
	case errors.Is(err, storage.ErrConflict):
		return f.revokeGrant(ctx, memo.row.SessionID, storage.ReasonCodeReuse)
	default:
		return storageErr(err)
	}
}

// codeHash keys the OIDC row: fosite hands these methods the raw code.
func codeHash(code string) string {
	sum := sha256.Sum256([]byte(code))
	return hex.EncodeToString(sum[:])
}

func (f *fositeStore) CreateOpenIDConnectSession(ctx context.Context, code string, r fosite.Requester) error {
	data, err := encodeRequest(r)
	if err != nil {
		return err
	}
	return storageErr(f.store.CreateOIDCRequest(ctx, &storage.OIDCRequest{
		CodeHash:    codeHash(code),
		RequestData: data,
		ExpiresAt:   expiry(r, fosite.AuthorizeCode, time.Now().Add(f.cfg.AuthorizeCodeTTL)),
	}))
}

func (f *fositeStore) GetOpenIDConnectSession(ctx context.Context, code string, _ fosite.Requester) (fosite.Requester, error) {
	row, err := f.store.GetOIDCRequest(ctx, codeHash(code))
	if err != nil {
		return nil, storageErr(err)
	}
	req, err := decodeRequest(ctx, row.RequestData, f)
	return req, storageErr(err)
}

func (f *fositeStore) DeleteOpenIDConnectSession(ctx context.Context, code string) error {
	err := f.store.DeleteOIDCRequest(ctx, codeHash(code))
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	return storageErr(err)
}

// parKey keys a pushed request by a hash of its request_uri.
func parKey(requestURI string) string { return codeHash(requestURI) }

// CreatePARSession stores a pushed request without any credential
// (encodeRequest drops client_secret and friends from the form).
func (f *fositeStore) CreatePARSession(ctx context.Context, requestURI string, r fosite.AuthorizeRequester) error {
	data, err := encodeRequest(r)
	if err != nil {
		return err
	}
	return storageErr(f.store.CreatePAR(ctx, &storage.PARRequest{
		RequestURIHash: parKey(requestURI),
		ClientID:       r.GetClient().GetID(),
		RequestData:    data,
		ExpiresAt:      expiry(r, fosite.PushedAuthorizeRequestContext, time.Now().Add(f.cfg.PARTTL)),
	}))
}

// GetPARSession takes the pushed request: the first use deletes it, and an
// expired one is unknown.
func (f *fositeStore) GetPARSession(ctx context.Context, requestURI string) (fosite.AuthorizeRequester, error) {
	row, err := f.store.TakePAR(ctx, parKey(requestURI), time.Now())
	if err != nil {
		return nil, storageErr(err)
	}
	req, err := decodeRequest(ctx, row.RequestData, f)
	if err != nil {
		return nil, storageErr(err)
	}
	ar, ok := req.(fosite.AuthorizeRequester)
	if !ok {
		return nil, errors.New("oauth: stored pushed request is not an authorization request")
	}
	return ar, nil
}

// DeletePARSession has nothing left to do: GetPARSession took the row.
func (f *fositeStore) DeletePARSession(context.Context, string) error { return nil }

package oauth

import (
	"context"
	"errors"
	"testing"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
)

// recordingHandler counts what it is asked.
type recordingHandler struct {
	grant             string
	handled, populate int
}

func (h *recordingHandler) HandleTokenEndpointRequest(context.Context, fosite.AccessRequester) error {
	h.handled++
	return nil
}

func (h *recordingHandler) PopulateTokenEndpointResponse(context.Context, fosite.AccessRequester, fosite.AccessResponder) error {
	h.populate++
	return nil
}

func (h *recordingHandler) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool {
	return false
}

func (h *recordingHandler) CanHandleTokenEndpointRequest(_ context.Context, r fosite.AccessRequester) bool {
	return r.GetGrantTypes().ExactOne(h.grant)
}

func TestWhenCan(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name         string
		h            whenCan
		grant        string
		scopes       fosite.Arguments
		wantAsked    bool
		responseOnly bool
	}{
		{name: "other grant", h: whenCan{scope: ""}, grant: "refresh_token", wantAsked: false},
		{name: "its grant", h: whenCan{scope: ""}, grant: "client_credentials", wantAsked: true},
		{name: "its grant, scope missing", h: whenCan{scope: ScopeOpenID}, grant: "client_credentials", scopes: fosite.Arguments{"offline_access"}},
		{name: "its grant and scope", h: whenCan{scope: ScopeOpenID}, grant: "client_credentials", scopes: fosite.Arguments{ScopeOpenID}, wantAsked: true},
		{name: "response only", h: whenCan{responseOnly: true}, grant: "client_credentials", wantAsked: true, responseOnly: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recordingHandler{grant: "client_credentials"}
			h := tc.h
			h.TokenEndpointHandler = rec
			r := fosite.NewAccessRequest(newSession())
			r.GrantTypes = fosite.Arguments{tc.grant}
			r.GrantedScope = tc.scopes
			errH := h.HandleTokenEndpointRequest(ctx, r)
			errP := h.PopulateTokenEndpointResponse(ctx, r, fosite.NewAccessResponse())
			wantHandled, wantPopulated := 0, 0
			if tc.wantAsked {
				wantPopulated = 1
				if !tc.responseOnly {
					wantHandled = 1
				}
			}
			if rec.handled != wantHandled || rec.populate != wantPopulated {
				t.Fatalf("asked handle %d, populate %d times; want %d, %d", rec.handled, rec.populate, wantHandled, wantPopulated)
			}
			for _, err := range []error{errH, errP} {
				if err != nil && !errors.Is(err, fosite.ErrUnknownRequest) {
					t.Fatalf("error %v, want nil or ErrUnknownRequest", err)
				}
			}
			if wantHandled == 0 && errH == nil || wantPopulated == 0 && errP == nil {
				t.Fatalf("a step not asked answered nil (handle %v, populate %v), want ErrUnknownRequest", errH, errP)
			}
		})
	}
}

// TestAskOnlyWhenCanWrapsFositeHandlers: every fosite token handler the
// provider composes is wrapped, OpenID Connect ones behind openid.
func TestAskOnlyWhenCanWrapsFositeHandlers(t *testing.T) {
	for _, tc := range []struct {
		h            fosite.TokenEndpointHandler
		scope        string
		responseOnly bool
	}{
		{h: &openid.OpenIDConnectExplicitHandler{}, scope: ScopeOpenID, responseOnly: true},
		{h: &openid.OpenIDConnectRefreshHandler{}, scope: ScopeOpenID},
		{h: &recordingHandler{}},
	} {
		w, ok := askOnlyWhenCan(tc.h).(whenCan)
		if !ok {
			t.Fatalf("%T not wrapped", tc.h)
		}
		if w.scope != tc.scope || w.responseOnly != tc.responseOnly {
			t.Errorf("%T: scope %q responseOnly %v, want %q %v", tc.h, w.scope, w.responseOnly, tc.scope, tc.responseOnly)
		}
	}
	if _, ok := askOnlyWhenCan(&refreshHandler{}).(*refreshHandler); !ok {
		t.Error("the refresh handler (ours) was wrapped")
	}
}

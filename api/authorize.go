package api

import (
	"context"
	"net/http"
	"strings"
	"time"
)

// Authorizer decides whether a request may read channels. It is the one
// place SSE, long-poll and history ask, so the rules are the same for all.
type Authorizer interface {
	Authorize(r *http.Request, channels []string) (Grant, error)
}

// Grant is a positive answer.
type Grant struct {
	Subject string
	// Expires, if set, ends streams and shortens polls at the token's exp.
	Expires time.Time
	// Release, if set, is called when the request ends (connection limits).
	Release func()
}

func (g Grant) release() {
	if g.Release != nil {
		g.Release()
	}
}

// PrivatePrefix marks channels that need a grant.
const PrivatePrefix = "private-"

// AppAuthorizer asks the app whether a user may read private channels
// (HERALD_AUTH_URL); see authURL.
type AppAuthorizer interface {
	Check(ctx context.Context, r *http.Request, subject string, channels []string) (appAnswer, error)
}

// ChannelAuth is herald's authorisation: private- channels need a token
// that grants them, or the app's yes through the auth URL; other channels
// are public unless RequireToken is set.
type ChannelAuth struct {
	Tokens       *TokenVerifier // nil: no tokens accepted
	App          AppAuthorizer  // nil: no auth URL
	RequireToken bool           // public channels need a valid token too
}

var _ Authorizer = (*ChannelAuth)(nil)

var (
	errTokenRequired = &Error{Status: http.StatusUnauthorized, Code: "token_required",
		Message: "private channels need a token: send Authorization: Bearer <token>, ?token=<token> or the herald_token cookie"}
	errTokensDisabled = &Error{Status: http.StatusUnauthorized, Code: "invalid_token",
		Message: "this server accepts no tokens (HERALD_JWT_SECRET is not set)"}
)

// Authorize implements Authorizer.
func (a *ChannelAuth) Authorize(r *http.Request, channels []string) (Grant, error) {
	var g Grant
	var claims *Claims
	if raw := bearer(r); raw != "" {
		if a.Tokens == nil {
			// An app sending a token expects it to matter; say so rather
			// than silently ignoring it (unless the app answers for it).
			if a.App == nil {
				return g, errTokensDisabled
			}
		} else {
			c, err := a.Tokens.Verify(raw)
			if err != nil {
				return g, err
			}
			claims = c
			g.Subject = c.Subject
			if c.ExpiresAt != nil {
				g.Expires = c.ExpiresAt.Time
			}
		}
	}
	if claims == nil && a.RequireToken && a.App == nil {
		return g, errTokenRequired
	}
	var ask []string
	for _, ch := range channels {
		if !strings.HasPrefix(ch, PrivatePrefix) && !a.RequireToken {
			continue
		}
		if claims != nil && claims.Grants(ch) {
			continue
		}
		ask = append(ask, ch)
	}
	if len(ask) == 0 {
		return g, nil
	}
	if a.App == nil {
		if claims == nil {
			return g, errTokenRequired
		}
		return g, forbidden(ask)
	}
	ans, err := a.App.Check(r.Context(), r, g.Subject, ask)
	if err != nil {
		return g, err
	}
	if ans.Unauthenticated {
		return g, &Error{Status: http.StatusUnauthorized, Code: "unauthenticated", Message: "the app does not know who you are; sign in to it first"}
	}
	for _, ch := range ask {
		if !ans.grants(ch) {
			return g, forbidden([]string{ch})
		}
	}
	if g.Subject == "" {
		g.Subject = ans.Subject
	}
	return g, nil
}

func forbidden(chs []string) *Error {
	return &Error{Status: http.StatusForbidden, Code: "forbidden",
		Message: "not allowed to read channel " + truncate(chs[0], 164) + "; the token (or the app) does not grant it"}
}

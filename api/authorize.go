package api

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/herald-dev/herald"
	"github.com/herald-dev/herald/store"
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
	// Recheck, if set, asks again every RecheckEvery whether a grant that
	// came from the app still holds; a stream ends when it no longer does.
	Recheck      func(ctx context.Context) *herald.Revocation
	RecheckEvery time.Duration
	// watch, if set, starts watching the token for revocation (streams).
	watch func() (revoked <-chan struct{}, stop func())
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
	// Revocations refuses revoked tokens and ends their streams; New sets
	// it to the feed's when nil.
	Revocations RevocationList
}

// RevocationList is the replica's copy of the token revocations.
type RevocationList interface {
	Revoked(jti, sub string, iat time.Time) bool
	Watch(jti, sub string, iat time.Time) (revoked <-chan struct{}, stop func())
}

var _ RevocationList = (*store.Revocations)(nil)

var errTokenRevoked = &Error{Code: "token_revoked",
	Message: "the token was revoked; get a new one"}

var _ Authorizer = (*ChannelAuth)(nil)

var (
	errTokenRequired = &Error{Code: "token_required",
		Message: "private channels need a token: send Authorization: Bearer <token>, ?token=<token> or the herald_token cookie"}
	errTokensDisabled = &Error{Code: "invalid_token",
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
			if rl := a.Revocations; rl != nil {
				var iat time.Time
				if c.IssuedAt != nil {
					iat = c.IssuedAt.Time
				}
				if rl.Revoked(c.ID, c.Subject, iat) {
					return g, errTokenRevoked
				}
				g.watch = func() (<-chan struct{}, func()) { return rl.Watch(c.ID, c.Subject, iat) }
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
	subject := g.Subject
	if len(ask) == 0 {
		return g, nil
	}
	if a.App == nil {
		if claims == nil {
			return g, errTokenRequired
		}
		return g, forbidden(ask)
	}
	ans, err := a.App.Check(r.Context(), r, subject, ask)
	if err != nil {
		return g, err
	}
	if ans.Unauthenticated {
		return g, &Error{Code: "unauthenticated", Message: "the app does not know who you are; sign in to it first"}
	}
	for _, ch := range ask {
		if !ans.grants(ch) {
			return g, forbidden([]string{ch})
		}
	}
	if g.Subject == "" {
		g.Subject = ans.Subject
	}
	if every, ok := a.App.(interface{ RecheckEvery() time.Duration }); ok {
		g.Recheck, g.RecheckEvery = recheck(a.App, r, subject, ask), every.RecheckEvery()
	}
	return g, nil
}

// recheck asks the app again about a running stream's channels, with the
// credentials the stream was opened with. Only a clear no ends the
// stream: while the app does not answer, the grant it gave stands.
func recheck(app AppAuthorizer, r *http.Request, subject string, ask []string) func(context.Context) *herald.Revocation {
	// Keep only what the app is asked with, not the whole request.
	q := url.Values{}
	if t := r.URL.Query().Get("token"); t != "" {
		q.Set("token", t)
	}
	kept := &http.Request{Method: http.MethodGet, URL: &url.URL{RawQuery: q.Encode()}, Header: http.Header{}, RemoteAddr: r.RemoteAddr}
	for _, h := range []string{"Cookie", "Authorization"} {
		if v := r.Header.Get(h); v != "" {
			kept.Header.Set(h, v)
		}
	}
	kept = withClientIP(kept, clientIP(r))
	return func(ctx context.Context) *herald.Revocation {
		ans, err := app.Check(asRecheck(ctx), kept, subject, ask)
		if err != nil {
			return nil
		}
		if ans.Unauthenticated {
			return &herald.Revocation{Code: "unauthenticated", Message: "the app no longer knows who you are; sign in again"}
		}
		for _, ch := range ask {
			if !ans.grants(ch) {
				return &herald.Revocation{Code: "forbidden", Message: "the app no longer grants channel " + truncate(ch, 164)}
			}
		}
		return nil
	}
}

func forbidden(chs []string) *Error {
	return &Error{Code: "forbidden",
		Message: "not allowed to read channel " + truncate(chs[0], 164) + "; the token (or the app) does not grant it"}
}

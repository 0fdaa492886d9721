package api

import (
	"net/http"
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

// publicChannels treats every channel as public: the default until tokens
// are configured.
type publicChannels struct{}

func (publicChannels) Authorize(*http.Request, []string) (Grant, error) { return Grant{}, nil }

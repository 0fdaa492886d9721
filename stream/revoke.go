package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Revocation says why a stream's grant was taken back. It is the JSON body
// of the stream's last frame, "event: revoked", after which the server
// closes the stream. A client tells it apart from a network drop by that
// frame, and must not reconnect with the same credentials: they would be
// refused (401 or 403).
type Revocation struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// RevokedError is what the Go client returns when the server revoked the
// stream's grant; Subscribe does not reconnect after it.
type RevokedError struct{ Revocation }

func (e *RevokedError) Error() string {
	return fmt.Sprintf("stream: revoked by the server: %s: %s", e.Code, e.Message)
}

// ErrRevoked matches any *RevokedError with errors.Is.
var ErrRevoked = errors.New("stream: revoked")

func (e *RevokedError) Is(target error) bool { return target == ErrRevoked }

// tokenRevoked is the frame for a closed Request.Revoked.
var tokenRevoked = Revocation{Code: "token_revoked", Message: "the token was revoked; get a new one to subscribe again"}

// revoked writes the revoked frame. It has no id: the client's cursor
// stays where it was.
func (s *sseWriter) revoked(r Revocation) {
	body, _ := json.Marshal(r)
	b := append(s.open(), "event: revoked\ndata: "...)
	b = append(b, body...)
	s.buf = append(b, "\n\n"...)
}

// rechecker runs req.Recheck every req.RecheckEvery; the returned channel
// yields the revocation if one says the grant is gone. It stops with ctx.
func rechecker(ctx context.Context, req Request) <-chan Revocation {
	if req.Recheck == nil || req.RecheckEvery <= 0 {
		return nil
	}
	out := make(chan Revocation, 1)
	go func() {
		t := time.NewTicker(req.RecheckEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if r := req.Recheck(ctx); r != nil {
				out <- *r
				return
			}
		}
	}()
	return out
}

package stream

import (
	"context"
	"encoding/json"
	"time"

	"github.com/herald-dev/herald"
)

// tokenRevoked is the frame for a closed Request.Revoked.
var tokenRevoked = herald.Revocation{Code: "token_revoked", Message: "the token was revoked; get a new one to subscribe again"}

// revoked writes the revoked frame. It has no id: the client's cursor
// stays where it was.
func (s *sseWriter) revoked(r herald.Revocation) {
	body, _ := json.Marshal(r)
	b := append(s.open(), "event: revoked\ndata: "...)
	b = append(b, body...)
	s.buf = append(b, "\n\n"...)
}

// rechecker runs req.Recheck every req.RecheckEvery; the returned channel
// yields the revocation if one says the grant is gone. It stops with ctx.
func rechecker(ctx context.Context, req Request) <-chan herald.Revocation {
	if req.Recheck == nil || req.RecheckEvery <= 0 {
		return nil
	}
	out := make(chan herald.Revocation, 1)
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

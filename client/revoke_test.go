package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-dev/herald"
)

// TestClientRevoked: the Go client ends Subscribe with a *RevokedError on
// an "event: revoked" frame and does not reconnect, unlike after a drop.
func TestClientRevoked(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		_, _ = w.Write([]byte("retry: 10\n\nevent: revoked\ndata: {\"code\":\"token_revoked\",\"message\":\"gone\"}\n\n"))
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := Subscribe(ctx, srv.URL, []string{"private-a"}, herald.Cursor{}, func(Message) error { return nil },
		Options{MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	var re *RevokedError
	if !errors.As(err, &re) || !errors.Is(err, ErrRevoked) || re.Code != "token_revoked" || re.Message != "gone" {
		t.Fatalf("Subscribe returned %v, want a RevokedError with the frame's code and message", err)
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("%d connections, want 1: no reconnect after a revocation", n)
	}
}

package stream_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-dev/herald/api"
	"github.com/herald-dev/herald/api/apitest"
	"github.com/herald-dev/herald/client"
)

// A quiet stream gets ": ping" comments; once other channels move the log
// past its cursor, a heartbeat also carries "id: <head>" (once), so a
// reconnect resumes from there.
func TestStreamHeartbeatCarriesHead(t *testing.T) {
	env := apitest.Start(t, apitest.Options{API: api.Config{Heartbeat: 50 * time.Millisecond}})
	raw := newRawClient(t)
	s := openStream(t, raw, env.URL, streamPath([]string{"quiet"}, ""), nil)

	// Nothing has moved: a bare ping.
	if f := s.next(t); f.raw != ": ping\n" {
		t.Fatalf("first block after retry: %q, want a bare ping", f.raw)
	}
	seqs := insertN(t, env, "noise", "thing", 0, 5)
	head := seqs[len(seqs)-1]
	want := fmt.Sprintf(": ping\nid: %s.%d\n", env.Feed.Epoch(), head)
	deadline := time.Now().Add(wait)
	for {
		f := s.next(t)
		if f.raw == want {
			break
		}
		if f.raw != ": ping\n" || time.Now().After(deadline) {
			t.Fatalf("waiting for %q: got %q", want, f.raw)
		}
	}
	// The id is sent once: the client holds it now.
	if f := s.next(t); f.raw != ": ping\n" {
		t.Fatalf("heartbeat after the id: %q, want a bare ping", f.raw)
	}
	s.close()

	// Resuming from the heartbeat's id: no reset, the next event is new.
	s = openStream(t, raw, env.URL, streamPath([]string{"quiet"}, ""),
		http.Header{"Last-Event-Id": {strconv.FormatInt(head, 10)}})
	next := insertN(t, env, "quiet", "thing", 0, 1)[0]
	if f := s.nextData(t); f.id != strconv.FormatInt(next, 10) || f.event != "thing" {
		t.Fatalf("after resuming from the heartbeat id: %q, want event %d", f.raw, next)
	}
}

// The Go client takes the heartbeat's id as its cursor: with none of its
// own yet (from = 0) it reconnects with Last-Event-ID: <head> instead of
// live from now, which would lose what is written while it reconnects.
func TestStreamGoClientResumesFromHeartbeatID(t *testing.T) {
	env := apitest.Start(t, apitest.Options{API: api.Config{Heartbeat: 50 * time.Millisecond, Retry: 10 * time.Millisecond}})
	insertN(t, env, "noise", "thing", 0, 3)

	// Connections are cut once they have read the block "id: <cutAfter>".
	var cutAfter atomic.Pointer[string]
	none := "\x00"
	cutAfter.Store(&none)
	var mu sync.Mutex
	var leids []string
	var d net.Dialer
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := d.DialContext(ctx, network, addr)
		return &cutAfterConn{Conn: conn, pattern: &cutAfter}, err
	}}
	t.Cleanup(tr.CloseIdleConnections)
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		leids = append(leids, r.Header.Get("Last-Event-ID"))
		mu.Unlock()
		return tr.RoundTrip(r)
	})
	gc := subscribeGo(t, env.URL, []string{"quiet"}, 0, client.Options{
		HTTPClient: &http.Client{Transport: rt}, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
	})
	gc.waitFor(t, wait, "connected", func(c *goClient) bool { return c.states[client.StateConnected] > 0 })

	seqs := insertN(t, env, "noise", "thing", 0, 5)
	head := seqs[len(seqs)-1]
	pattern := fmt.Sprintf("\nid: %s.%d\n\n", env.Feed.Epoch(), head)
	cutAfter.Store(&pattern)
	gc.waitFor(t, wait, "reconnect", func(c *goClient) bool { return c.states[client.StateConnected] > 1 })

	next := insertN(t, env, "quiet", "thing", 0, 1)[0]
	events := gc.waitEvents(t, 1, wait)
	mu.Lock()
	defer mu.Unlock()
	if len(leids) < 2 || leids[0] != "" || leids[1] != fmt.Sprintf("%s.%d", env.Feed.Epoch(), head) {
		t.Fatalf("Last-Event-ID of the connections: %q; want none, then %d from the heartbeat", leids, head)
	}
	for _, m := range gc.messages() {
		if m.Reset != nil || (m.Event != nil && m.Event.Seq != next) {
			t.Fatalf("delivered %+v; want only event %d", m, next)
		}
	}
	if events[0].Seq != next {
		t.Fatalf("first event %d, want %d", events[0].Seq, next)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// cutAfterConn fails its reads once the bytes read so far contain
// *pattern.
type cutAfterConn struct {
	net.Conn
	pattern *atomic.Pointer[string]
	seen    []byte // read so far (only the transport's read goroutine)
	cut     bool
}

func (c *cutAfterConn) Read(p []byte) (int, error) {
	if c.cut {
		c.Conn.Close()
		return 0, errCut
	}
	n, err := c.Conn.Read(p)
	c.seen = append(c.seen, p[:n]...)
	if bytes.Contains(c.seen, []byte(*c.pattern.Load())) {
		c.cut = true
	}
	if len(c.seen) > 1<<16 {
		c.seen = c.seen[len(c.seen)-64:]
	}
	return n, err
}

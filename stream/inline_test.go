package stream_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/api"
	"github.com/herald-dev/herald/api/apitest"
)

// TestStreamPartialWritesKeepFrames: live events are written by the hub's
// dispatching goroutine when the socket takes them, and by the stream's
// own goroutine when it does not. A client that stops reading makes those
// writes go in part (the socket takes what fits and the rest waits); when
// it reads again it must find every event once, in order, each frame
// whole: no byte lost, repeated or interleaved at the switch-overs.
func TestStreamPartialWritesKeepFrames(t *testing.T) {
	const (
		events = 80
		pad    = 3000 // 240 KiB in all: several times what the sockets hold
	)
	env := apitest.Start(t, apitest.Options{API: api.Config{
		WriteTimeout: 2 * time.Minute, // the blocked write must outlast the test's pause
		Heartbeat:    time.Minute,
	}})
	smallSendBuffers(t, env.Listener)
	slow := openSlowStream(t, env.URL, streamPath([]string{"p"}, ""))
	// A subscriber of its own says when the feed has dispatched them all.
	ctx := context.Background()
	watch, err := env.Feed.Subscribe(ctx, []string{"p"}, env.Feed.Head(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()

	// One event per transaction: each its own dispatch, as in production.
	for n := range events {
		if _, err := env.Pool.Exec(ctx, `INSERT INTO herald.events (channel, data) VALUES ('p', $1)`,
			fmt.Sprintf(`{"n": %d, "pad": "%s"}`, n, strings.Repeat(string(rune('a'+n%26)), pad))); err != nil {
			t.Fatal(err)
		}
	}
	for seen, deadline := 0, time.After(30*time.Second); seen < events; {
		b, err := watch.Take(ctx, events)
		if err != nil {
			t.Fatal(err)
		}
		if seen += len(b.Events); seen < events {
			select {
			case <-watch.Ready():
			case <-deadline:
				t.Fatalf("the feed dispatched %d of %d events", seen, events)
			}
		}
	}

	slow.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	frames := make(chan sseFrame, events+8)
	go func() { _ = parseFrames(&limitFrames{r: slow.resp.Body, n: events}, frames) }()
	for n := range events {
		var f sseFrame
		select {
		case f = <-frames:
		case <-time.After(30 * time.Second):
			t.Fatalf("got %d of %d events", n, events)
		}
		var ev struct {
			Data struct {
				N   int    `json:"n"`
				Pad string `json:"pad"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(f.data), &ev); err != nil {
			t.Fatalf("event %d: frame %.200q does not parse: %v", n, f.raw, err)
		}
		if want := strings.Repeat(string(rune('a'+n%26)), pad); ev.Data.N != n || ev.Data.Pad != want {
			t.Fatalf("event %d: got n=%d with a %d-byte pad, want n=%d", n, ev.Data.N, len(ev.Data.Pad), n)
		}
	}
}

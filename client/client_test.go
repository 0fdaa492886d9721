package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-dev/herald"
)

func TestClientDeliversEventsAndStates(t *testing.T) {
	for _, from := range []int64{0, 42} {
		t.Run(fmt.Sprintf("from=%d", from), func(t *testing.T) {
			srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				startStream(w)
				send(w, "retry: 2000\n\n"+frames(from+1, from+2)+": ping\n\n")
				<-r.Context().Done()
			})
			opts := fastOpts()
			opts.Token = "tok"
			opts.Header = http.Header{"X-Extra": {"yes"}}
			c := startClient(t, srv, from, opts)

			req := srv.nextReq(t)
			if from == 0 && req.hasLEID {
				t.Errorf("from=0 sent Last-Event-ID %q", req.lastEventID)
			}
			if from > 0 && req.lastEventID != strconv.FormatInt(from, 10) {
				t.Errorf("Last-Event-ID = %q, want %d", req.lastEventID, from)
			}
			if got := req.header.Get("Authorization"); got != "Bearer tok" {
				t.Errorf("Authorization = %q", got)
			}
			if got := req.header.Get("X-Extra"); got != "yes" {
				t.Errorf("X-Extra = %q", got)
			}
			if got := req.query["channel"]; !slices.Equal(got, []string{"ch", "other"}) {
				t.Errorf("channels = %q", got)
			}

			for _, want := range []string{StateConnecting, StateConnected} {
				if m := c.next(t); m.State == nil || m.State.State != want {
					t.Fatalf("want state %s, got %s", want, describe(m))
				}
			}
			for _, seq := range []int64{from + 1, from + 2} {
				m := c.next(t)
				if m.Event == nil || m.Event.Seq != seq {
					t.Fatalf("want event %d, got %s", seq, describe(m))
				}
				e := m.Event
				if e.Channel != "ch" || e.Type != "thing" || string(e.Data) != fmt.Sprintf(`{"n":%d}`, seq) ||
					!e.At.Equal(time.Date(2026, 11, 22, 14, 7, 3, 123e6, time.UTC)) {
					t.Errorf("event decoded as %+v", e)
				}
			}
			c.cancel()
			if err := c.wait(t, 5*time.Second); !errors.Is(err, context.Canceled) {
				t.Errorf("Subscribe returned %v, want context.Canceled", err)
			}
		})
	}
}

// Defect 1: a fragment cut off by the end of the connection is not an event.
func TestClientDiscardsTruncatedEvent(t *testing.T) {
	// The fragment's data is valid JSON on purpose: only framing can tell it
	// is incomplete.
	fragment := "id: 2\nevent: thing\ndata: " + wireData(2, `{"fragment":true}`) + "\n"
	cases := []struct {
		name string
		end  func(w http.ResponseWriter)
	}{
		{"clean close after data line", func(w http.ResponseWriter) { send(w, fragment) }},
		{"clean close mid line", func(w http.ResponseWriter) { send(w, fragment[:40]) }},
		{"dropped after data line", func(w http.ResponseWriter) { send(w, fragment); abort() }},
		{"dropped mid line", func(w http.ResponseWriter) { send(w, fragment[:40]); abort() }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer(t,
				func(w http.ResponseWriter, r *http.Request) {
					startStream(w)
					send(w, frame(1))
					tc.end(w)
				},
				func(w http.ResponseWriter, r *http.Request) {
					startStream(w)
					send(w, frames(2, 3))
					<-r.Context().Done()
				})
			c := startClient(t, srv, 0, fastOpts())
			c.expectSeqs(t, 1)
			if st := c.nextState(t, StateDisconnected); st.Err == nil {
				t.Error("disconnect after a fragment reported no error")
			}
			m := c.nextData(t)
			if m.Event == nil || m.Event.Seq != 2 || string(m.Event.Data) != `{"n":2}` {
				t.Fatalf("want the complete event 2, got %s %+v", describe(m), m.Event)
			}
			c.expectSeqs(t, 3)
			srv.nextReq(t)
			if req := srv.nextReq(t); req.lastEventID != "1" {
				t.Errorf("resumed with Last-Event-ID %q, want 1", req.lastEventID)
			}
		})
	}
}

// Defect 2: comments are not events (r3labs stamps them with the previous id).
func TestClientIgnoresHeartbeats(t *testing.T) {
	srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		startStream(w)
		send(w, ": ping\n\n"+frame(11)+": ping\n\n: ping\n\n"+frame(12)+":\n\nretry: 100\n\n"+frame(13))
		<-r.Context().Done()
	})
	c := startClient(t, srv, 10, fastOpts())
	want := []string{"state connecting (<nil>)", "state connected (<nil>)", "event 11", "event 12", "event 13"}
	for _, w := range want {
		if got := describe(c.next(t)); got != w {
			t.Fatalf("got %s, want %s", got, w)
		}
	}
}

// Defect 3: a clean end of stream is a disconnect, not the end.
func TestClientReconnectsAfterCleanEOF(t *testing.T) {
	srv := newFakeServer(t,
		func(w http.ResponseWriter, r *http.Request) { startStream(w); send(w, frame(1)) },
		func(w http.ResponseWriter, r *http.Request) {
			startStream(w)
			send(w, frame(2))
			<-r.Context().Done()
		})
	c := startClient(t, srv, 0, fastOpts())
	want := []string{"state connecting (<nil>)", "state connected (<nil>)", "event 1",
		"state disconnected (<nil>)", "state connecting (<nil>)", "state connected (<nil>)", "event 2"}
	for _, w := range want {
		if got := describe(c.next(t)); got != w {
			t.Fatalf("got %s, want %s", got, w)
		}
	}
	srv.nextReq(t)
	if req := srv.nextReq(t); req.lastEventID != "1" {
		t.Errorf("Last-Event-ID = %q, want 1", req.lastEventID)
	}
}

// Defect 4: no overall deadline; many consecutive failures of every kind.
func TestClientRetriesForever(t *testing.T) {
	failures := []step{
		func(w http.ResponseWriter, r *http.Request) { abort() },
		func(w http.ResponseWriter, r *http.Request) { jsonError(w, 503, "unavailable", "later") },
		func(w http.ResponseWriter, r *http.Request) { jsonError(w, 500, "internal", "oops") },
		func(w http.ResponseWriter, r *http.Request) { startStream(w) },
		func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }, // not an event stream
	}
	var steps []step
	for i := range 30 {
		steps = append(steps, failures[i%len(failures)])
	}
	steps = append(steps, func(w http.ResponseWriter, r *http.Request) {
		startStream(w)
		send(w, frame(1))
		<-r.Context().Done()
	})
	srv := newFakeServer(t, steps...)
	c := startClient(t, srv, 0, Options{MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
	c.expectSeqs(t, 1)
	if n := srv.count.Load(); n != 31 {
		t.Errorf("%d requests, want 31", n)
	}
}

// The client never delivers a seq twice or goes backwards, whatever the
// server replays, and counts what it dropped in Options.Dropped.
func TestClientDropsReplayedEvents(t *testing.T) {
	srv := newFakeServer(t,
		func(w http.ResponseWriter, r *http.Request) { startStream(w); send(w, frames(1, 2, 3)) },
		func(w http.ResponseWriter, r *http.Request) {
			startStream(w)
			send(w, frames(2, 3, 4, 3, 5))
			<-r.Context().Done()
		})
	opts := fastOpts()
	var dropped atomic.Int64
	opts.Dropped = &dropped
	c := startClient(t, srv, 0, opts)
	c.expectSeqs(t, 1, 2, 3, 4, 5)
	srv.nextReq(t)
	if req := srv.nextReq(t); req.lastEventID != "3" {
		t.Errorf("Last-Event-ID = %q, want 3", req.lastEventID)
	}
	// 2, 3 (replayed after the reconnect) and the second 3: all counted
	// before 5 was delivered.
	if n := dropped.Load(); n != 3 {
		t.Errorf("Dropped = %d, want 3 (2, 3 and 3 again)", n)
	}
}

// Defect 6: retry: sets the reconnect delay. The client's own backoff is an
// hour, so a reconnect within 5 s proves the server's 50 ms was used.
func TestClientHonoursRetry(t *testing.T) {
	srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		startStream(w)
		send(w, "retry: 50\n\n"+frame(1))
	})
	c := startClient(t, srv, 0, Options{MinBackoff: time.Hour, MaxBackoff: 2 * time.Hour})
	c.expectSeqs(t, 1)
	srv.nextReq(t)
	if req := srv.nextReq(t); req.lastEventID != "1" {
		t.Errorf("Last-Event-ID = %q, want 1", req.lastEventID)
	}
	c.nextState(t, StateConnected)
}

// Defect 5: cancelling ctx ends Subscribe promptly, even mid-backoff.
func TestClientCancelDuringBackoff(t *testing.T) {
	cases := []struct {
		name  string
		step  step
		state string // wait for this state before cancelling
	}{
		{"after 503", func(w http.ResponseWriter, r *http.Request) { jsonError(w, 503, "unavailable", "x") }, StateDisconnected},
		{"after clean EOF", func(w http.ResponseWriter, r *http.Request) { startStream(w) }, StateDisconnected},
		{"after dropped connection", func(w http.ResponseWriter, r *http.Request) { abort() }, StateDisconnected},
		{"while connecting", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, StateConnecting},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer(t, tc.step)
			c := startClient(t, srv, 0, Options{MinBackoff: time.Hour, MaxBackoff: 2 * time.Hour})
			c.nextState(t, tc.state)
			srv.nextReq(t)
			c.cancel()
			// The backoff is an hour: returning within 10 s (a cancel takes
			// milliseconds) proves the wait ended on cancel.
			if err := c.wait(t, 10*time.Second); !errors.Is(err, context.Canceled) {
				t.Errorf("Subscribe returned %v, want context.Canceled", err)
			}
		})
	}
}

// Defect 7: 4xx other than 429 is permanent: *HTTPError, no retry.
func TestClientStopsOnPermanentHTTPError(t *testing.T) {
	cases := []struct {
		status      int
		code, msg   string
		plain       bool
		wantMessage string
	}{
		{status: 400, code: "bad_channel", msg: "channel name has a space"},
		{status: 401, code: "unauthorized", msg: "token expired"},
		{status: 403, code: "forbidden", msg: "token does not grant private-x"},
		{status: 404, plain: true, msg: "404 page not found", wantMessage: "404 page not found"},
	}
	for _, tc := range cases {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.plain {
					http.Error(w, tc.msg, tc.status)
					return
				}
				jsonError(w, tc.status, tc.code, tc.msg)
			})
			c := startClient(t, srv, 0, fastOpts())
			err := c.wait(t, 5*time.Second)
			he := asHTTPError(err)
			if he == nil {
				t.Fatalf("Subscribe returned %v, want *HTTPError", err)
			}
			want := tc.wantMessage
			if want == "" {
				want = tc.msg
			}
			if he.Status != tc.status || he.Code != tc.code || he.Message != want {
				t.Errorf("got %+v", he)
			}
			if !strings.Contains(he.Error(), strconv.Itoa(tc.status)) {
				t.Errorf("Error() = %q", he.Error())
			}
			if n := srv.count.Load(); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
			st := c.nextState(t, StateFailed)
			if asHTTPError(st.Err) != he {
				t.Errorf("failed state carries %v", st.Err)
			}
		})
	}
}

// Defect 7: 429 and 503 are retried, no sooner than Retry-After.
func TestClientRetriesRateLimited(t *testing.T) {
	for _, status := range []int{429, 503} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			srv := newFakeServer(t,
				func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Retry-After", "1")
					jsonError(w, status, "limited", "slow down")
				},
				func(w http.ResponseWriter, r *http.Request) {
					startStream(w)
					send(w, frame(1))
					<-r.Context().Done()
				})
			c := startClient(t, srv, 0, fastOpts())
			st := c.nextState(t, StateDisconnected)
			if he := asHTTPError(st.Err); he == nil || he.Status != status || he.Code != "limited" {
				t.Errorf("disconnect error %v", st.Err)
			}
			c.expectSeqs(t, 1)
			first, second := srv.nextReq(t), srv.nextReq(t)
			if gap := second.at.Sub(first.at); gap < 950*time.Millisecond {
				t.Errorf("retried after %v, before Retry-After: 1", gap)
			}
		})
	}
}

// Defect 8: events far beyond r3labs's 64 KiB default arrive intact, and
// MaxEventSize is enforced.
func TestClientLargeEvent(t *testing.T) {
	blob := strings.Repeat("0123456789abcdef", 200<<10/16) // 200 KiB
	payload := `{"blob":"` + blob + `"}`
	big := "id: 11\nevent: thing\ndata: " + wireData(11, payload) + "\n\n"

	t.Run("default limit", func(t *testing.T) {
		srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
			startStream(w)
			send(w, big+frame(12))
			<-r.Context().Done()
		})
		c := startClient(t, srv, 10, fastOpts())
		m := c.nextData(t)
		if m.Event == nil || m.Event.Seq != 11 || string(m.Event.Data) != payload {
			t.Fatalf("large event not delivered intact: %s", describe(m))
		}
		c.expectSeqs(t, 12)
	})
	t.Run("over MaxEventSize", func(t *testing.T) {
		srv := newFakeServer(t,
			func(w http.ResponseWriter, r *http.Request) {
				startStream(w)
				send(w, big)
				<-r.Context().Done()
			},
			func(w http.ResponseWriter, r *http.Request) {
				startStream(w)
				send(w, frame(12))
				<-r.Context().Done()
			})
		opts := fastOpts()
		opts.MaxEventSize = 64 << 10
		c := startClient(t, srv, 10, opts)
		st := c.nextState(t, StateDisconnected)
		if st.Err == nil || !strings.Contains(st.Err.Error(), "MaxEventSize") {
			t.Errorf("disconnect error %v", st.Err)
		}
		c.expectSeqs(t, 12)
	})
}

// A reset is surfaced and the client continues from its cursor, even when
// that is below the previous cursor (restored database).
func TestClientReset(t *testing.T) {
	for _, cursor := range []int64{5000, 3} {
		t.Run(strconv.FormatInt(cursor, 10), func(t *testing.T) {
			srv := newFakeServer(t,
				func(w http.ResponseWriter, r *http.Request) {
					startStream(w)
					send(w, fmt.Sprintf("event: reset\ndata: {\"cursor\":\"%d\"}\n\n", cursor))
				},
				func(w http.ResponseWriter, r *http.Request) {
					startStream(w)
					send(w, frames(cursor, cursor+1))
					<-r.Context().Done()
				})
			c := startClient(t, srv, 10, fastOpts())
			m := c.nextData(t)
			if m.Reset == nil || m.Reset.Cursor != (herald.Cursor{Seq: cursor}) {
				t.Fatalf("want reset %d, got %s", cursor, describe(m))
			}
			c.expectSeqs(t, cursor+1)
			if req := srv.nextReq(t); req.lastEventID != "10" {
				t.Errorf("first Last-Event-ID = %q, want 10", req.lastEventID)
			}
			if req := srv.nextReq(t); req.lastEventID != strconv.FormatInt(cursor, 10) {
				t.Errorf("after reset Last-Event-ID = %q, want %d", req.lastEventID, cursor)
			}
		})
	}
}

func TestClientHandlerErrorStops(t *testing.T) {
	srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		startStream(w)
		send(w, frames(1, 2, 3))
		<-r.Context().Done()
	})
	stop := errors.New("stop")
	var seen []int64
	err := Subscribe(context.Background(), srv.URL, []string{"ch"}, herald.Cursor{}, func(m Message) error {
		if m.Event != nil {
			seen = append(seen, m.Event.Seq)
			return stop
		}
		return nil
	}, fastOpts())
	if !errors.Is(err, stop) || !slices.Equal(seen, []int64{1}) {
		t.Errorf("Subscribe returned %v after %v", err, seen)
	}
	if n := srv.count.Load(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestClientSubscribeArguments(t *testing.T) {
	ok := func(Message) error { return nil }
	for name, call := range map[string]func() error{
		"no channels": func() error {
			return Subscribe(context.Background(), "http://x", nil, herald.Cursor{}, ok, Options{})
		},
		"bad scheme": func() error {
			return Subscribe(context.Background(), "x", []string{"a"}, herald.Cursor{}, ok, Options{})
		},
		"nil handler": func() error {
			return Subscribe(context.Background(), "http://x", []string{"a"}, herald.Cursor{}, nil, Options{})
		},
	} {
		if err := call(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	u, err := streamURL("https://h.example/base/", []string{"a", "b c"})
	if err != nil || u != "https://h.example/base/v1/stream?channel=a&channel=b+c" {
		t.Errorf("streamURL = %q, %v", u, err)
	}
}

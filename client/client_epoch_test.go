package client

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/herald-dev/herald"
)

// epochFrame is a notice as herald sends it: id "<epoch>.<seq>".
func epochFrame(epoch string, seq int64) string {
	id := fmt.Sprintf("%s.%d", epoch, seq)
	return fmt.Sprintf("id: %s\nevent: thing\ndata: {\"id\":\"%s\",\"channel\":\"ch\",\"type\":\"thing\",\"data\":{\"n\":%d},\"at\":\"2026-11-22T14:07:03.123Z\"}\n\n", id, id, seq)
}

// The Go client and epochs: the opening block's id is the position to
// resume from when the client has none yet (or only a bare seq); an
// id-only block of another epoch does not move the cursor; a notice of
// another epoch without a reset is preceded by one the client makes up.
func TestClientEpochs(t *testing.T) {
	cases := []struct {
		name     string
		from     herald.Cursor
		first    string
		delivers []string
		wantLEID string
	}{
		{"opening id, no cursor", herald.Cursor{}, "retry: 10\nid: e1.5\n\n", nil, "e1.5"},
		{"opening id after a bare cursor", herald.Cursor{Seq: 5}, "retry: 10\nid: e1.5\n\n", nil, "e1.5"},
		{"id-only block of another epoch ignored", herald.Cursor{}, "retry: 10\nid: e1.5\n\n: ping\nid: e2.9\n\n", nil, "e1.5"},
		{"lower id in the epoch ignored", herald.Cursor{Epoch: "e1", Seq: 7}, "retry: 10\nid: e1.5\n\n", nil, "e1.7"},
		{"duplicate in the epoch dropped", herald.Cursor{Epoch: "e1", Seq: 6}, epochFrame("e1", 6) + epochFrame("e1", 7), []string{"event 7"}, "e1.7"},
		{"another epoch is a reset", herald.Cursor{Epoch: "e1", Seq: 6}, epochFrame("e2", 3), []string{"reset e2.2", "event 3"}, "e2.3"},
		{"reset with an epoch cursor", herald.Cursor{Epoch: "e1", Seq: 6}, "event: reset\ndata: {\"cursor\":\"e2.40\"}\n\n" + epochFrame("e2", 41), []string{"reset e2.40", "event 41"}, "e2.41"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer(t,
				func(w http.ResponseWriter, r *http.Request) { startStream(w); send(w, tc.first) },
				func(w http.ResponseWriter, r *http.Request) {
					startStream(w)
					<-r.Context().Done()
				})
			ctx := t.Context()
			msgs := make(chan Message, 64)
			go func() {
				_ = Subscribe(ctx, srv.URL, []string{"ch"}, tc.from, func(m Message) error { msgs <- m; return nil }, fastOpts())
			}()
			for _, want := range tc.delivers {
				var m Message
				for m.Event == nil && m.Reset == nil {
					select {
					case m = <-msgs:
					case <-time.After(10 * time.Second):
						t.Fatalf("no %s within 10 s", want)
					}
				}
				if got := describe(m); got != want {
					t.Fatalf("got %s, want %s", got, want)
				}
			}
			srv.nextReq(t)
			if second := srv.nextReq(t); second.lastEventID != tc.wantLEID {
				t.Errorf("reconnect Last-Event-ID = %q, want %s", second.lastEventID, tc.wantLEID)
			}
		})
	}
}

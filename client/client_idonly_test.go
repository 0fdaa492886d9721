package client

import (
	"net/http"
	"strconv"
	"testing"
)

// A block with an id: and no data (herald's heartbeat once other channels
// moved the log) delivers nothing but moves the cursor the client resumes
// from, as it moves EventSource's lastEventId; it never moves it back, and
// the id r3labs stamps on id-less blocks does not count as one.
func TestClientIDOnlyBlockMovesCursor(t *testing.T) {
	cases := []struct {
		name     string
		from     int64
		first    string // the first connection's body, then a clean end
		delivers []string
		wantLEID string // Last-Event-ID of the second connection
	}{
		{"heartbeat id, no cursor yet", 0, "retry: 10\n\n: ping\nid: 42\n\n", nil, "42"},
		{"heartbeat id after events", 10, frame(11) + ": ping\nid: 15\n\n", []string{"event 11"}, "15"},
		{"bare id block", 10, "id: 12\n\n", nil, "12"},
		{"lower id does not move back", 10, frame(11) + ": ping\nid: 7\n\n", []string{"event 11"}, "11"},
		{"not a number", 10, "id: x\n\n", nil, "10"},
		// r3labs stamps the retry-only block after an id-less reset with
		// the Last-Event-ID it sent (10): that is not a new id.
		{"stamped id after reset", 10, "event: reset\ndata: {\"cursor\":\"3\"}\n\nretry: 10\n\n: ping\n\n", []string{"reset 3"}, "3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer(t,
				func(w http.ResponseWriter, r *http.Request) { startStream(w); send(w, tc.first) },
				func(w http.ResponseWriter, r *http.Request) {
					startStream(w)
					send(w, frame(100))
					<-r.Context().Done()
				})
			c := startClient(t, srv, tc.from, fastOpts())
			for _, want := range append(tc.delivers, "event 100") {
				if got := describe(c.nextData(t)); got != want {
					t.Fatalf("got %s, want %s", got, want)
				}
			}
			first := srv.nextReq(t)
			if want := strconv.FormatInt(tc.from, 10); tc.from > 0 && first.lastEventID != want {
				t.Errorf("first Last-Event-ID = %q, want %s", first.lastEventID, want)
			}
			if second := srv.nextReq(t); second.lastEventID != tc.wantLEID {
				t.Errorf("reconnect Last-Event-ID = %q (sent: %v), want %s", second.lastEventID, second.hasLEID, tc.wantLEID)
			}
		})
	}
}

package client

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

// TestClientUnavailableEvent: herald answers an event-stream request it
// cannot serve now with 200, retry: and an "unavailable" event (so that a
// browser's EventSource retries). The Go client reports it as the
// *HTTPError the status would have been, delivers nothing, keeps its
// cursor, and does not come back before the event's retryAfter.
func TestClientUnavailableEvent(t *testing.T) {
	for _, status := range []int{429, 503} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			srv := newFakeServer(t,
				func(w http.ResponseWriter, r *http.Request) {
					startStream(w)
					send(w, "retry: 1000\n\nevent: unavailable\ndata: {\"status\":"+strconv.Itoa(status)+
						",\"error\":{\"code\":\"limited\",\"message\":\"slow down\"},\"retryAfter\":1}\n\n")
				},
				func(w http.ResponseWriter, r *http.Request) {
					startStream(w)
					send(w, frame(8))
					<-r.Context().Done()
				})
			c := startClient(t, srv, 7, fastOpts())
			st := c.nextState(t, StateDisconnected)
			if he := asHTTPError(st.Err); he == nil || he.Status != status || he.Code != "limited" || he.Message != "slow down" {
				t.Fatalf("disconnect error %v, want HTTP %d limited", st.Err, status)
			}
			c.expectSeqs(t, 8)
			first, second := srv.nextReq(t), srv.nextReq(t)
			if gap := second.at.Sub(first.at); gap < 950*time.Millisecond {
				t.Errorf("retried after %v, before the event's retryAfter (1 s)", gap)
			}
			if id := second.header.Get("Last-Event-ID"); id != "7" {
				t.Errorf("resumed with Last-Event-ID %q, want 7 (the unavailable answer has no id)", id)
			}
		})
	}
}

package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestFloorServerLongPoll drives the floor through the exchange the
// longpoll scenario uses against nchan: prime, poll from the primer's id,
// wait for the next publish, continue from Last-Modified.
func TestFloorServerLongPoll(t *testing.T) {
	srv := httptest.NewServer(newFloorServer())
	t.Cleanup(srv.Close)
	tgt := newNchanTarget("nethttp", mustURL(t, srv.URL), 2)
	t.Cleanup(tgt.Close)
	ctx := context.Background()

	id, err := tgt.Prime(ctx, "c")
	if err != nil || id != "1:0" {
		t.Fatalf("Prime = %q, %v; want 1:0", id, err)
	}
	type answer struct {
		status        int
		body, lastMod string
	}
	poll := func(hdr, val string) <-chan answer {
		ch := make(chan answer, 1)
		go func() {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/sub/c", nil)
			req.Header.Set(hdr, val)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("poll: %v", err)
				ch <- answer{}
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			ch <- answer{resp.StatusCode, string(b), resp.Header.Get("Last-Modified")}
		}()
		return ch
	}
	waiting := poll("Last-Event-ID", id)
	select {
	case a := <-waiting:
		t.Fatalf("a poll from the newest message answered %+v before anything was published", a)
	case <-time.After(50 * time.Millisecond):
	}
	if err := tgt.Publish(ctx, "c", []byte(`{"n":2}`)); err != nil {
		t.Fatal(err)
	}
	if a := <-waiting; a.status != http.StatusOK || a.body != `{"n":2}` || a.lastMod != "2" {
		t.Fatalf("first answer %+v; want 200 {\"n\":2} Last-Modified 2", a)
	}
	if err := tgt.Publish(ctx, "c", []byte(`{"n":3}`)); err != nil {
		t.Fatal(err)
	}
	// Already published: answered at once, from If-Modified-Since.
	if a := <-poll("If-Modified-Since", "2"); a.status != http.StatusOK || a.body != `{"n":3}` || a.lastMod != "3" {
		t.Fatalf("second answer %+v; want 200 {\"n\":3} Last-Modified 3", a)
	}
	if a := <-poll("If-Modified-Since", "-1"); a.status != http.StatusBadRequest {
		t.Errorf("a negative cursor answered %+v; want 400", a)
	}
	if a := <-poll("Accept", "text/event-stream"); a.status != http.StatusNotImplemented || !strings.Contains(a.body, "long-poll only") {
		t.Errorf("an SSE request answered %+v; want 501", a)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-dev/herald"
)

// Scripted SSE servers for the client tests: request i is served by step i;
// requests past the script get an open, silent stream.

type step func(w http.ResponseWriter, r *http.Request)

type reqInfo struct {
	n           int
	at          time.Time
	lastEventID string
	hasLEID     bool
	query       url.Values
	header      http.Header
}

type fakeServer struct {
	*httptest.Server
	reqs  chan reqInfo
	count atomic.Int32
}

func newFakeServer(t *testing.T, steps ...step) *fakeServer {
	t.Helper()
	fs := &fakeServer{reqs: make(chan reqInfo, 1024)}
	fs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(fs.count.Add(1)) - 1
		leid, has := r.Header["Last-Event-Id"]
		info := reqInfo{n: i, at: time.Now(), hasLEID: has, query: r.URL.Query(), header: r.Header.Clone()}
		if has {
			info.lastEventID = leid[0]
		}
		fs.reqs <- info
		if i < len(steps) {
			steps[i](w, r)
			return
		}
		hold(w, r)
	}))
	t.Cleanup(fs.Close)
	return fs
}

// nextReq returns the next request the server received.
func (fs *fakeServer) nextReq(t *testing.T) reqInfo {
	t.Helper()
	select {
	case r := <-fs.reqs:
		return r
	case <-time.After(30 * time.Second): // a deadline for a condition, not a speed
		t.Fatal("timed out waiting for a request")
		return reqInfo{}
	}
}

func startStream(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
}

func send(w http.ResponseWriter, raw string) {
	fmt.Fprint(w, raw)
	w.(http.Flusher).Flush()
}

// hold keeps a stream open and silent until the client goes away.
func hold(w http.ResponseWriter, r *http.Request) {
	startStream(w)
	<-r.Context().Done()
}

// abort drops the connection without ending the response properly.
func abort() { panic(http.ErrAbortHandler) }

func wireData(seq int64, payload string) string {
	return fmt.Sprintf(`{"id":"%d","channel":"ch","type":"thing","data":%s,"at":"2026-11-22T14:07:03.123Z"}`, seq, payload)
}

func frame(seq int64) string {
	return fmt.Sprintf("id: %d\nevent: thing\ndata: %s\n\n", seq, wireData(seq, fmt.Sprintf(`{"n":%d}`, seq)))
}

func frames(seqs ...int64) string {
	s := ""
	for _, q := range seqs {
		s += frame(q)
	}
	return s
}

func jsonError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": code, "message": msg}})
	w.Write(b)
}

// clientRun is one Subscribe running in the background.
type clientRun struct {
	msgs   chan Message
	done   chan struct{} // closed when Subscribe returned; err is then set
	err    error
	cancel context.CancelFunc
}

func fastOpts() Options {
	return Options{MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}
}

func startClient(t *testing.T, srv *fakeServer, from int64, opts Options) *clientRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &clientRun{msgs: make(chan Message, 4096), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(r.done)
		r.err = Subscribe(ctx, srv.URL, []string{"ch", "other"}, herald.Cursor{Seq: from}, func(m Message) error {
			r.msgs <- m
			return nil
		}, opts)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second): // a deadline for a condition, not a speed
			t.Error("Subscribe did not return after cancel")
		}
	})
	return r
}

func (r *clientRun) next(t *testing.T) Message {
	t.Helper()
	select {
	case m := <-r.msgs:
		return m
	case <-r.done:
		select { // messages delivered before Subscribe returned
		case m := <-r.msgs:
			return m
		default:
		}
		t.Fatalf("Subscribe returned early: %v", r.err)
	case <-time.After(30 * time.Second): // a deadline for a condition, not a speed
		t.Fatal("timed out waiting for a message")
	}
	return Message{}
}

// nextData skips state changes and returns the next Event or Reset.
func (r *clientRun) nextData(t *testing.T) Message {
	t.Helper()
	for {
		if m := r.next(t); m.State == nil {
			return m
		}
	}
}

// nextState skips to the next state change with the given state.
func (r *clientRun) nextState(t *testing.T, state string) *StateChange {
	t.Helper()
	for {
		m := r.next(t)
		if m.Event != nil || m.Reset != nil {
			t.Fatalf("waiting for state %q, got %s", state, describe(m))
		}
		if m.State.State == state {
			return m.State
		}
	}
}

func (r *clientRun) wait(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(within):
		t.Fatalf("Subscribe did not return within %v", within)
		return nil
	}
}

func describe(m Message) string {
	switch {
	case m.Event != nil:
		return "event " + strconv.FormatInt(m.Event.Seq, 10)
	case m.Reset != nil:
		return "reset " + m.Reset.Cursor.String()
	case m.State != nil:
		return fmt.Sprintf("state %s (%v)", m.State.State, m.State.Err)
	}
	return "empty message"
}

// expectSeqs asserts that the next Events/Resets are events with these seqs.
func (r *clientRun) expectSeqs(t *testing.T, seqs ...int64) {
	t.Helper()
	for _, want := range seqs {
		m := r.nextData(t)
		if m.Event == nil || m.Event.Seq != want {
			t.Fatalf("want event %d, got %s", want, describe(m))
		}
	}
}

func asHTTPError(err error) *HTTPError {
	var he *HTTPError
	if errors.As(err, &he) {
		return he
	}
	return nil
}

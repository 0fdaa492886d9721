// Package client is herald's Go client: Subscribe follows a stream from a
// cursor, reconnecting and resuming by itself, and hands out each event
// once, in order, or a reset. It imports the core (package herald) and
// r3labs/sse only, so an app using it pulls in no database driver and no
// HTTP framework.
//
// Engine: github.com/r3labs/sse/v2's Client. Each connection attempt is one
// call to sse.Client.SubscribeRawWithContext with ReconnectStrategy set to
// backoff.StopBackOff, so r3labs performs exactly one request and returns,
// and Subscribe drives the reconnect loop itself. r3labs still builds the
// request (Accept, Cache-Control, Last-Event-ID from Client.LastEventID, our
// headers), runs its read loop over its EventStreamReader and parses fields
// into sse.Event. Its defects are fixed around it:
//
//  1. Truncated events: r3labs's scanner hands whatever is buffered at EOF
//     or on a read error to the parser as a complete event. Our
//     ResponseValidator swaps resp.Body for a frameReader (client_frame.go)
//     that releases bytes only up to the last blank line, so a fragment
//     never reaches r3labs; the stream then ends with an error instead.
//  2. Heartbeats: r3labs dispatches comment blocks as empty events carrying
//     the previous id. Blocks with no data are not dispatched (SSE spec).
//  3. Clean EOF ends r3labs's Subscribe with nil: our loop reconnects.
//  4. r3labs's default backoff gives up after 15 minutes: ours has no limit.
//  5. r3labs sleeps its backoff ignoring ctx: our wait selects on ctx.
//  6. r3labs ignores retry:; we keep it as the base of our backoff.
//  7. r3labs retries any status forever: the validator turns a non-200 into
//     *HTTPError; 4xx other than 429 stop Subscribe, 429/5xx back off at
//     least Retry-After.
//  8. r3labs's 64 KiB buffer: MaxEventSize (default 1 MiB) sizes both the
//     frameReader limit and r3labs's buffer (ClientMaxBufferSize).
//
// Driving the loop ourselves (rather than plugging a BackOff into r3labs's
// RetryNotify) is what makes 3, 5 and 7 possible: RetryNotify treats a nil
// return as "done", sleeps on a context we cannot tie to ctx per attempt
// without losing cancellation during the sleep, and cannot see statuses.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/r3labs/sse/v2"
	"gopkg.in/cenkalti/backoff.v1"

	"github.com/herald-dev/herald"
)

// Message is what the handler receives. Exactly one field is set.
type Message struct {
	Event *herald.Event
	Reset *Reset
	State *StateChange
}

// Reset tells the handler that the server could not resume from the client's
// cursor (too old, ahead of head, or from another epoch: the database was
// restored or promoted): the handler must refetch its full state. The client
// continues from Cursor.
type Reset struct {
	Cursor herald.Cursor
}

// Connection states reported in StateChange.State.
const (
	StateConnecting   = "connecting"
	StateConnected    = "connected"
	StateDisconnected = "disconnected" // Err is nil after a clean end of stream
	StateFailed       = "failed"       // permanent; Subscribe returns Err
)

// StateChange reports the connection state. Every "connecting" is followed by
// "connected", "disconnected" or "failed" (unless ctx ends first).
type StateChange struct {
	State string
	Err   error
}

// Options configures Subscribe. The zero value is usable.
type Options struct {
	Token      string       // sent as Authorization: Bearer
	HTTPClient *http.Client // optional; must not have a Timeout shorter than a stream's life
	// Reconnect delay: capped, jittered exponential backoff starting from
	// MinBackoff (default 500ms), or from the server's retry: when it sent
	// one, up to MaxBackoff (default 30s).
	MinBackoff, MaxBackoff time.Duration
	MaxEventSize           int         // largest event on the wire; default 1 MiB
	Header                 http.Header // extra headers
	// Dropped, when set, counts events the client dropped because their
	// seq was not above its cursor (a replayed or out-of-order event: the
	// handler never sees it). A correct server leaves it at 0.
	Dropped *atomic.Int64
}

const (
	defaultMinBackoff   = 500 * time.Millisecond
	defaultMaxBackoff   = 30 * time.Second
	defaultMaxEventSize = 1 << 20
)

// HTTPError is a non-200 answer to the stream request, with herald's error
// body {"error":{"code":...,"message":...}} decoded when present.
type HTTPError struct {
	Status  int
	Code    string
	Message string

	retryAfter time.Duration
}

func (e *HTTPError) Error() string {
	s := fmt.Sprintf("herald: HTTP %d", e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// permanent reports whether retrying cannot help: 4xx other than 429.
func (e *HTTPError) permanent() bool {
	return e.Status >= 400 && e.Status < 500 && e.Status != http.StatusTooManyRequests
}

// Subscribe connects to base+"/v1/stream" for channels, starting after cursor
// from (the zero Cursor = live from now; else sent as Last-Event-ID; a bare
// seq with no Epoch is taken by the server as its current epoch), and calls handle
// for every message in order, from the calling goroutine. It keeps going
// across reconnects until ctx is done (returns ctx.Err()), handle returns an
// error (returns it), or the server answers 4xx other than 429 (returns an
// *HTTPError after a "failed" StateChange).
//
// It tracks the last cursor delivered, or a later id: the server sent on a
// block without data (the opening block, a heartbeat), and resumes from it,
// dropping any event of the same epoch with a seq not above it, so no seq is
// delivered twice and seqs only increase within an epoch. The one exception
// is a Reset: the server's explicit instruction to continue from its cursor,
// which the handler sees first. An event of another epoch arriving without
// one (it should not) is preceded by a Reset the client makes up itself.
//
// With the zero from, the server's opening block gives the client its
// position before any notice, so a connection lost before the first event
// resumes from there.
func Subscribe(ctx context.Context, base string, channels []string, from herald.Cursor, handle func(Message) error, opts Options) error {
	if handle == nil {
		return errors.New("stream: Subscribe needs a handler")
	}
	if from.Seq < 0 || (from.Epoch != "" && !herald.ValidEpoch(from.Epoch)) {
		return fmt.Errorf("stream: invalid cursor %q", from.String())
	}
	u, err := streamURL(base, channels)
	if err != nil {
		return err
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = defaultMinBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = defaultMaxBackoff
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = opts.MinBackoff
	}
	if opts.MaxEventSize <= 0 {
		opts.MaxEventSize = defaultMaxEventSize
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{}
	}
	s := &subscription{url: u, opts: opts, handle: handle, last: from}
	return s.run(ctx)
}

func streamURL(base string, channels []string) (string, error) {
	if len(channels) == 0 {
		return "", errors.New("stream: Subscribe needs at least one channel")
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("stream: base URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("stream: base URL %q: scheme must be http or https", base)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/stream"
	u.RawPath = ""
	q := u.Query()
	for _, c := range channels {
		q.Add("channel", c)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

type subscription struct {
	url    string
	opts   Options
	handle func(Message) error

	last     herald.Cursor // last cursor delivered (or reset cursor), or a later id: the server sent; zero = none
	wireID   string        // the id r3labs stamps on events without an id: field
	retry    time.Duration // server's retry:, 0 if none yet
	failures int           // consecutive attempts that were not healthy
}

// attempt is the outcome of one connection.
type attempt struct {
	err        error // why the connection ended; nil for a clean end of stream
	handlerErr error // handle returned an error: stop
	connected  time.Time
	delivered  bool // at least one Event or Reset went to the handler
}

func (s *subscription) run(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.handle(Message{State: &StateChange{State: StateConnecting}}); err != nil {
			return err
		}
		a := s.connect(ctx)
		if a.handlerErr != nil {
			return a.handlerErr
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		var he *HTTPError
		if errors.As(a.err, &he) && he.permanent() {
			if err := s.handle(Message{State: &StateChange{State: StateFailed, Err: he}}); err != nil {
				return err
			}
			return he
		}
		if err := s.handle(Message{State: &StateChange{State: StateDisconnected, Err: a.err}}); err != nil {
			return err
		}
		// A connection that delivered something, or stayed up for a while,
		// was healthy: start the backoff over.
		if a.delivered || (!a.connected.IsZero() && time.Since(a.connected) >= s.opts.MaxBackoff) {
			s.failures = 0
		}
		var minWait time.Duration
		if he != nil {
			minWait = he.retryAfter
		}
		wait := s.delay(minWait)
		s.failures++
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// delay is the wait before the next attempt: base·2^failures capped at
// MaxBackoff, jittered into [d/2, d], and at least minWait (Retry-After).
// base is the server's retry: if it sent one, else MinBackoff.
func (s *subscription) delay(minWait time.Duration) time.Duration {
	d := s.opts.MinBackoff
	if s.retry > 0 {
		d = s.retry
	}
	d = max(d, time.Millisecond)
	for i := 0; i < s.failures && d < s.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.opts.MaxBackoff)
	d = d/2 + rand.N(d/2+1)
	return max(d, minWait)
}

// connect makes one connection attempt through r3labs and reads the stream
// until it ends.
func (s *subscription) connect(ctx context.Context) attempt {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// r3labs's scanner must never be the limit: the frameReader enforces
	// MaxEventSize on whole events and releases only whole events.
	c := sse.NewClient(s.url, sse.ClientMaxBufferSize(2*s.opts.MaxEventSize+64<<10))
	c.Connection = s.opts.HTTPClient
	c.ReconnectStrategy = &backoff.StopBackOff{}
	for k, vs := range s.opts.Header {
		c.Headers[k] = strings.Join(vs, ", ")
	}
	if s.opts.Token != "" {
		c.Headers["Authorization"] = "Bearer " + s.opts.Token
	}
	s.wireID = ""
	if s.last != (herald.Cursor{}) {
		s.wireID = s.last.String()
		c.LastEventID.Store([]byte(s.wireID))
	}

	var a attempt
	var streamErr error // protocol error found while dispatching
	c.ResponseValidator = func(_ *sse.Client, resp *http.Response) error {
		if err := checkResponse(resp); err != nil {
			return err
		}
		resp.Body = newFrameReader(resp.Body, s.opts.MaxEventSize)
		a.connected = time.Now()
		if err := s.handle(Message{State: &StateChange{State: StateConnected}}); err != nil {
			a.handlerErr = err
			return err
		}
		return nil
	}
	err := c.SubscribeRawWithContext(ctx, func(ev *sse.Event) {
		// r3labs keeps reading already-buffered events after we stop.
		if a.handlerErr != nil || streamErr != nil {
			return
		}
		delivered, herr, perr := s.dispatch(ev)
		a.delivered = a.delivered || delivered
		switch {
		case herr != nil:
			a.handlerErr = herr
			cancel()
		case perr != nil:
			streamErr = perr
			cancel()
		}
	})
	if streamErr != nil {
		err = streamErr
	}
	a.err = err
	return a
}

// dispatch handles one event parsed by r3labs. It returns whether a message
// was delivered, the handler's error, or a protocol error.
func (s *subscription) dispatch(ev *sse.Event) (delivered bool, handlerErr, protoErr error) {
	if len(ev.Retry) > 0 {
		if ms, err := strconv.ParseInt(strings.TrimSpace(string(ev.Retry)), 10, 64); err == nil && ms >= 0 {
			s.retry = time.Duration(ms) * time.Millisecond
		}
	}
	// r3labs stamps an event without an id: field with the last id it saw
	// (or the Last-Event-ID it sent), so an id other than that one was on
	// this block.
	id := string(ev.ID)
	newID := id != s.wireID
	s.wireID = id
	// An event with no data is not dispatched (SSE spec). This drops
	// heartbeat comments and retry-only blocks, which r3labs passes on as
	// empty events stamped with the previous id. An id on such a block
	// still moves the cursor, as it does EventSource's lastEventId: herald's
	// heartbeat carries "id: <head>" once other channels moved the log past
	// this client, so a reconnect resumes from there rather than from a
	// cursor that history may no longer reach; the opening block carries
	// the position the stream starts from, so a client that came without a
	// cursor has one before the first notice. Nothing is delivered, and the
	// cursor never moves back or into another epoch (only a reset does).
	if len(ev.Data) == 0 {
		if newID {
			if c, err := herald.ParseCursor(strings.TrimSpace(id)); err == nil && s.advances(c) {
				s.last = c
			}
		}
		return false, nil, nil
	}
	if string(ev.Event) == unavailableEvent {
		return false, nil, unavailableError(ev.Data)
	}
	if string(ev.Event) == "revoked" {
		var r herald.Revocation
		_ = json.Unmarshal(ev.Data, &r)
		return false, &RevokedError{r}, nil
	}
	if string(ev.Event) == "reset" {
		// r3labs stamps the previous id on this id-less event: ignore ev.ID.
		cursor, err := parseResetCursor(ev.Data)
		if err != nil {
			return false, nil, err
		}
		s.last = cursor
		return true, s.handle(Message{Reset: &Reset{Cursor: cursor}}), nil
	}
	e := new(herald.Event)
	if err := json.Unmarshal(ev.Data, e); err != nil {
		return false, nil, fmt.Errorf("stream: malformed event (sse id %q): %w", ev.ID, err)
	}
	if s.last.Epoch != "" && e.Epoch != s.last.Epoch {
		// Another history without the server's reset: the seqs cannot be
		// compared, so the handler must refetch, as for a reset.
		s.last = herald.Cursor{Epoch: e.Epoch, Seq: e.Seq - 1}
		if err := s.handle(Message{Reset: &Reset{Cursor: s.last}}); err != nil {
			return true, err, nil
		}
	}
	if e.Seq <= s.last.Seq {
		s.dropReplayed(e) // replayed or out of order: already delivered
		return false, nil, nil
	}
	s.last = e.Cursor()
	return true, s.handle(Message{Event: e}), nil
}

// advances reports whether an id-only block's cursor c moves the client's
// position forward: same epoch and a higher seq, or the first epoch the
// client learns (it had none, or a bare seq the server took as current).
func (s *subscription) advances(c herald.Cursor) bool {
	if s.last.Epoch == "" {
		return c.Seq >= s.last.Seq && (c.Epoch != "" || c.Seq > s.last.Seq)
	}
	return c.Epoch == s.last.Epoch && c.Seq > s.last.Seq
}

func parseResetCursor(data []byte) (herald.Cursor, error) {
	var r struct {
		Cursor json.RawMessage `json:"cursor"` // a string; a bare number from older servers
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return herald.Cursor{}, fmt.Errorf("stream: malformed reset event: %w", err)
	}
	c, err := herald.ParseCursor(strings.Trim(string(r.Cursor), `"`))
	if err != nil {
		return herald.Cursor{}, fmt.Errorf("stream: malformed reset cursor %q", r.Cursor)
	}
	return c, nil
}

// checkResponse accepts 200 text/event-stream. Anything else closes the body
// (r3labs does not when a validator fails) and returns an error: *HTTPError
// for a non-200 status.
func checkResponse(resp *http.Response) error {
	if resp.StatusCode == http.StatusOK {
		mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		if mt == "text/event-stream" {
			return nil
		}
		resp.Body.Close()
		return fmt.Errorf("stream: response Content-Type %q is not text/event-stream", resp.Header.Get("Content-Type"))
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	he := &HTTPError{Status: resp.StatusCode, retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"))}
	var wire struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &wire) == nil && (wire.Error.Code != "" || wire.Error.Message != "") {
		he.Code, he.Message = wire.Error.Code, wire.Error.Message
	} else {
		he.Message = strings.TrimSpace(string(body))
		if len(he.Message) > 200 {
			he.Message = he.Message[:200] + "…"
		}
		if he.Message == "" {
			he.Message = http.StatusText(resp.StatusCode)
		}
	}
	return he
}

// parseRetryAfter reads delay-seconds or an HTTP date; 0 if absent or invalid.
func parseRetryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, 24*3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

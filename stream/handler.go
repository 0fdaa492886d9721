// Package stream is herald's server-sent-events endpoint. It serves the
// Subscribe contract (herald.Subscriber) as SSE frames; the Go client that
// reads them is package client.
//
// The handler is herald's own rather than r3labs/sse/v2's server, which
// cannot replay from an external store to one subscriber, rewrites ids, and
// lets one stalled subscriber block a whole stream.
package stream

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/herald-dev/herald"
)

// Feed is what the handler needs: the Subscribe contract, whose
// guarantees (no gap, no duplicate, commit order, reset) are the stream's.
type Feed = herald.Subscriber

// Request is a validated, authorised subscription request.
type Request struct {
	Channels []string
	// Cursor is where the client is; an empty Epoch (a bare decimal from
	// an older client) means the current epoch.
	Cursor    herald.Cursor
	HasCursor bool
	// Expires, if set, is when the client's token expires: the stream ends
	// then and the client renews and resumes by cursor.
	Expires time.Time
	// PlainMessages sends every notice as the default "message" event (no
	// event: line), for EventSource code that cannot know the types in
	// advance. The type is inside data either way.
	PlainMessages bool
	// Revoked, if set, ends the stream with a "token_revoked" revoked
	// frame when it is closed.
	Revoked <-chan struct{}
	// Recheck, if set, is asked every RecheckEvery whether the grant still
	// holds; a non-nil answer ends the stream with that revoked frame. It
	// runs beside the stream, so a slow answer delays no delivery.
	Recheck      func(ctx context.Context) *herald.Revocation
	RecheckEvery time.Duration
}

// Hooks observe the handler for metrics; each may be nil.
type Hooks struct {
	Open      func() (close func())
	Delivered func(n int, events []*herald.Event)
	Reset     func()
	Evicted   func()
}

// Handler serves GET /v1/stream.
type Handler struct {
	Feed      Feed
	Heartbeat time.Duration // ": ping" interval (default 15 s)
	Retry     time.Duration // reconnect delay told to clients (default 2 s)
	// MaxLifetime, if set, ends streams after a jittered lifetime in
	// [0.75, 1] × MaxLifetime so a fleet does not reconnect at once.
	MaxLifetime time.Duration
	// WriteTimeout bounds each write; a client that does not read within
	// it is dropped and resumes by cursor (default 10 s).
	WriteTimeout time.Duration
	// Stop is closed at shutdown: streams tell clients when to come back
	// and end.
	Stop  <-chan struct{}
	Log   *slog.Logger
	Hooks Hooks

	detached streamCount
}

const takeBatch = 256

// Serve streams req to w. Over HTTP/1.x the stream takes the connection
// over from net/http and Serve returns at once while it goes on (detach.go);
// otherwise Serve returns when the stream ends. Either way done, if not nil,
// runs exactly once: when the stream has ended, or before Serve returns an
// error. Serve returns an error only when nothing has been written yet, so
// the caller can answer with a JSON error instead.
func (h *Handler) Serve(w http.ResponseWriter, r *http.Request, req Request, done func()) error {
	if done == nil {
		done = func() {}
	}
	sub, err := h.Feed.SubscribeAt(r.Context(), req.Channels, req.Cursor, req.HasCursor)
	if err != nil {
		done()
		return err
	}
	setHeaders(w.Header())
	if d, ok := detach(w, r); ok {
		h.startDetached(d, sub, req, done)
		return nil
	}
	defer done()
	rc := http.NewResponseController(w)
	// Streams outlive any server-wide write timeout; each write gets its
	// own deadline instead.
	_ = rc.SetWriteDeadline(time.Time{})
	w.Header().Set("Connection", "keep-alive")
	w.WriteHeader(http.StatusOK)
	h.run(r.Context(), sub, h.newWriter(&responseSink{w: w, rc: rc}, req), req)
	return nil
}

func setHeaders(hdr http.Header) {
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no")
}

func (h *Handler) newWriter(out sink, req Request) *sseWriter {
	return &sseWriter{out: out, room: out.room(), timeout: durOr(h.WriteTimeout, 10*time.Second), plain: req.PlainMessages}
}

// run streams sub through sw until the stream ends, then closes sub.
func (h *Handler) run(ctx context.Context, sub herald.Subscription, sw *sseWriter, req Request) {
	defer sub.Close()
	if h.Hooks.Open != nil {
		defer h.Hooks.Open()()
	}
	// The opening block: the retry hint and the position the stream
	// starts from. A client that came without a cursor gets one before
	// any notice, so if the stream breaks now it resumes from here instead
	// of starting live again and missing what was committed meanwhile.
	sw.epoch = sub.Epoch()
	sw.retryOpening(durOr(h.Retry, 2*time.Second), sub)
	if sw.flush() != nil {
		return
	}
	// Slow consumers are never waited on: once the
	// feed evicts this subscriber, a write blocked on it is cut now rather
	// than at its deadline, so the connection and its buffers go at once.
	// finish (deferred) makes a late callback a no-op: once run returns,
	// the sink is no longer the callback's to touch (a ResponseWriter is
	// dead after its handler; a detached connection is being closed).
	defer sw.finish()
	sub.OnEnd(func() {
		if errors.Is(sub.Err(), herald.ErrSlow) {
			sw.abort()
		}
	})

	every := durOr(h.Heartbeat, 15*time.Second)
	heartbeat := time.NewTimer(every)
	defer heartbeat.Stop()
	// The heartbeat is due every after the last write; rather than reset
	// the timer on every write (a cost per delivery), writes note the
	// time and the timer re-arms for the rest when it fires early.
	var lifetime, expiry <-chan time.Time
	if h.MaxLifetime > 0 {
		t := time.NewTimer(jitter(h.MaxLifetime, 0.75))
		defer t.Stop()
		lifetime = t.C
	}
	if !req.Expires.IsZero() {
		t := time.NewTimer(time.Until(req.Expires))
		defer t.Stop()
		expiry = t.C
	}
	rctx, stopRecheck := context.WithCancel(ctx)
	defer stopRecheck()
	recheck := rechecker(rctx, req)

	// From here on, live events may also be written by the hub's
	// dispatching goroutine (inline.go); this goroutine holds sw.wmu
	// whenever it is not waiting.
	sw.wmu.Lock()
	defer sw.wmu.Unlock()
	defer func() { sw.stopped = true }() // runs first: wmu still held
	h.deliverInline(sub, sw)
	for {
		sw.wmu.Unlock()
		var (
			fired   event
			revoked herald.Revocation
		)
		select {
		case <-sub.Ready():
			fired = evReady
		case <-sub.Done():
			fired = evDone
		case <-heartbeat.C:
			fired = evHeartbeat
		case <-expiry:
			fired = evExpired
		case <-req.Revoked:
			fired = evRevoked
		case revoked = <-recheck:
			fired = evRechecked
		case <-lifetime:
			fired = evLifetime
		case <-h.Stop:
			fired = evStop
		case <-ctx.Done():
			fired = evGone
		}
		sw.wmu.Lock()
		switch fired {
		case evReady:
			if err := h.drain(ctx, sub, sw); err != nil {
				h.ended(sub, err)
				return
			}
		case evDone:
			// Deliver what is pending, then end; the client resumes.
			if err := h.drain(ctx, sub, sw); err != nil {
				h.ended(sub, err)
			}
			return
		case evHeartbeat:
			if rest := every - time.Since(time.Unix(0, sw.lastWrite.Load())); rest > every/20 {
				heartbeat.Reset(rest)
				continue
			}
			// Take refreshes the covered position for quiet channels.
			if err := h.drain(ctx, sub, sw); err != nil {
				h.ended(sub, err)
				return
			}
			sw.ping()
			if sw.flush() != nil {
				return
			}
			heartbeat.Reset(every)
		case evExpired:
			sw.comment("token expired")
			sw.flush()
			return
		case evRevoked:
			sw.revoked(tokenRevoked)
			sw.flush()
			return
		case evRechecked:
			sw.revoked(revoked)
			sw.flush()
			return
		case evLifetime, evGone:
			return
		case evStop:
			// Spread the fleet's reconnects over a few seconds.
			sw.retry(jitter(5*time.Second, 0.2))
			sw.flush()
			return
		}
	}
}

// event is what woke a stream's goroutine.
type event int

const (
	evReady event = iota
	evDone
	evHeartbeat
	evExpired
	evRevoked
	evRechecked
	evLifetime
	evStop
	evGone
)

// drain writes everything Take has, then flushes once.
func (h *Handler) drain(ctx context.Context, sub herald.Subscription, sw *sseWriter) error {
	for {
		b, err := sub.Take(ctx, takeBatch)
		if b.Reset != nil {
			if h.Hooks.Reset != nil {
				h.Hooks.Reset()
			}
			sw.reset(b.Reset.Head)
		}
		for _, ev := range b.Events {
			sw.event(ev)
		}
		if len(b.Events) > 0 && h.Hooks.Delivered != nil {
			h.Hooks.Delivered(len(b.Events), b.Events)
		}
		if b.Cursor > sw.covered {
			sw.covered = b.Cursor
		}
		if err != nil {
			sw.flush()
			return err
		}
		if ferr := sw.flush(); ferr != nil {
			return ferr
		}
		if len(b.Events) == 0 && b.Reset == nil {
			return nil
		}
	}
}

func (h *Handler) recoverPanic() {
	if v := recover(); v != nil {
		h.logPanic(v)
	}
}

func (h *Handler) logPanic(v any) {
	if h.Log != nil {
		h.Log.Error("stream panicked", "panic", v, "stack", string(debug.Stack()))
	}
}

func (h *Handler) ended(sub herald.Subscription, err error) {
	// An evicted stream's last write usually fails on the cut rather than
	// returning ErrSlow: the subscription says why it ended.
	if (errors.Is(err, herald.ErrSlow) || errors.Is(sub.Err(), herald.ErrSlow)) && h.Hooks.Evicted != nil {
		h.Hooks.Evicted()
	}
	if h.Log != nil && !errors.Is(err, herald.ErrClosed) {
		h.Log.Debug("stream ended", "reason", err)
	}
}

func durOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// jitter returns a duration in [lo×d, d].
func jitter(d time.Duration, lo float64) time.Duration {
	return time.Duration(float64(d) * (lo + (1-lo)*rand.Float64()))
}

// Package longpoll is herald's long-poll endpoint, for clients that cannot
// keep a stream open. It rides on the same herald.Subscription as the SSE
// stream, so it has the same guarantees: every event after the cursor, in
// order, once. A waiting poll costs a parked request and no query: one
// feed wake-up serves all of them.
package longpoll

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/herald-dev/herald"
)

// Feed is what the handler needs: the Subscribe contract, whose
// guarantees (no gap, no duplicate, commit order, reset) are the poll's,
// and the head for a poll without a cursor.
type Feed interface {
	herald.Subscriber
	Position() herald.Cursor
}

// Request is a validated, authorised poll.
type Request struct {
	Channels []string
	// Cursor is where the client is; an empty Epoch (a bare decimal from
	// an older client) means the current epoch.
	Cursor    herald.Cursor
	HasCursor bool
	Timeout   time.Duration
	// Revoked, if set, is closed when the poll's grant is taken back (its
	// token revoked): a waiting poll then answers ErrRevoked at once, and
	// hands out nothing more.
	Revoked <-chan struct{}
}

// ErrRevoked ends a poll whose grant was taken back while it waited; the
// caller answers it as the revocation (401 token_revoked).
var ErrRevoked = errors.New("longpoll: grant revoked while the poll waited")

// Hooks observe the handler for metrics; each may be nil.
type Hooks struct {
	Waiting   func() (done func())
	Delivered func(n int, events []*herald.Event)
	Reset     func()
}

// Handler serves GET /v1/poll.
type Handler struct {
	Feed Feed
	// MaxEvents caps one response (default 500); the cursor lets the
	// client continue with the next poll.
	MaxEvents int
	// Stop is closed at shutdown: waiting polls answer at once.
	Stop  <-chan struct{}
	Hooks Hooks
}

// Serve answers one poll. Errors come back unwritten for the caller's
// error table (*herald.ResetError among them).
func (h *Handler) Serve(w http.ResponseWriter, r *http.Request, req Request) error {
	ctx := r.Context()
	if !req.HasCursor {
		// No cursor: where to start, at once.
		write(w, nil, h.Feed.Position())
		return nil
	}
	sub, err := h.Feed.SubscribeAt(ctx, req.Channels, req.Cursor, true)
	if err != nil {
		return err
	}
	defer sub.Close()
	limit := h.MaxEvents
	if limit <= 0 {
		limit = 500
	}
	timer := time.NewTimer(req.Timeout)
	defer timer.Stop()
	var done func()
	defer func() {
		if done != nil {
			done()
		}
	}()
	epoch := sub.Epoch()
	at := func(seq int64) herald.Cursor { return herald.Cursor{Epoch: epoch, Seq: seq} }
	cursor := req.Cursor.Seq
	for {
		b, err := sub.Take(ctx, limit)
		if b.Reset != nil {
			if h.Hooks.Reset != nil {
				h.Hooks.Reset()
			}
			return b.Reset
		}
		if b.Cursor > cursor {
			cursor = b.Cursor
		}
		if len(b.Events) > 0 {
			if revoked(req.Revoked) {
				return ErrRevoked
			}
			if h.Hooks.Delivered != nil {
				h.Hooks.Delivered(len(b.Events), b.Events)
			}
			write(w, b.Events, at(cursor))
			return nil
		}
		if err != nil {
			select {
			case <-sub.Done():
				// Evicted or shutting down with nothing to hand out:
				// answer with what we have; the client polls again.
				write(w, nil, at(cursor))
				return nil
			default:
				// The backlog read failed (database away, client gone):
				// the caller's error table answers (503, Retry-After), so
				// the client does not take an outage for "no events".
				return err
			}
		}
		if done == nil && h.Hooks.Waiting != nil {
			done = h.Hooks.Waiting()
		}
		select {
		case <-sub.Ready():
		case <-sub.Done():
		case <-req.Revoked:
			return ErrRevoked
		case <-timer.C:
			b, _ := sub.Take(ctx, limit)
			if revoked(req.Revoked) {
				return ErrRevoked
			}
			write(w, b.Events, at(max(cursor, b.Cursor)))
			return nil
		case <-h.Stop:
			write(w, nil, at(cursor))
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// revoked reports whether ch (nil: never) is closed.
func revoked(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// write sends {"events":[...],"cursor":"N"}, built from each event's
// pre-encoded JSON.
func write(w http.ResponseWriter, events []*herald.Event, cursor herald.Cursor) {
	n := 32
	for _, ev := range events {
		n += len(ev.JSON()) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"events":[`...)
	for i, ev := range events {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, ev.JSON()...)
	}
	b = append(b, `],"cursor":"`...)
	b = cursor.Append(b)
	b = append(b, "\"}\n"...)
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

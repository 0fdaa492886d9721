package herald

import (
	"context"
	"errors"
)

// Subscriber is the Subscribe contract: what the SSE stream and long-poll
// rely on from the feed (hub.Hub in memory, store.Feed on Postgres), so
// both transports make the same promises. The contract, per subscription:
//
//   - No gap: every event committed to the log on the subscription's
//     channels with a seq after the cursor is handed out (the backlog from
//     memory or the log, then live events), unless a reset says otherwise.
//   - No duplicate: each seq is handed out at most once.
//   - Commit order: events come in seq order, which is commit order across
//     all channels.
//   - Reset when the cursor cannot be served: its history was dropped by
//     retention, it is ahead of the log, or it belongs to another epoch
//     (the database was restored or promoted). Then the first batch carries
//     a *ResetError with the head to continue from, and no events before it.
//   - A subscription that cannot keep these promises any more ends instead
//     (ErrSlow, ErrGap, ErrEpochChanged, ErrStopped): the client resumes
//     from its cursor and gets the events or a reset.
//
// A cursor with an empty Epoch (a bare decimal from an older client) is
// taken as the current epoch. hasCursor false subscribes live from the head.
type Subscriber interface {
	SubscribeAt(ctx context.Context, channels []string, cursor Cursor, hasCursor bool) (Subscription, error)
}

// Subscription is one subscriber's view of the log under the Subscriber
// contract. Take, Opening and Epoch belong to one consumer goroutine; the
// rest may be called from any.
type Subscription interface {
	// Take hands out up to max events after the last one handed out,
	// without waiting. An empty batch with a nil error means nothing right
	// now: wait on Ready. Once the subscription has ended and nothing is
	// left, Take returns Err.
	Take(ctx context.Context, max int) (Batch, error)
	// Ready receives a value when Take may have something.
	Ready() <-chan struct{}
	// Done is closed when the subscription has ended; Err says why.
	Done() <-chan struct{}
	Err() error
	// Epoch is the history every position of this subscription is in.
	Epoch() string
	// Opening is where the subscription starts: the cursor it was given,
	// or the head when it came without one; ok is false when the first
	// batch will be a reset (which carries its own position).
	Opening() (c Cursor, ok bool)
	// OnEnd runs f once when the subscription ends (at once if it has
	// already), on the goroutine that ends it but never under the feed's
	// lock. f must be quick: it delays whoever ended the subscription.
	OnEnd(f func())
	// Close unregisters the subscription.
	Close()
}

// Batch is what Take hands out.
type Batch struct {
	Events []*Event
	// Cursor is the seq covered (in the subscription's epoch): every event
	// on the subscription's channels up to it has been handed out. It can
	// be past the last event's seq when other channels moved the log.
	Cursor int64
	// Reset, if set, means the history after the subscriber's position
	// cannot be served; it continues from Reset.Head (and Cursor is its
	// seq). The client must refetch its state.
	Reset *ResetError
}

// ResetError is herald's one shape of "reset": the history after a cursor
// cannot be served (retention dropped it, the cursor is ahead of the log,
// or it belongs to another epoch), so the client refetches its state and
// continues from Head. The stream sends it as an "event: reset" frame,
// long-poll and history as 410 {"error":{"code":"reset"},"cursor":Head}.
type ResetError struct {
	Head Cursor
	// Reason, if set, replaces the default explanation in the message.
	Reason string
}

// defaultResetReason is the message's explanation when Reason is empty.
const defaultResetReason = "the history after this cursor is no longer retained, or is another history than the database's current one (restored or promoted)"

func (e *ResetError) Error() string {
	why := e.Reason
	if why == "" {
		why = defaultResetReason
	}
	return why + "; refetch your state and continue from cursor " + e.Head.String()
}

// Errors that end a subscription; the client resumes by cursor.
var (
	// ErrClosed: the subscription was closed by its owner.
	ErrClosed = errors.New("subscription closed")
	// ErrSlow: the subscriber overflowed its queue and did not come back
	// for the overflow in time (a burst alone is caught up from the log).
	ErrSlow = errors.New("subscriber too slow: evicted, resume from your cursor")
	// ErrStopped: the process is shutting down.
	ErrStopped = errors.New("server shutting down: resume from your cursor")
	// ErrGap: the feed was away longer than the retained history; it
	// cannot vouch for what this subscriber missed.
	ErrGap = errors.New("feed lost history: reconnect to get a reset")
	// ErrEpochChanged: history forked (a new epoch, or the head went back
	// within one): the subscriber's position may name events that no
	// longer exist; it reconnects with its cursor and gets a reset.
	ErrEpochChanged = errors.New("history forked (database restored or promoted): reconnect to get a reset")
)

// Package hub is herald's in-memory fan-out: the feed's position, the
// subscriptions, the ring of recent events and the dispatch of each event
// to the subscribers of its channel. It keeps the herald.Subscriber
// contract (no gap, no duplicate, commit order, reset).
//
// The hub does no I/O of its own. Whoever follows the log (store's LISTEN
// loop) pushes events in with Dispatch and history changes with Fork;
// replays the ring cannot serve are read through the small Log interface.
// So the hub's races (overflow, eviction, resets, forks) are tested with an
// in-memory Log, without Postgres.
//
// Nothing outside the hub is called while its lock is held: hooks and the
// subscriptions' OnEnd callbacks are collected under the lock and run after
// it is released, so a slow metric or a stream's abort never holds up
// dispatch, and a callback may call back into the hub.
package hub

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-dev/herald"
)

// Log is what the hub reads from the event log: the replays its ring cannot
// serve, and the log's position when a cursor is ahead of the hub or in an
// epoch the hub has not seen yet. store.DB implements it on Postgres.
type Log interface {
	// After returns up to limit events on channels with cursor < seq <=
	// upto, in seq order (upto <= 0: no bound), with the epoch, floor and
	// head of the same snapshot. When events right after cursor are no
	// longer retained it returns the page and a *herald.ResetError.
	After(ctx context.Context, cursor int64, channels []string, upto int64, limit int) (Page, error)
	// State returns the log's current epoch, head and floor.
	State(ctx context.Context) (State, error)
}

// Page is a consistent read of the log: the events and, from the same
// snapshot, the epoch, the retained floor and the head.
type Page struct {
	Events []*herald.Event
	Epoch  string // the history Floor, Head and the events belong to
	Floor  int64  // lowest retained seq
	Head   int64  // highest sequenced seq
}

// State is the log's position.
type State struct {
	Epoch string // the current epoch
	Head  int64  // highest sequenced seq
	Floor int64  // lowest retained seq
}

// Options tunes the hub; zero values take the defaults.
type Options struct {
	// RingSize is how many recent events (all channels) are kept in memory
	// for replays (default 16384).
	RingSize int
	// MaxPending is how many undelivered events a subscriber may queue
	// (default 4096). Beyond it the queue is dropped and the subscriber
	// re-reads from the ring or the log: a burst costs no eviction.
	MaxPending int
	// StallTimeout evicts a subscriber that overflowed and has not come
	// back for its events within it while more arrive (default 2 s).
	StallTimeout time.Duration
	// Hooks for metrics; each may be nil. They run outside the hub's lock.
	OnEvict    func()
	OnDispatch func(events []*herald.Event, deliveries int)
	// OnReplay reports a backlog read for a subscriber: from the ring
	// (fromRing) or the log, and how many events it yielded.
	OnReplay func(fromRing bool, events int)
}

// Hub is one process's in-memory view of the event log and its
// subscribers.
type Hub struct {
	log  Log
	opts Options

	mu      sync.RWMutex
	ring    *ring
	subs    map[string]map[*Subscription]struct{}
	stopped bool
	epoch   string        // the history head belongs to; changes only under mu
	forked  chan struct{} // closed (and replaced) when epoch changes

	dispatches int64 // Dispatch calls so far, under mu: marks Subscription.called

	head      atomic.Int64  // every event <= head has been pushed to subscribers
	floor     atomic.Int64  // lowest retained seq, as of the last read
	ready     chan struct{} // closed once the position is known
	readyOnce sync.Once

	now func() time.Time // the clock of StallTimeout; tests set their own
}

// New returns a hub reading replays from log. It serves subscriptions once
// Start has told it where the log is.
func New(log Log, opts Options) *Hub {
	if opts.RingSize <= 0 {
		opts.RingSize = 16384
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = 4096
	}
	if opts.StallTimeout <= 0 {
		opts.StallTimeout = 2 * time.Second
	}
	return &Hub{
		log:    log,
		opts:   opts,
		ring:   newRing(opts.RingSize),
		subs:   make(map[string]map[*Subscription]struct{}),
		ready:  make(chan struct{}),
		forked: make(chan struct{}),
		now:    time.Now,
	}
}

// Start sets the position the hub serves from, the log's epoch and head,
// and opens it to subscribers. Only the first call counts: after it, the
// position moves by Dispatch and Fork alone.
func (h *Hub) Start(epoch string, head int64) {
	h.readyOnce.Do(func() {
		h.mu.Lock()
		h.epoch = epoch
		h.head.Store(head)
		h.mu.Unlock()
		close(h.ready)
	})
}

// Ready is closed once Start has run.
func (h *Hub) Ready() <-chan struct{} { return h.ready }

// Head is the highest seq the hub has delivered to subscribers.
func (h *Hub) Head() int64 { return h.head.Load() }

// Position is the hub's head with its epoch, read together.
func (h *Hub) Position() herald.Cursor {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return herald.Cursor{Epoch: h.epoch, Seq: h.head.Load()}
}

// Epoch is the history the hub is serving.
func (h *Hub) Epoch() string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.epoch
}

// SetFloor records the log's lowest retained seq, so replays from the ring
// respect retention: below the floor the answer is a reset, as the log
// would give, even while the ring still remembers.
func (h *Hub) SetFloor(floor int64) { h.floor.Store(floor) }

// Floor is the lowest retained seq as last set.
func (h *Hub) Floor() int64 { return h.floor.Load() }

var (
	_ herald.Subscriber   = (*Hub)(nil)
	_ herald.Subscription = (*Subscription)(nil)
)

// runAll runs callbacks collected under the lock, after it is released.
func runAll(fs []func()) {
	for _, f := range fs {
		f()
	}
}

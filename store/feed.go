package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-dev/herald"
)

// FeedOptions tunes the feed; zero values take the defaults.
type FeedOptions struct {
	// RingSize is how many recent events (all channels) are kept in memory
	// for replays (default 16384).
	RingSize int
	// MaxPending is how many undelivered events a subscriber may queue
	// (default 4096). Beyond it the queue is dropped and the subscriber
	// re-reads from the ring or the database: a burst costs no eviction.
	MaxPending int
	// StallTimeout evicts a subscriber that overflowed and has not come
	// back for its events within it while more arrive (default 2 s).
	StallTimeout time.Duration
	// Poll is the safety-net interval: the feed reads the log this often
	// even without a NOTIFY (default 1 s).
	Poll time.Duration
	// Fetch is how many rows one read of the log takes (default 1000).
	Fetch int
	// Hooks for metrics; each may be nil.
	OnReconnect func()
	OnEvict     func()
	OnDispatch  func(events []*herald.Event, deliveries int)
	// OnReplay reports a backlog read for a subscriber: from the ring
	// (fromRing) or the database, and how many events it yielded.
	OnReplay func(fromRing bool, events int)
}

// Feed is one process's view of the event log: one dedicated LISTEN
// connection, one query per wake-up whatever the number of subscribers, and
// in-memory fan-out.
type Feed struct {
	db   *DB
	opts FeedOptions

	mu      sync.RWMutex
	ring    *ring
	subs    map[string]map[*Subscription]struct{}
	stopped bool
	epoch   string        // the history head belongs to; changes only under mu
	forked  chan struct{} // closed (and replaced) when epoch changes

	head      atomic.Int64 // every event <= head has been pushed to subscribers
	floor     atomic.Int64 // lowest retained seq, as of the last read
	connected atomic.Bool
	ready     chan struct{} // closed once head is known
	readyOnce sync.Once

	revocations *Revocations // kept current on the LISTEN connection
}

// NewFeed returns a feed on db; call Run to start it.
func (db *DB) NewFeed(opts FeedOptions) *Feed {
	if opts.RingSize <= 0 {
		opts.RingSize = 16384
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = 4096
	}
	if opts.StallTimeout <= 0 {
		opts.StallTimeout = 2 * time.Second
	}
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if opts.Fetch <= 0 {
		opts.Fetch = 1000
	}
	return &Feed{
		db:     db,
		opts:   opts,
		ring:   newRing(opts.RingSize),
		subs:   make(map[string]map[*Subscription]struct{}),
		ready:  make(chan struct{}),
		forked: make(chan struct{}),

		revocations: newRevocations(),
	}
}

// Revocations is this replica's copy of the token revocations, which the
// feed keeps current from NOTIFY herald_revocations.
func (f *Feed) Revocations() *Revocations { return f.revocations }

// Head is the highest seq this feed has delivered to subscribers.
func (f *Feed) Head() int64 { return f.head.Load() }

// Position is the feed's head with its epoch, read together.
func (f *Feed) Position() herald.Cursor {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return herald.Cursor{Epoch: f.epoch, Seq: f.head.Load()}
}

// Epoch is the history this feed is serving.
func (f *Feed) Epoch() string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.epoch
}

// Connected reports whether the LISTEN connection is up and caught up.
func (f *Feed) Connected() bool { return f.connected.Load() }

// Ready is closed once the feed knows the head (first successful connect).
func (f *Feed) Ready() <-chan struct{} { return f.ready }

// Run keeps the feed connected until ctx ends, then closes every
// subscription with herald.ErrStopped.
func (f *Feed) Run(ctx context.Context) error {
	defer f.stop()
	bo := newBackoff(50*time.Millisecond, 5*time.Second)
	for {
		err := f.session(ctx, bo)
		f.connected.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		f.db.log.Warn("feed: connection lost; reconnecting", "err", err, "in", bo.peek())
		if f.opts.OnReconnect != nil {
			f.opts.OnReconnect()
		}
		if !bo.sleep(ctx) {
			return nil
		}
	}
}

// session is one LISTEN connection's life: LISTEN first, then catch up from
// the head, so nothing committed in between is missed; then one read per
// NOTIFY or per Poll interval.
func (f *Feed) session(ctx context.Context, bo *backoff) error {
	conn, err := f.db.connect(ctx)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, `LISTEN herald_log; LISTEN `+revocationsChannel); err != nil {
		return fmt.Errorf("listen %q: %w", "herald_log", err)
	}
	if err := f.revocations.load(ctx, conn); err != nil {
		return err
	}
	select {
	case <-f.ready:
	default:
		var head int64
		var epoch string
		if err := conn.QueryRow(ctx, `SELECT epoch, last_seq FROM herald.sequencer_state`).Scan(&epoch, &head); err != nil {
			return fmt.Errorf("read head: %w", err)
		}
		f.mu.Lock()
		f.epoch = epoch
		f.head.Store(head)
		f.mu.Unlock()
		f.readyOnce.Do(func() { close(f.ready) })
	}
	if err := f.catchUp(ctx, conn); err != nil {
		return err
	}
	f.connected.Store(true)
	bo.reset()
	for {
		wctx, cancel := context.WithTimeout(ctx, f.opts.Poll)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil && !errors.Is(err, context.DeadlineExceeded) && !pgTimeout(err):
			return fmt.Errorf("wait for notification: %w", err)
		case n != nil && n.Channel == revocationsChannel:
			if err := f.revocations.apply(n.Payload); err != nil {
				f.db.log.Warn("feed: bad revocation notice", "err", err)
			}
			continue
		case n != nil:
			// The payload is the new head; skip the read if we have it.
			if c, perr := herald.ParseCursor(n.Payload); perr == nil && c.Seq <= f.head.Load() && c.Epoch == f.Epoch() {
				continue
			}
		}
		if err := f.catchUp(ctx, conn); err != nil {
			return err
		}
	}
}

func pgTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// catchUp reads everything after the head and dispatches it.
func (f *Feed) catchUp(ctx context.Context, conn *pgx.Conn) error {
	for {
		head := f.head.Load()
		cur := f.Epoch() // only this goroutine changes it
		f.db.logReads.Add(1)
		events := make([]*herald.Event, 0, 16)
		// The floor comes along so ring replays respect retention; the
		// epoch and the head so a fork of history is seen in the same read.
		rows, err := conn.Query(ctx, `
			SELECT s.epoch, s.last_seq, s.floor_seq, e.seq, e.channel, e.type, e.data, e.at
			FROM herald.sequencer_state s
			LEFT JOIN LATERAL (
				SELECT seq, channel, type, data, at FROM herald.event_log
				WHERE seq > $1 ORDER BY seq LIMIT $2
			) e ON true
			ORDER BY e.seq`, head, f.opts.Fetch)
		if err != nil {
			return fmt.Errorf("read log after %d: %w", head, err)
		}
		var (
			epoch   string
			dbHead  int64
			forkNow bool
		)
		for rows.Next() {
			var (
				floor        int64
				seq          *int64
				channel, typ *string
				data         []byte
				at           *time.Time
			)
			if err := rows.Scan(&epoch, &dbHead, &floor, &seq, &channel, &typ, &data, &at); err != nil {
				rows.Close()
				return fmt.Errorf("read log after %d: %w", head, err)
			}
			if epoch != cur || dbHead < head {
				forkNow = true
				continue
			}
			f.floor.Store(floor)
			if seq == nil {
				continue
			}
			e := &herald.Event{Epoch: epoch, Seq: *seq, Channel: *channel, Type: *typ, Data: data, At: *at}
			e.JSON() // encode once, before any subscriber sees it
			events = append(events, e)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read log after %d: %w", head, err)
		}
		if forkNow {
			f.fork(epoch, dbHead, head)
			continue
		}
		if len(events) == 0 {
			return nil
		}
		f.dispatch(events)
		if len(events) < f.opts.Fetch {
			return nil
		}
	}
}

package store

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-dev/herald"
	"github.com/herald-dev/herald/hub"
)

// FeedOptions tunes the feed; zero values take the defaults. RingSize,
// MaxPending, StallTimeout, OnEvict, OnDispatch and OnReplay are the hub's
// (hub.Options); Poll, Fetch and OnReconnect the LISTEN loop's.
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
	// Hooks for metrics; each may be nil. None runs under a lock.
	OnReconnect func()
	OnEvict     func()
	OnDispatch  func(events []*herald.Event, deliveries int)
	// OnReplay reports a backlog read for a subscriber: from the ring
	// (fromRing) or the database, and how many events it yielded.
	OnReplay func(fromRing bool, events int)
}

// hubOptions is the in-memory part of o.
func (o FeedOptions) hubOptions() hub.Options {
	return hub.Options{
		RingSize:     o.RingSize,
		MaxPending:   o.MaxPending,
		StallTimeout: o.StallTimeout,
		OnEvict:      o.OnEvict,
		OnDispatch:   o.OnDispatch,
		OnReplay:     o.OnReplay,
	}
}

// Feed is one process's view of the event log: one dedicated LISTEN
// connection and one query per wake-up whatever the number of subscribers,
// feeding the in-memory hub that fans events out. The Feed is the
// Postgres side (connect, LISTEN, read, reconnect); the hub holds the
// subscriptions, the ring and the dispatch.
type Feed struct {
	db   *DB
	opts FeedOptions
	hub  *hub.Hub

	connected   atomic.Bool
	revocations *Revocations // kept current on the LISTEN connection
}

var _ herald.Subscriber = (*Feed)(nil)

// NewFeed returns a feed on db; call Run to start it.
func (db *DB) NewFeed(opts FeedOptions) *Feed {
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if opts.Fetch <= 0 {
		opts.Fetch = 1000
	}
	return &Feed{
		db:          db,
		opts:        opts,
		hub:         hub.New(db, opts.hubOptions()),
		revocations: newRevocations(),
	}
}

// Revocations is this replica's copy of the token revocations, which the
// feed keeps current from NOTIFY herald_revocations.
func (f *Feed) Revocations() *Revocations { return f.revocations }

// Head is the highest seq this feed has delivered to subscribers.
func (f *Feed) Head() int64 { return f.hub.Head() }

// Position is the feed's head with its epoch, read together.
func (f *Feed) Position() herald.Cursor { return f.hub.Position() }

// Epoch is the history this feed is serving.
func (f *Feed) Epoch() string { return f.hub.Epoch() }

// Connected reports whether the LISTEN connection is up and caught up.
func (f *Feed) Connected() bool { return f.connected.Load() }

// Ready is closed once the feed knows the head (first successful connect).
func (f *Feed) Ready() <-chan struct{} { return f.hub.Ready() }

// SubscribeAt subscribes through the hub (hub.Hub.SubscribeAt): channels
// must be validated and deduplicated by the caller.
func (f *Feed) SubscribeAt(ctx context.Context, channels []string, cursor herald.Cursor, hasCursor bool) (herald.Subscription, error) {
	return f.hub.SubscribeAt(ctx, channels, cursor, hasCursor)
}

// Subscribe is SubscribeAt with a bare seq: taken as the current epoch.
func (f *Feed) Subscribe(ctx context.Context, channels []string, cursor int64, hasCursor bool) (herald.Subscription, error) {
	return f.hub.SubscribeAt(ctx, channels, herald.Cursor{Seq: cursor}, hasCursor)
}

// Run keeps the feed connected until ctx ends, then closes every
// subscription with herald.ErrStopped.
func (f *Feed) Run(ctx context.Context) error {
	defer f.hub.Stop()
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
	case <-f.hub.Ready():
	default:
		var head int64
		var epoch string
		if err := conn.QueryRow(ctx, `SELECT epoch, last_seq FROM herald.sequencer_state`).Scan(&epoch, &head); err != nil {
			return fmt.Errorf("read head: %w", err)
		}
		f.hub.Start(epoch, head)
	}
	if err := f.catchUp(ctx, conn); err != nil {
		return err
	}
	f.connected.Store(true)
	bo.reset()
	for {
		wctx, cancel := f.waitContext(ctx)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.Canceled):
			// The leader's look found the log moved without a notice, or
			// stopped looking: read it.
		case err != nil && !errors.Is(err, context.DeadlineExceeded) && !pgTimeout(err):
			return fmt.Errorf("wait for notification: %w", err)
		case n != nil && n.Channel == revocationsChannel:
			if err := f.revocations.apply(n.Payload); err != nil {
				f.db.log.Warn("feed: bad revocation notice", "err", err)
			}
			continue
		case n != nil:
			if f.takeNotice(n.Payload) {
				continue
			}
		case f.vouched():
			// The safety net's read, done by the leader (vouch).
			continue
		}
		if err := f.catchUp(ctx, conn); err != nil {
			return err
		}
	}
}

// takeNotice applies a herald_log notice without reading the log when it
// can: the head is one the hub has, or the notice carries the batch that
// follows the hub's head (logNotice). It reports false when the log must be
// read: a head the hub lacks with no usable batch, another epoch, or a
// payload it cannot parse.
func (f *Feed) takeNotice(payload string) bool {
	n, err := parseLogNotice(payload)
	if err != nil {
		f.db.log.Warn("feed: unreadable log notice; reading the log", "err", err)
		return false
	}
	head := f.hub.Head()
	if n.head.Epoch != f.hub.Epoch() {
		return false
	}
	if n.head.Seq <= head {
		return true
	}
	if len(n.events) == 0 || n.events[0].Seq != head+1 {
		return false
	}
	for _, e := range n.events {
		e.JSON() // encode once, before any subscriber sees it
	}
	f.hub.SetFloor(n.floor)
	f.hub.Dispatch(n.events)
	return true
}

// waitContext bounds one wait for a notice: by the safety net's poll, or,
// while this process's leader vouches for the hub's position, by its looks
// (vouch.watch), so an idle feed does not wake at all.
func (f *Feed) waitContext(ctx context.Context) (context.Context, context.CancelFunc) {
	head, floor := f.hub.Position(), f.hub.Floor()
	if !f.db.state.covers(head, floor, f.opts.Poll) {
		// The usual case under load: no context to build and throw away.
		return context.WithTimeout(ctx, f.opts.Poll)
	}
	wctx, cancel := context.WithCancel(ctx)
	stop, ok := f.db.state.watch(head, floor, f.opts.Poll, 2*f.opts.Poll, cancel)
	if !ok {
		cancel()
		return context.WithTimeout(ctx, f.opts.Poll)
	}
	return wctx, func() { stop(); cancel() }
}

// vouched reports whether this process's leader read the log's state
// within the last two polls and found it where the hub is, so the safety
// net's read would find nothing. Two polls, as the leader's look and this
// wait run on clocks of their own.
func (f *Feed) vouched() bool {
	return f.db.state.covers(f.hub.Position(), f.hub.Floor(), 2*f.opts.Poll)
}

func pgTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// catchUp reads everything after the hub's head and dispatches it to the
// hub, or moves the hub to a new history when the epoch changed or the
// head went back.
func (f *Feed) catchUp(ctx context.Context, conn *pgx.Conn) error {
	for {
		head := f.hub.Head()
		cur := f.hub.Epoch() // only this goroutine changes it
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
			floor   int64 // the same on every row: set on the hub once per read
			scanned bool
			forkNow bool
		)
		for rows.Next() {
			var (
				seq          *int64
				channel, typ *string
				data         []byte
				at           *time.Time
			)
			if err := rows.Scan(&epoch, &dbHead, &floor, &seq, &channel, &typ, &data, &at); err != nil {
				rows.Close()
				return fmt.Errorf("read log after %d: %w", head, err)
			}
			scanned = true
			if epoch != cur || dbHead < head {
				forkNow = true
				continue
			}
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
			old := f.hub.Fork(epoch, dbHead)
			f.db.log.Warn("feed: history forked; ending subscriptions", "epoch", old.Epoch, "head", old.Seq, "new_epoch", epoch, "new_head", dbHead)
			continue
		}
		if scanned {
			f.hub.SetFloor(floor)
		}
		if len(events) == 0 {
			return nil
		}
		if f.hub.Dispatch(events) {
			f.db.log.Warn("feed: gap in the log; evicting subscribers", "head", head, "next", events[0].Seq)
		}
		if len(events) < f.opts.Fetch {
			return nil
		}
	}
}

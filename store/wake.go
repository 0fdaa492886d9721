package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// wakeChannel is what the inbox trigger notifies while the sequencer sleeps.
const wakeChannel = "herald_wake"

// sleepAfter is how long a ticking sequencer goes without a row before it
// sleeps: a short lull in a steady flow should not cost a flag round trip
// (a setval commit and a pg_locks read). Time rather than a count of empty
// steps (three of the default tick), so a shorter --sequencer-tick does not
// make the sequencer doze off between the rows of a steady trickle.
const sleepAfter = 30 * time.Millisecond

// minGap is the shortest wait between ticking steps. Below it a step's own
// commit, with its WAL flush, becomes most of the database's work: a
// sequencer stepping back to back commits once per app commit and halved a
// single writer's throughput.
const minGap = time.Millisecond

// nextGap is the wait before the next ticking step, after one that
// sequenced n rows and followed a wait of gap; tick (--sequencer-tick) is
// the longest.
//
// It aims at about one row a step, for latency: a step's rows waited half
// its cycle on average, so a step carrying several says the wait is longer
// than the flow needs (halve it) and an empty one says it is shorter
// (double it). Commit→feed under a steady flow is so about half the time
// between two commits plus a step, down to minGap, and the sequencer never
// commits more often than rows arrive (an empty step is a read).
func nextGap(gap time.Duration, n int, tick time.Duration) time.Duration {
	switch {
	case n == 0:
		gap *= 2
	case n > 1:
		gap /= 2
	}
	return max(min(minGap, tick), min(tick, gap))
}

// watchFirst is the first re-check of writers that were in flight when the
// flag was set; each re-check doubles it, up to the safety net.
const watchFirst = 2 * time.Millisecond

// waker is the sequencer's sleep state. Asleep, the flag is 1 and every
// inbox INSERT notifies; awake, the sequencer ticks, gap apart, and the
// flag is 0, so app commits take no notification lock.
type waker struct {
	asleep  bool
	gap     time.Duration // the wait before the next ticking step (nextGap)
	flag    int           // the flag as last set; -1 unknown
	lastRow time.Time     // when a ticking step last sequenced rows
	watch   []string      // virtualtransaction of inbox writers in flight at falling asleep
	backoff time.Duration
	crowd   float64   // asleep: the recent share of crowded wake-ups (crowded)
	window  time.Time // ticking: when the current count of rows began (slowed)
	rows    int       // ticking: rows sequenced since window
	bulk    bool      // ticking: the last window's flow was bulk (slowed)
}

// crowdedShare is the share of recent wake-ups that must have found
// commits queued behind the last step before a sleeping sequencer starts
// ticking. One crowded wake-up is no sign: at 200 events/s a commit lands
// during a 1 ms step one time in five, and asleep each of them is
// sequenced within about a millisecond. A flow that keeps them queued is
// what the ticking is for: notifying commits take Postgres's notification
// lock one at a time through their WAL flush.
const crowdedShare = 0.5

// crowded records whether a wake-up found commits queued behind the last
// step and reports whether most recent ones did (an average over about
// the last eight).
func (w *waker) crowded(queued bool) bool {
	v := 0.0
	if queued {
		v = 1
	}
	w.crowd += (v - w.crowd) / 8
	return w.crowd > crowdedShare
}

// slowWindow and slowRows: a ticking sequencer that sequences fewer than
// slowRows rows in slowWindow (a flow under 100 rows a second) falls
// asleep, as it does after sleepAfter without a row. At that rate a notice
// per commit costs less than the empty steps a tick would make, and the
// notices wake the sequencer at once instead of after up to a tick. Far
// from the rate at which wake-ups become crowded, so the sequencer does
// not flip between the two.
//
// bulkRows in a slowWindow (a flow of 2,000 rows a second or more) is bulk:
// the sequencer then steps at the tick whatever nextGap says, for the
// app's commits. Every sequencer commit is a WAL flush competing with
// theirs: with steps a millisecond apart a single writer going flat out
// (about 3,000 commits/s here) kept 0.72 of its throughput alone, against
// 0.92 with steps at the 10 ms tick (BENCHMARKS.md, INSERT share). The rate
// is the flow's, not the steps', so batching does not move it and the
// sequencer does not flip between the two.
const (
	slowWindow = 100 * time.Millisecond
	slowRows   = 10
	bulkRows   = 200
)

// slowed counts a ticking step's n rows and reports whether the flow has
// slowed enough to sleep: no row for sleepAfter, or fewer than slowRows in
// the last slowWindow. At each window's end it also sets bulk.
func (w *waker) slowed(n int, now time.Time) bool {
	if n > 0 {
		w.lastRow = now
	}
	if n == 0 && now.Sub(w.lastRow) >= sleepAfter {
		return true
	}
	w.rows += n
	if now.Sub(w.window) < slowWindow {
		return false
	}
	slow := w.rows < slowRows
	w.bulk = w.rows >= bulkRows
	w.window, w.rows = now, 0
	return slow
}

// sequence steps until ctx ends or the connection fails, sleeping on the
// wake channel when there is nothing to do.
//
// Falling asleep races with writers: one whose INSERT read the flag just
// before it was set sends no notice. After setting the flag the sequencer
// therefore lists the inbox writers still in flight (they hold
// RowExclusiveLock on herald.events until they end), then looks at the
// inbox in a later statement. A writer that read the old flag either ended
// before the list, and then its rows are visible to the look (a
// transaction becomes visible before it releases its locks), or is on the
// list, which is re-checked with a doubling backoff until it has ended.
// Every writer after the flag notifies. The safety net covers the rest
// (a notice lost with a connection, say).
func (s *Sequencer) sequence(ctx context.Context, conn *pgx.Conn, t *tick) error {
	w := waker{flag: -1, lastRow: time.Now(), window: time.Now(), gap: s.opts.Interval}
	// Start ticking, with the flag a previous leader may have left set
	// cleared; the first empty steps put it to sleep.
	if err := w.setFlag(ctx, conn, 0); err != nil {
		return err
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		noticed, during := false, 0
		if w.asleep {
			// Notices pgx read while the last step ran: commits come
			// faster than steps.
			if during = drainNotices(conn); during > 0 {
				noticed = true
			} else {
				d := s.opts.SafetyNet
				if len(w.watch) > 0 {
					d = min(w.backoff, d)
					w.backoff *= 2
				}
				var err error
				if noticed, err = waitNotice(ctx, conn, d); err != nil {
					return err
				}
			}
			if len(w.watch) > 0 {
				var err error
				if w.watch, err = inboxWriters(ctx, conn, w.watch); err != nil {
					return err
				}
			}
		} else {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-timer.C:
			}
		}
		// Notices already here came from commits this step sees.
		pending := during + drainNotices(conn)
		if noticed && during == 0 {
			pending++
		}
		noticed = pending > 0
		if noticed {
			t.idle = false // a notice means rows: skip the look first
		}
		n, err := s.step(ctx, conn, t)
		if err != nil {
			return err
		}
		if s.lastErr.Load() != nil {
			s.lastErr.Store(nil)
		}
		switch {
		case w.asleep:
			// Commits faster than steps (most wake-ups find a notice that
			// came in while the last step ran, or several pending): tick
			// instead, and spare the app's commits the notification lock.
			if n > 0 && w.crowded(during > 0 || pending > 1) {
				if err := w.setFlag(ctx, conn, 0); err != nil {
					return err
				}
				// Commits came faster than a step: start at the shortest
				// wait, and let nextGap find the flow's.
				w.asleep, w.watch = false, nil
				w.lastRow, w.window, w.rows, w.bulk = time.Now(), time.Now(), 0, false
				w.gap = nextGap(0, n, s.opts.Interval)
				if s.opts.OnSleep != nil {
					s.opts.OnSleep(false)
				}
				timer.Reset(w.gap)
			}
		case w.slowed(n, time.Now()):
			if err := s.fallAsleep(ctx, conn, t, &w); err != nil {
				return err
			}
		default:
			// A step takes everything visible, so going again at once only
			// pays after a big batch (a backlog that built up while it ran).
			// After a small one it would commit, and fsync, once per app
			// commit: a single writer's throughput halved that way.
			if n >= backlogBatch {
				timer.Reset(0)
			} else {
				w.gap = nextGap(w.gap, n, s.opts.Interval)
				if w.bulk {
					w.gap = s.opts.Interval
				}
				timer.Reset(w.gap)
			}
		}
	}
}

// fallAsleep sets the flag, lists the writers in flight, and then steps
// once more for rows committed before the flag (see sequence).
func (s *Sequencer) fallAsleep(ctx context.Context, conn *pgx.Conn, t *tick, w *waker) error {
	if err := w.setFlag(ctx, conn, 1); err != nil {
		return err
	}
	writers, err := inboxWriters(ctx, conn, nil)
	if err != nil {
		return err
	}
	w.asleep, w.watch, w.backoff, w.crowd = true, writers, watchFirst, 0
	if s.opts.OnSleep != nil {
		s.opts.OnSleep(true)
	}
	t.idle = true
	_, err = s.step(ctx, conn, t)
	return err
}

// setFlag sets herald.sequencer_sleeping if it is not v already.
func (w *waker) setFlag(ctx context.Context, conn *pgx.Conn, v int) error {
	if w.flag == v {
		return nil
	}
	if _, err := conn.Exec(ctx, `SELECT setval('herald.sequencer_sleeping', $1)`, v); err != nil {
		return fmt.Errorf("set sleeping flag: %w", err)
	}
	w.flag = v
	return nil
}

// inboxWriters returns the virtual transaction ids of other sessions that
// hold RowExclusiveLock on the inbox (every INSERT takes it and keeps it to
// its transaction's end), limited to among when not nil. Prepared
// transactions (no pid) count.
func inboxWriters(ctx context.Context, conn *pgx.Conn, among []string) ([]string, error) {
	var got []string
	err := conn.QueryRow(ctx, `
		SELECT coalesce(array_agg(DISTINCT virtualtransaction), '{}')
		FROM pg_locks
		WHERE locktype = 'relation' AND mode = 'RowExclusiveLock'
		  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND relation = 'herald.events'::regclass
		  AND pid IS DISTINCT FROM pg_backend_pid()
		  AND ($1::text[] IS NULL OR virtualtransaction = ANY($1))`, among).Scan(&got)
	if err != nil {
		return nil, fmt.Errorf("list inbox writers: %w", err)
	}
	if len(got) == 0 {
		return nil, nil
	}
	return got, nil
}

// waitNotice waits up to d for a notice on conn; it reports whether one
// came.
func waitNotice(ctx context.Context, conn *pgx.Conn, d time.Duration) (bool, error) {
	wctx, cancel := context.WithTimeout(ctx, d)
	n, err := conn.WaitForNotification(wctx)
	cancel()
	switch {
	case ctx.Err() != nil:
		return false, ctx.Err()
	case err != nil && !errors.Is(err, context.DeadlineExceeded) && !pgTimeout(err):
		return false, fmt.Errorf("wait for notification: %w", err)
	}
	return n != nil, nil
}

// drainNotices discards the notices pgx has already read and returns how
// many there were; it does not wait.
func drainNotices(conn *pgx.Conn) int {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	got := 0
	for {
		n, _ := conn.WaitForNotification(done)
		if n == nil {
			return got
		}
		got++
	}
}

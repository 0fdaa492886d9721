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

// watchFirst is the first re-check of writers that were in flight when the
// flag was set; each re-check doubles it, up to the safety net.
const watchFirst = 2 * time.Millisecond

// waker is the sequencer's sleep state. Asleep, the flag is 1 and every
// inbox INSERT notifies; awake, the sequencer ticks every Interval and the
// flag is 0, so app commits take no notification lock.
type waker struct {
	asleep  bool
	flag    int       // the flag as last set; -1 unknown
	lastRow time.Time // when a ticking step last sequenced rows
	watch   []string  // virtualtransaction of inbox writers in flight at falling asleep
	backoff time.Duration
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
	w := waker{flag: -1, lastRow: time.Now()}
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
			// Commits faster than steps (a notice came in while the last
			// step ran, or several are pending): tick instead, and spare
			// the app's commits the notification lock.
			if n > 0 && (during > 0 || pending > 1) {
				if err := w.setFlag(ctx, conn, 0); err != nil {
					return err
				}
				w.asleep, w.lastRow, w.watch = false, time.Now(), nil
				if s.opts.OnSleep != nil {
					s.opts.OnSleep(false)
				}
				timer.Reset(s.opts.Interval)
			}
		case n == 0 && time.Since(w.lastRow) >= sleepAfter:
			if err := s.fallAsleep(ctx, conn, t, &w); err != nil {
				return err
			}
		default:
			if n > 0 {
				w.lastRow = time.Now()
			}
			// A step takes everything visible, so going again at once only
			// pays after a big batch (a backlog that built up while it ran).
			// After a small one it would commit, and fsync, once per app
			// commit: a single writer's throughput halved that way.
			if n >= backlogBatch {
				timer.Reset(0)
			} else {
				timer.Reset(s.opts.Interval)
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
	w.asleep, w.watch, w.backoff = true, writers, watchFirst
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

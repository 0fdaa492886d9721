package store

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/herald-dev/herald"
)

// leaderLockKey is the pg_try_advisory_lock key the sequencer leader holds
// ("herald" in ASCII). One leader per database, whatever the replica count.
const leaderLockKey = 0x68657261_6c64

// noticeRoom bounds the batch line of a herald_log notice: Postgres refuses
// payloads of 8000 bytes or more, and the head line before it takes at most
// 37 (a 16-character epoch, a dot, 19 digits and the newline).
const noticeRoom = 7900

// noticeRows is the most rows a notice spells out; a larger batch cannot
// fit (an event's line takes 70 bytes or more), so it is not encoded.
const noticeRows = 100

// backlogBatch is the batch size from which the sequencer steps again at
// once instead of after its interval.
const backlogBatch = 500

// DefaultSequencerTick is SequencerOptions.Interval's default: at 1,000
// events/s it batches ~10 rows a step. A shorter tick lowers commit→feed
// latency and costs a sequencer commit per step (docs/WAKE.md).
const DefaultSequencerTick = 10 * time.Millisecond

// SequencerOptions tunes the sequencer; zero values take the defaults.
type SequencerOptions struct {
	// Interval between steps while rows flow faster than notices are worth
	// (default DefaultSequencerTick). Otherwise the sequencer sleeps until an inbox
	// INSERT's notice wakes it, or for at most SafetyNet.
	Interval time.Duration
	// SafetyNet is the longest the sequencer sleeps without looking at the
	// inbox (default 1 s): a lost notice delays rows by at most this much.
	SafetyNet time.Duration
	// Standby is how long a non-leader waits before waiting for the lock
	// again when the server cut its wait short (a statement_timeout or
	// lock_timeout on herald's role; default 1 s). Otherwise a standby
	// waits in pg_advisory_lock and takes over as the leader's session
	// ends.
	Standby time.Duration
	// OnBatch, if set, is called after each step that sequenced rows.
	OnBatch func(rows int, head int64, took time.Duration)
	// OnSleep, if set, is called when the leader falls asleep (true) or
	// starts ticking (false).
	OnSleep func(asleep bool)
	// OnLeader, if set, is called when leadership is gained or lost.
	OnLeader func(leader bool)
	// Retention bounds the log; the zero value keeps everything.
	Retention Retention
	// OnRetention, if set, is called after the floor moved.
	OnRetention func(floor int64, droppedPartitions int)
}

// Sequencer copies inbox rows into the event log in commit order with a
// dense seq. It uses PgQ's snapshot-difference tick:
// each step takes the rows that became visible since the previous step's
// snapshot (xid >= xmax(prev) or xid in xip(prev), and visible now), numbers
// them by (xid, id) after last_seq, and stores the new snapshot, all in one
// statement (so one snapshot) so "visible now" and the stored snapshot are
// the same snapshot. A transaction held open delays only its own rows.
type Sequencer struct {
	db      *DB
	opts    SequencerOptions
	leader  atomic.Bool
	lastErr atomic.Pointer[error] // why the last session ended; nil after a good step
	// seen is the highest head this process has seen the log at, with its
	// epoch: a later session that finds a lower head in the same epoch
	// knows the state went backwards (checkEpoch).
	seen atomic.Pointer[herald.Cursor]
}

// Err is why sequencing last failed (the database refused a write, went
// away...), or nil once a step has succeeded since. /readyz shows it: the
// log is not advancing, though history can still be served.
func (s *Sequencer) Err() error {
	if p := s.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// NewSequencer returns a sequencer for db; call Run to start it.
func (db *DB) NewSequencer(opts SequencerOptions) *Sequencer {
	if opts.Interval <= 0 {
		opts.Interval = DefaultSequencerTick
	}
	if opts.SafetyNet <= 0 {
		opts.SafetyNet = time.Second
	}
	if opts.Standby <= 0 {
		opts.Standby = time.Second
	}
	if opts.Retention.Every <= 0 {
		opts.Retention.Every = time.Minute
	}
	return &Sequencer{db: db, opts: opts}
}

// Leader reports whether this process currently sequences.
func (s *Sequencer) Leader() bool { return s.leader.Load() }

// Run competes for leadership and, while leader, sequences until ctx ends.
// It survives the database going away: the dedicated connection is dropped
// (releasing the lock for another replica) and retried with backoff.
func (s *Sequencer) Run(ctx context.Context) error {
	bo := newBackoff(100*time.Millisecond, 5*time.Second)
	for {
		err := s.session(ctx)
		s.setLeader(false)
		if ctx.Err() != nil {
			return nil
		}
		s.lastErr.Store(&err)
		s.db.log.Warn("sequencer connection lost; retrying", "err", err, "in", bo.peek())
		if !bo.sleep(ctx) {
			return nil
		}
	}
}

func (s *Sequencer) setLeader(v bool) {
	if s.leader.Swap(v) != v && s.opts.OnLeader != nil {
		s.opts.OnLeader(v)
	}
}

// session holds one dedicated connection: waits for the lock, then steps.
func (s *Sequencer) session(ctx context.Context) error {
	conn, err := s.db.connect(ctx)
	if err != nil {
		return err
	}
	defer func() {
		// Closing the session releases the advisory lock at once, so a
		// standby replica takes over without waiting for a timeout.
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	if err := s.awaitLock(ctx, conn); err != nil {
		return err
	}
	s.setLeader(true)
	s.db.log.Info("sequencer: leader")
	if _, err := conn.Exec(ctx, `LISTEN `+wakeChannel); err != nil {
		return fmt.Errorf("listen %q: %w", wakeChannel, err)
	}
	st, err := loadTick(ctx, conn)
	if err != nil {
		return err
	}
	if err := s.checkEpoch(ctx, conn, &st); err != nil {
		return err
	}
	if err := s.rebaseSnapshot(ctx, conn, &st); err != nil {
		return err
	}
	s.see(st)
	return s.sequence(ctx, conn, &st)
}

// awaitLock blocks in pg_advisory_lock until this session is leader. A
// standby so costs nothing while it waits (it polled with
// pg_try_advisory_lock every Standby before: a query a second per replica,
// most of a second replica's idle CPU), and takes over the moment the
// leader's session ends rather than up to Standby later. A wait the server
// cuts short (statement_timeout or lock_timeout set for herald's role) is
// retried after Standby.
func (s *Sequencer) awaitLock(ctx context.Context, conn *pgx.Conn) error {
	for {
		_, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(leaderLockKey))
		var pgErr *pgconn.PgError
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &pgErr) && (pgErr.Code == "57014" || pgErr.Code == "55P03"):
			// query_canceled (statement_timeout) or lock_not_available
			// (lock_timeout): the session is fine; wait again.
		default:
			return fmt.Errorf("wait for leader lock: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(s.opts.Standby):
		}
	}
}

// tick is the leader's in-memory copy of sequencer_state; only the lock
// holder writes that row, so memory and table agree while the lock is held.
type tick struct {
	epoch    string
	lastSeq  int64
	xmax     string // pg_snapshot_xmax(prev), as text
	xip      string // pg_snapshot_xip(prev) as a text array literal
	partUpto int64  // partitions exist for seq < partUpto
	partSize int64
	trimmed  time.Time
	trimSeq  int64 // lastSeq at the last trim; -1 before the first
	retained time.Time
	idle     bool // the last step found nothing
}

func loadTick(ctx context.Context, conn *pgx.Conn) (tick, error) {
	t := tick{trimSeq: -1}
	err := conn.QueryRow(ctx, `
		SELECT epoch, last_seq, pg_snapshot_xmax(snap)::text,
		       coalesce((SELECT array_agg(x)::text FROM pg_snapshot_xip(snap) x), '{}'),
		       partitioned_upto, partition_size
		FROM herald.sequencer_state`).Scan(&t.epoch, &t.lastSeq, &t.xmax, &t.xip, &t.partUpto, &t.partSize)
	if err != nil {
		return tick{}, fmt.Errorf("load sequencer state: %w", err)
	}
	return t, nil
}

// step sequences what became visible since the last step and returns how
// many rows it wrote.
func (s *Sequencer) step(ctx context.Context, conn *pgx.Conn, t *tick) (int, error) {
	// Keep one spare partition ahead so a step rarely has to create one.
	if t.lastSeq+t.partSize >= t.partUpto {
		if err := ensurePartitions(ctx, conn, t, t.lastSeq+t.partSize); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	if t.idle {
		// While idle, one plain query with the step's own filter instead
		// of a transaction: the idle cost was most of herald's CPU at low
		// rates. Seeing nothing here equals a step that found nothing.
		// The log's state comes along for this process's feed (vouch).
		var (
			pending bool
			st      = logState{at: time.Now()}
		)
		if err := conn.QueryRow(ctx, `
			SELECT EXISTS (SELECT FROM herald.events WHERE xid >= $1::text::xid8 OR xid = ANY($2::text::xid8[])),
			       epoch, last_seq, floor_seq
			FROM herald.sequencer_state`,
			t.xmax, t.xip).Scan(&pending, &st.head.Epoch, &st.head.Seq, &st.floor); err != nil {
			return 0, fmt.Errorf("look for new rows: %w", err)
		}
		s.db.state.store(st)
		if !pending {
			return 0, s.housekeeping(ctx, conn, t)
		}
	}
	n, head, err := s.try(ctx, conn, t)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23514" {
		// No partition for some row: a batch larger than the spare. Count
		// what is pending, make room, and try once more.
		var pending int64
		if cerr := conn.QueryRow(ctx, `SELECT count(*) FROM herald.events WHERE xid >= $1::text::xid8 OR xid = ANY($2::text::xid8[])`, t.xmax, t.xip).Scan(&pending); cerr != nil {
			return 0, fmt.Errorf("count pending: %w", cerr)
		}
		if err := ensurePartitions(ctx, conn, t, t.lastSeq+pending+t.partSize); err != nil {
			return 0, err
		}
		n, head, err = s.try(ctx, conn, t)
	}
	if err != nil {
		return 0, err
	}
	t.idle = n == 0
	if n > 0 && s.opts.OnBatch != nil {
		s.opts.OnBatch(n, head, time.Since(start))
	}
	return n, s.housekeeping(ctx, conn, t)
}

// The inbox trim runs at most once a second, and only once trimRows rows
// were sequenced since the last one or trimWithin has passed: each trim is
// a commit (a WAL flush) and a wake-up of the sequencer's backend, which at
// a few events a second cost more than the events' own steps. The inbox
// so holds up to trimWithin of a trickle; the steps find their rows by
// the xid index whatever its size.
const (
	trimRows   = 1000
	trimWithin = 10 * time.Second
)

// housekeeping trims the inbox and applies retention.
func (s *Sequencer) housekeeping(ctx context.Context, conn *pgx.Conn, t *tick) error {
	// The trim's bound moves only with lastSeq: while idle it would
	// delete nothing, so it waits for a step that sequenced rows.
	since := time.Since(t.trimmed)
	if t.lastSeq != t.trimSeq && since > time.Second && (t.lastSeq-t.trimSeq >= trimRows || since > trimWithin) {
		if err := trimInbox(ctx, conn); err != nil {
			return err
		}
		t.trimmed, t.trimSeq = time.Now(), t.lastSeq
	}
	if r := s.opts.Retention; r.enabled() && time.Since(t.retained) > r.Every {
		t.retained = time.Now()
		floor, dropped, err := applyRetention(ctx, conn, r, t.lastSeq)
		if err != nil {
			// Not fatal to sequencing (a lock timeout, say): next time.
			s.db.log.Warn("retention", "err", err)
		} else if s.opts.OnRetention != nil {
			s.opts.OnRetention(floor, dropped)
		}
	}
	return nil
}

// try runs one sequencing step: one statement, so one round trip and its
// own transaction. A statement runs on one snapshot whatever the isolation
// level, so "visible now" (fresh), the snapshot stored for the next step
// and the one returned are the same snapshot, as a REPEATABLE READ
// transaction of several statements gave before at five round trips.
//
// The same statement sends the NOTIFY (at commit, from this one
// connection: app transactions never take the notify queue lock). Its
// payload is the new head as a cursor, "<epoch>.<seq>", and, when the batch
// fits in a notice, a second line with the batch itself (logNotice), so
// a feed that is caught up dispatches it without reading the log.
func (s *Sequencer) try(ctx context.Context, conn *pgx.Conn, t *tick) (n int, head int64, err error) {
	// The snapshot bounds are parameters: computed inside the query the
	// planner cannot use the (xid, id) index and scans the whole inbox.
	var xmax, xip string
	err = conn.QueryRow(ctx, `
		WITH fresh AS (
			SELECT xid, id, channel, type, data FROM herald.events
			WHERE xid >= $1::text::xid8 OR xid = ANY($2::text::xid8[])
		), ins AS (
			INSERT INTO herald.event_log (seq, channel, type, data, at)
			SELECT $3::bigint + row_number() OVER (ORDER BY xid, id), channel, type, data, statement_timestamp()
			FROM fresh
			RETURNING seq, channel, type, data, at
		), batch AS (
			SELECT count(*) AS n, max(seq) AS head FROM ins
		), listed AS (
			-- Only a batch that may fit is spelled out.
			SELECT json_agg(json_build_array(seq, channel, type, data, at) ORDER BY seq)::text AS events
			FROM ins WHERE (SELECT n FROM batch) <= $6
		), state AS (
			-- Nothing visible: no write, so no WAL and no dead tuple while idle.
			UPDATE herald.sequencer_state SET last_seq = batch.head, snap = pg_current_snapshot()
			FROM batch WHERE batch.n > 0
			RETURNING floor_seq
		), notice AS (
			SELECT CASE WHEN $4 = '' THEN '' ELSE $4 || '.' END || batch.head AS head,
			       '{"floor":' || state.floor_seq || ',"events":' || listed.events || '}' AS body
			FROM batch, state, listed
		), sent AS (
			-- A NULL body (too many rows) compares as not short: head only.
			SELECT pg_notify('herald_log', CASE WHEN octet_length(body) < $5 THEN head || E'\n' || body ELSE head END)
			FROM notice
		)
		SELECT batch.n, coalesce(batch.head, $3::bigint),
		       pg_snapshot_xmax(pg_current_snapshot())::text,
		       coalesce((SELECT array_agg(x)::text FROM pg_snapshot_xip(pg_current_snapshot()) x), '{}'),
		       (SELECT count(*) FROM sent)
		FROM batch`, t.xmax, t.xip, t.lastSeq, t.epoch, noticeRoom, noticeRows).Scan(&n, &head, &xmax, &xip, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("sequence: %w", err)
	}
	if n == 0 {
		// The stored snapshot is as good as the new one.
		return 0, t.lastSeq, nil
	}
	t.lastSeq, t.xmax, t.xip = head, xmax, xip
	s.see(*t)
	return n, head, nil
}

// see records t's head as seen (see Sequencer.seen).
func (s *Sequencer) see(t tick) {
	if p := s.seen.Load(); p == nil || p.Epoch != t.epoch || p.Seq < t.lastSeq {
		s.seen.Store(&herald.Cursor{Epoch: t.epoch, Seq: t.lastSeq})
	}
}

// ensurePartitions creates event_log partitions until seqs up to need have
// one. Each is created detached and then attached: ATTACH takes a lock that
// does not block readers, unlike CREATE TABLE ... PARTITION OF.
func ensurePartitions(ctx context.Context, conn *pgx.Conn, t *tick, need int64) error {
	for t.partUpto <= need {
		from, to := t.partUpto, t.partUpto+t.partSize
		name := fmt.Sprintf("herald.event_log_%020d", from)
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			stmts := []string{
				`SET LOCAL lock_timeout = '2s'`,
				fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (LIKE herald.event_log INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`, name),
				fmt.Sprintf(`ALTER TABLE herald.event_log ATTACH PARTITION %s FOR VALUES FROM (%d) TO (%d)`, name, from, to),
				fmt.Sprintf(`UPDATE herald.sequencer_state SET partitioned_upto = %d`, to),
			}
			for _, q := range stmts {
				if _, err := tx.Exec(ctx, q); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("create partition [%d,%d): %w", from, to, err)
		}
		t.partUpto = to
	}
	return nil
}

// trimInbox deletes inbox rows the sequencer is done with: every row whose
// xid is below xmin of the stored snapshot was visible (or aborted) in it,
// so an earlier step has already copied it.
func trimInbox(ctx context.Context, conn *pgx.Conn) error {
	_, err := conn.Exec(ctx, `
		DELETE FROM herald.events
		WHERE xid < (SELECT pg_snapshot_xmin(snap) FROM herald.sequencer_state)`)
	if err != nil {
		return fmt.Errorf("trim inbox: %w", err)
	}
	return nil
}

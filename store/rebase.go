package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// rebaseSnapshot runs when this process takes leadership, after checkEpoch.
// The sequencer finds new inbox rows by comparing transaction ids with the
// snapshot it stored. A database restored into another cluster (from a
// dump, say) brings that snapshot along but not the transaction id counter:
// new rows get ids below the stored snapshot's xmax and would look already
// sequenced until the counter caught up, perhaps never. When the counter is
// behind the stored snapshot, the inbox is moved onto this cluster's ids in
// one transaction that holds off writers (EXCLUSIVE lock: inserts wait, for
// milliseconds): rows with ids from the old cluster's future that the old
// snapshot had sequenced are deleted (they are in the log); every other row
// is stamped with this transaction's id; the stored snapshot becomes the
// current one with that id still pending, so the next step numbers them.
// A row the old history had sequenced but not yet trimmed whose id is also
// valid here cannot be told from a new one: it is numbered again, in the
// new epoch (a repeat, never a loss).
func (s *Sequencer) rebaseSnapshot(ctx context.Context, conn *pgx.Conn, t *tick) error {
	var behind bool
	if err := conn.QueryRow(ctx, `
		SELECT pg_snapshot_xmax(pg_current_snapshot()) < pg_snapshot_xmax(snap)
		FROM herald.sequencer_state`).Scan(&behind); err != nil {
		return fmt.Errorf("compare transaction ids with the stored snapshot: %w", err)
	}
	if !behind {
		return nil
	}
	var kept int64
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		// Writers that inserted before the lock have committed or rolled
		// back once it is granted; later ones wait for this transaction.
		if _, err := tx.Exec(ctx, `LOCK TABLE herald.events IN EXCLUSIVE MODE`); err != nil {
			return fmt.Errorf("lock inbox: %w", err)
		}
		if _, err := tx.Exec(ctx, `
			DELETE FROM herald.events
			WHERE xid >= pg_snapshot_xmax(pg_current_snapshot())
			  AND NOT (xid >= $1::text::xid8 OR xid = ANY($2::text::xid8[]))`, t.xmax, t.xip); err != nil {
			return fmt.Errorf("drop sequenced inbox rows: %w", err)
		}
		// Takes this transaction's id, so the next statement's snapshot
		// has it below its xmax.
		tag, err := tx.Exec(ctx, `UPDATE herald.events SET xid = pg_current_xact_id()`)
		if err != nil {
			return fmt.Errorf("restamp inbox rows: %w", err)
		}
		kept = tag.RowsAffected()
		// A snapshot's xmax does not count running transactions, this one
		// included: ids from there up to this one's are running (or not
		// yet used) and stay pending, as do the snapshot's own.
		_, err = tx.Exec(ctx, `
			WITH cur AS (SELECT pg_current_snapshot() AS s, pg_current_xact_id()::text::bigint AS me),
			     pending AS (
				SELECT x::text::bigint AS x FROM cur, pg_snapshot_xip(cur.s) AS x
				UNION SELECT generate_series(pg_snapshot_xmax(s)::text::bigint, me) FROM cur)
			UPDATE herald.sequencer_state SET snap = (
				SELECT (least(pg_snapshot_xmin(s)::text::bigint, me)::text || ':' ||
				        greatest(pg_snapshot_xmax(s)::text::bigint, me + 1)::text || ':' ||
				        (SELECT string_agg(x::text, ',' ORDER BY x) FROM pending))::pg_snapshot
				FROM cur)`)
		if err != nil {
			return fmt.Errorf("store rebased snapshot: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.db.log.Warn("sequencer: transaction ids went back (restored into another cluster); snapshot rebased", "unsequenced_rows", kept)
	nt, err := loadTick(ctx, conn)
	if err != nil {
		return err
	}
	*t = nt
	return nil
}

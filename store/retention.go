package store

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Retention bounds the event log. The leader applies it: it raises the
// floor (the lowest retained seq, which makes the reset decision exact),
// drops every partition wholly below the floor (cheap: no DELETE, no
// VACUUM), and deletes the rest below the floor from the partition the
// floor falls in.
type Retention struct {
	// MaxAge keeps events sequenced within this long (0: no age limit).
	MaxAge time.Duration
	// MaxEvents keeps at most this many of the newest events (0: no limit).
	MaxEvents int64
	// Every is how often the leader applies it (default 1 min).
	Every time.Duration
}

func (r Retention) enabled() bool { return r.MaxAge > 0 || r.MaxEvents > 0 }

// cutoff is the lowest seq to keep under r, given the head.
func (r Retention) cutoff(ctx context.Context, conn *pgx.Conn, head, floor int64) (int64, error) {
	cut := int64(0)
	if r.MaxEvents > 0 {
		cut = head - r.MaxEvents + 1
	}
	if r.MaxAge > 0 {
		// The first young event in seq order: at is the sequencing time,
		// so it grows with seq. The scan starts at the floor and passes
		// only over events about to be removed.
		var young *int64
		err := conn.QueryRow(ctx, `
			SELECT min(seq) FROM (
				SELECT seq FROM herald.event_log
				WHERE seq >= $1 AND at >= now() - $2::interval
				ORDER BY seq LIMIT 1) y`, floor, r.MaxAge.String()).Scan(&young)
		if err != nil {
			return 0, fmt.Errorf("retention cutoff: %w", err)
		}
		byAge := head + 1 // everything is old
		if young != nil {
			byAge = *young
		}
		cut = max(cut, byAge)
	}
	return cut, nil
}

// applyRetention raises the floor to the cutoff and removes what is below.
// It returns the new floor and how many partitions it dropped.
func applyRetention(ctx context.Context, conn *pgx.Conn, r Retention, head int64) (floor int64, dropped int, err error) {
	if err := conn.QueryRow(ctx, `SELECT floor_seq FROM herald.sequencer_state`).Scan(&floor); err != nil {
		return 0, 0, fmt.Errorf("retention: read floor: %w", err)
	}
	cut, err := r.cutoff(ctx, conn, head, floor)
	if err != nil {
		return floor, 0, err
	}
	if cut <= floor {
		return floor, 0, nil
	}
	parts, err := partitions(ctx, conn)
	if err != nil {
		return floor, 0, err
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		// Short lock wait: dropping a partition locks the parent table,
		// and readers must not queue behind us for long. Next time, then.
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '2s'`); err != nil {
			return err
		}
		// The floor moves first, in the same transaction: a reader sees
		// the old floor with the old rows, or the new floor without them.
		if _, err := tx.Exec(ctx, `UPDATE herald.sequencer_state SET floor_seq = $1`, cut); err != nil {
			return err
		}
		for _, p := range parts {
			if p.to > cut {
				break
			}
			if _, err := tx.Exec(ctx, `DROP TABLE `+p.name); err != nil {
				return fmt.Errorf("drop %s: %w", p.name, err)
			}
			dropped++
		}
		_, err := tx.Exec(ctx, `DELETE FROM herald.event_log WHERE seq < $1`, cut)
		return err
	})
	if err != nil {
		return floor, 0, fmt.Errorf("retention: raise floor to %d: %w", cut, err)
	}
	return cut, dropped, nil
}

type partition struct {
	name     string
	from, to int64
}

// partitions lists event_log's partitions in seq order, with bounds from
// their names (herald.event_log_<from>) and the next one's start.
func partitions(ctx context.Context, conn *pgx.Conn) ([]partition, error) {
	rows, err := conn.Query(ctx, `
		SELECT c.relname, s.partitioned_upto
		FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid
		CROSS JOIN herald.sequencer_state s
		WHERE i.inhparent = 'herald.event_log'::regclass`)
	if err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	var out []partition
	var upto int64
	for rows.Next() {
		var name string
		if err := rows.Scan(&name, &upto); err != nil {
			return nil, fmt.Errorf("list partitions: %w", err)
		}
		from, err := strconv.ParseInt(strings.TrimPrefix(name, "event_log_"), 10, 64)
		if err != nil {
			continue // not one of ours
		}
		out = append(out, partition{name: "herald." + name, from: from})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].from < out[j].from })
	for i := range out {
		if i+1 < len(out) {
			out[i].to = out[i+1].from
		} else {
			out[i].to = upto
		}
	}
	return out, nil
}

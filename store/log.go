package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-dev/herald"
	"github.com/herald-dev/herald/hub"
)

// Append writes events to the inbox in one transaction and returns their
// inbox ids. Their seqs follow once the sequencer has run (its trigger
// wakes it at the commit).
func (db *DB) Append(ctx context.Context, events ...herald.NewEvent) ([]int64, error) {
	if len(events) == 0 {
		return nil, nil
	}
	channels := make([]string, len(events))
	types := make([]string, len(events))
	datas := make([]string, len(events))
	for i := range events {
		e := events[i] // a copy: Validate fills in the defaults
		if err := e.Validate(); err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		channels[i], types[i], datas[i] = e.Channel, e.Type, string(e.Data)
	}
	// WITH ORDINALITY keeps the returned ids in the order given.
	rows, err := db.pool.Query(ctx, `
		INSERT INTO herald.events (channel, type, data)
		SELECT c, t, d::jsonb FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS u(c, t, d, n)
		ORDER BY n
		RETURNING id`, channels, types, datas)
	if err != nil {
		return nil, fmt.Errorf("append %d events: %w", len(events), err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("append %d events: %w", len(events), err)
	}
	return ids, nil
}

// DB is the hub's Log: the replays its ring cannot serve.
var _ hub.Log = (*DB)(nil)

// After returns up to limit events on channels with cursor < seq <= upto, in
// seq order (upto <= 0 means no upper bound). It fails with a
// *herald.ResetError (Head: the log's head) when events right after cursor
// are no longer retained, checked in the same
// statement as the read so retention cannot slip in between.
func (db *DB) After(ctx context.Context, cursor int64, channels []string, upto int64, limit int) (hub.Page, error) {
	db.logReads.Add(1)
	if upto <= 0 {
		upto = 1<<63 - 1
	}
	// One index range scan per channel (channel, seq), each bounded by
	// limit, then a merge: fast at any depth.
	rows, err := db.pool.Query(ctx, `
		SELECT s.epoch, s.floor_seq, s.last_seq, e.seq, e.channel, e.type, e.data, e.at
		FROM herald.sequencer_state s
		LEFT JOIN LATERAL (
			SELECT l.* FROM unnest($2::text[]) AS c(name)
			CROSS JOIN LATERAL (
				SELECT seq, channel, type, data, at FROM herald.event_log
				WHERE channel = c.name AND seq > $1 AND seq <= $3
				ORDER BY seq LIMIT $4
			) l
			ORDER BY l.seq LIMIT $4
		) e ON true
		ORDER BY e.seq`, cursor, channels, upto, limit)
	if err != nil {
		return hub.Page{}, fmt.Errorf("read log after %d: %w", cursor, err)
	}
	defer rows.Close()
	var p hub.Page
	for rows.Next() {
		var (
			seq          *int64
			channel, typ *string
			data         []byte
			at           *time.Time
		)
		if err := rows.Scan(&p.Epoch, &p.Floor, &p.Head, &seq, &channel, &typ, &data, &at); err != nil {
			return hub.Page{}, fmt.Errorf("read log after %d: %w", cursor, err)
		}
		if seq != nil {
			ev := &herald.Event{Epoch: p.Epoch, Seq: *seq, Channel: *channel, Type: *typ, Data: data, At: *at}
			ev.JSON()
			p.Events = append(p.Events, ev)
		}
	}
	if err := rows.Err(); err != nil {
		return hub.Page{}, fmt.Errorf("read log after %d: %w", cursor, err)
	}
	if cursor+1 < p.Floor {
		return p, &herald.ResetError{Head: herald.Cursor{Epoch: p.Epoch, Seq: p.Head}}
	}
	return p, nil
}

// State reads the epoch, head and floor.
func (db *DB) State(ctx context.Context) (hub.State, error) {
	var s hub.State
	err := db.pool.QueryRow(ctx, `SELECT epoch, last_seq, floor_seq FROM herald.sequencer_state`).Scan(&s.Epoch, &s.Head, &s.Floor)
	if err != nil {
		return hub.State{}, fmt.Errorf("read sequencer state: %w", err)
	}
	return s, nil
}

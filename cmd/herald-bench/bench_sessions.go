package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// herald's own sessions in its Postgres. The quiet scenario splits the
// Postgres figure in two: the backends serving herald's connections
// (application_name 'herald', in herald's database: replicas share it,
// other databases on the cluster are not herald's), which are herald's
// idle cost, and the rest (autovacuum's workers, which the launcher starts
// every naptime per database, the checkpointer, the background writer...),
// which any Postgres cluster pays whether herald runs or not.

// sessionLister reads the pids of herald's backends from pg_stat_activity
// over one connection held open across the window: opening it inside the
// window would add a backend's start-up and exit to the Postgres figure.
type sessionLister struct{ conn *pgx.Conn }

func (b *bench) openSessionLister(ctx context.Context) (*sessionLister, error) {
	if b.dbURL == "" || b.pg == nil {
		return nil, nil // nchan, or a Postgres that is not metered
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, b.dbURL)
	if err != nil {
		return nil, fmt.Errorf("connect to list herald's sessions: %w", err)
	}
	return &sessionLister{conn: conn}, nil
}

func (l *sessionLister) pids(ctx context.Context) ([]int, error) {
	if l == nil {
		return nil, nil
	}
	rows, err := l.conn.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = 'herald' AND datname = current_database() AND pid <> pg_backend_pid() ORDER BY pid`)
	if err != nil {
		return nil, fmt.Errorf("list herald's sessions: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[int])
}

func (l *sessionLister) close() {
	if l != nil {
		l.conn.Close(context.Background())
	}
}

// sessionWindow meters herald's sessions over one quiet window.
type sessionWindow struct {
	meter  *cpuMeter
	before cpuSample
}

func (l *sessionLister) open(ctx context.Context) (*sessionWindow, error) {
	pids, err := l.pids(ctx)
	if err != nil || pids == nil {
		return nil, err
	}
	m := &cpuMeter{pids: pids}
	return &sessionWindow{meter: m, before: m.sample()}, nil
}

// close adds sessions_cpu_ms (the CPU of the backends listed at the
// window's start) and sessions_changed (1 if the list differs at its end:
// a session that ended or began inside the window is missing from the
// figure, so it is a floor, and the report says so).
func (w *sessionWindow) close(ctx context.Context, l *sessionLister, m benchMetrics) error {
	if w == nil {
		return nil
	}
	// Only backends alive at both ends count: a session that ended has no
	// clock to read, and cpuSample.since would subtract all it ever used
	// (the postmaster's reaped total covers that only for its children).
	after := w.meter.sample()
	var cpu time.Duration
	for pid, t := range after.per {
		if t0, ok := w.before.per[pid]; ok {
			cpu += max(t-t0, 0)
		}
	}
	now, err := l.pids(ctx)
	if err != nil {
		return err
	}
	m["sessions_cpu_ms"] = float64(cpu) / float64(time.Millisecond)
	m["sessions"] = float64(len(w.meter.pids))
	if !slices.Equal(now, w.meter.pids) {
		m["sessions_changed"] = 1
	} else {
		m["sessions_changed"] = 0
	}
	return nil
}

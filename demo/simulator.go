// The simulator: the loop that moves builds QUEUED → STARTED → progress →
// PASSED/FAILED, each change committed with its notice in herald.events.

package demo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Run changes one build every Pace (jittered) until ctx ends; with Pace <= 0
// it only waits for ctx. A failed step (database restarting) is logged and
// retried at the next tick. It returns ctx's error.
func (d *Demo) Run(ctx context.Context) error {
	if d.opts.Pace <= 0 {
		<-ctx.Done()
		return ctx.Err()
	}
	t := time.NewTimer(d.jitter(d.opts.Pace))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if c, err := d.Step(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			d.log.Warn("demo: simulator step failed", "err", err)
		} else {
			d.log.Debug("demo: build changed", "build", c.Build, "project", c.Project, "state", c.State, "progress", c.Progress)
		}
		t.Reset(d.jitter(d.opts.Pace))
	}
}

// Step makes one simulated change: usually it advances a running or queued
// build; when few builds are active (or now and then) it queues a new one.
func (d *Demo) Step(ctx context.Context) (Change, error) {
	return d.change(ctx, func(tx pgx.Tx) (Change, error) {
		var active []int64
		rows, err := tx.Query(ctx, `SELECT id FROM demo.builds WHERE state IN ('QUEUED', 'STARTED') ORDER BY id`)
		if err != nil {
			return Change{}, err
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return Change{}, err
			}
			active = append(active, id)
		}
		if err := rows.Err(); err != nil {
			return Change{}, err
		}
		if len(active) < 2 || (len(active) < 5 && d.chance(0.12)) {
			var pid int64
			if err := tx.QueryRow(ctx, `SELECT id FROM demo.projects ORDER BY random() LIMIT 1`).Scan(&pid); err != nil {
				return Change{}, err
			}
			return d.queue(ctx, tx, pid)
		}
		return d.advance(ctx, tx, active[d.intn(len(active))])
	})
}

// Advance moves one build a step on: QUEUED → STARTED, STARTED → more
// progress, and at 100% → PASSED or FAILED. A finished build is an error.
func (d *Demo) Advance(ctx context.Context, build int64) (Change, error) {
	return d.change(ctx, func(tx pgx.Tx) (Change, error) { return d.advance(ctx, tx, build) })
}

// Queue adds a new QUEUED build to a project.
func (d *Demo) Queue(ctx context.Context, project int64) (Change, error) {
	return d.change(ctx, func(tx pgx.Tx) (Change, error) { return d.queue(ctx, tx, project) })
}

// change runs fn in a transaction that also writes fn's notice to
// herald.events: the row and its notice commit together or not at all.
func (d *Demo) change(ctx context.Context, fn func(pgx.Tx) (Change, error)) (Change, error) {
	var c Change
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		// One simulator step at a time across processes, so two steps never
		// pick the same build.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(setupLock)); err != nil {
			return err
		}
		var err error
		if c, err = fn(tx); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `
			INSERT INTO herald.events (channel, type, data)
			VALUES ($1, $2, jsonb_build_object('build', $3::bigint, 'project', $4::bigint, 'state', $5::text))
			RETURNING id`,
			Channel(c.Project), NoticeType, c.Build, c.Project, c.State).Scan(&c.InboxID)
	})
	if err != nil {
		return Change{}, fmt.Errorf("demo: %w", err)
	}
	return c, nil
}

// ErrFinished is returned by Advance for a build that has finished.
var ErrFinished = errors.New("build has finished")

func (d *Demo) advance(ctx context.Context, tx pgx.Tx, id int64) (Change, error) {
	var state string
	var progress int
	var pid int64
	err := tx.QueryRow(ctx, `SELECT project_id, state, progress FROM demo.builds WHERE id = $1 FOR UPDATE`, id).Scan(&pid, &state, &progress)
	if errors.Is(err, pgx.ErrNoRows) {
		return Change{}, fmt.Errorf("build %d does not exist", id)
	}
	if err != nil {
		return Change{}, err
	}
	switch state {
	case Queued:
		state, progress = Started, 0
	case Started:
		if progress += 15 + d.intn(25); progress >= 100 {
			progress, state = 100, Passed
			if d.chance(d.opts.FailRate) {
				state = Failed
			}
		}
	default:
		return Change{}, fmt.Errorf("build %d: %w", id, ErrFinished)
	}
	c := Change{Build: id, Project: pid, State: state, Progress: progress}
	err = tx.QueryRow(ctx, `
		UPDATE demo.builds SET state = $2, progress = $3, version = version + 1, updated_at = now(),
		       started_at  = CASE WHEN $2 = 'STARTED' AND started_at IS NULL THEN now() ELSE started_at END,
		       finished_at = CASE WHEN $2 IN ('PASSED', 'FAILED') THEN now() ELSE finished_at END
		 WHERE id = $1
		RETURNING version`, id, state, progress).Scan(&c.Version)
	return c, err
}

func (d *Demo) queue(ctx context.Context, tx pgx.Tx, pid int64) (Change, error) {
	var p Project
	err := tx.QueryRow(ctx, `SELECT id, name, repo, branch FROM demo.projects WHERE id = $1 FOR UPDATE`, pid).Scan(&p.ID, &p.Name, &p.Repo, &p.Branch)
	if errors.Is(err, pgx.ErrNoRows) {
		return Change{}, fmt.Errorf("project %d does not exist", pid)
	}
	if err != nil {
		return Change{}, err
	}
	c := d.commit()
	ch := Change{Project: pid, State: Queued, New: true, Version: 1}
	err = tx.QueryRow(ctx, `
		INSERT INTO demo.builds (project_id, number, branch, sha, message, author, state)
		VALUES ($1, (SELECT coalesce(max(number), 0) + 1 FROM demo.builds WHERE project_id = $1), $2, $3, $4, $5, 'QUEUED')
		RETURNING id`, pid, c.branch(p), c.sha, c.message, c.author).Scan(&ch.Build)
	if err != nil {
		return Change{}, err
	}
	// Keep the tables small on a demo left running for days.
	_, err = tx.Exec(ctx, `
		DELETE FROM demo.builds WHERE project_id = $1 AND state IN ('PASSED', 'FAILED')
		   AND id < (SELECT id FROM demo.builds WHERE project_id = $1 ORDER BY id DESC OFFSET 49 LIMIT 1)`, pid)
	return ch, err
}

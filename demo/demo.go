// Package demo is the backend app of `herald demo`: a small CI service with
// projects and builds in its own Postgres schema (demo), a simulator that
// moves builds QUEUED → STARTED → progress → PASSED/FAILED, and the JSON API
// and page of a live dashboard (web/demo) that refetches a build when herald
// says it changed.
//
// It plays the part of the app from README's "Publishing": every change
// updates its row and inserts the notice into herald.events in the same
// transaction, so a notice exists if and only if the change committed.
// Notices are minimal: {"build":190852,"project":3,"state":"STARTED"} on
// channel private-project-3 with type build-state-changed; the page fetches
// the build itself over HTTP (the minimal-notice pattern from the seeds).
//
// It talks to herald only through the database and api.MintToken; it does
// not import gin, so it is mounted as a plain http.Handler.
package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Build states.
const (
	Queued  = "QUEUED"
	Started = "STARTED"
	Passed  = "PASSED"
	Failed  = "FAILED"
)

// NoticeType is the herald event type of every demo notice.
const NoticeType = "build-state-changed"

// Channel is the herald channel of a project's notices.
func Channel(projectID int64) string { return "private-project-" + strconv.FormatInt(projectID, 10) }

// ChannelPattern is what a demo token grants.
const ChannelPattern = "private-project-*"

// Options configure a Demo; zero values take the defaults.
type Options struct {
	// Secret signs the page's tokens (HERALD_JWT_SECRET); without it
	// GET /demo/token answers 503.
	Secret []byte
	// TokenTTL is the lifetime of a page token (default 10 min). The page
	// renews it through herald.js's authorize().
	TokenTTL time.Duration
	// Pace is the simulator's average time between two changes (jittered
	// ±50%); 0 or less turns the simulator off (Run only waits), so builds
	// change only when something calls Step, Advance or Queue.
	Pace time.Duration
	// Builds is how many recent builds per project the API lists (default 6).
	Builds int
	// FailRate is the share of finished builds that fail (default 0.2).
	FailRate float64
	// Seed makes the simulator's choices repeatable (0: random).
	Seed uint64
	Log  *slog.Logger
}

// Demo is the app: its database pool, simulator and HTTP handler.
type Demo struct {
	pool *pgxpool.Pool
	opts Options
	log  *slog.Logger

	mu  sync.Mutex // guards rng
	rng *rand.Rand
}

// Project is a row of demo.projects.
type Project struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	Repo   string `json:"repo"`
	Branch string `json:"branch"`
}

// Build is a row of demo.builds, as the API returns it.
type Build struct {
	ID         int64      `json:"id"`
	Project    int64      `json:"project"`
	Number     int        `json:"number"`
	Branch     string     `json:"branch"`
	Commit     string     `json:"commit"`
	Message    string     `json:"message"`
	Author     string     `json:"author"`
	State      string     `json:"state"`
	Progress   int        `json:"progress"`
	Version    int        `json:"version"` // +1 on every change: the page keeps the newest answer
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
}

// Change is one committed change and the notice written with it.
type Change struct {
	Build    int64  `json:"build"`
	Project  int64  `json:"project"`
	State    string `json:"state"`
	Progress int    `json:"progress"`
	Version  int    `json:"version"`
	New      bool   `json:"new"` // a build was queued
	InboxID  int64  `json:"inbox_id"`
}

// Setup connects to dbURL, creates the demo schema if it is missing (herald's
// own schema must exist: serve migrates first) and seeds a few projects with
// recent builds if there are none. It is idempotent: a restarted demo keeps
// its builds. Close the Demo when done.
func Setup(ctx context.Context, dbURL string, opts Options) (*Demo, error) {
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = 10 * time.Minute
	}
	if opts.Builds <= 0 {
		opts.Builds = 6
	}
	if opts.FailRate <= 0 {
		opts.FailRate = 0.2
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	pcfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, fmt.Errorf("demo: database URL: %w", err)
	}
	pcfg.MaxConns = 8
	pcfg.ConnConfig.RuntimeParams["application_name"] = "herald-demo"
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("demo: connect: %w", err)
	}
	seed := opts.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	d := &Demo{pool: pool, opts: opts, log: opts.Log, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	if err := d.setup(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return d, nil
}

// Close releases the database pool.
func (d *Demo) Close() { d.pool.Close() }

// setupLock serialises demo setups and simulator steps across processes
// ("demo" in ASCII).
const setupLock = 0x64656d6f

const schema = `
CREATE SCHEMA IF NOT EXISTS demo;
CREATE TABLE IF NOT EXISTS demo.projects (
    id     bigint PRIMARY KEY,
    name   text NOT NULL,
    repo   text NOT NULL,
    branch text NOT NULL DEFAULT 'main'
);
CREATE TABLE IF NOT EXISTS demo.builds (
    id          bigint GENERATED BY DEFAULT AS IDENTITY (START WITH 190840) PRIMARY KEY,
    project_id  bigint NOT NULL REFERENCES demo.projects (id),
    number      int    NOT NULL,
    branch      text   NOT NULL,
    sha         text   NOT NULL,
    message     text   NOT NULL,
    author      text   NOT NULL,
    state       text   NOT NULL CHECK (state IN ('QUEUED', 'STARTED', 'PASSED', 'FAILED')),
    progress    int    NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    version     int    NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    started_at  timestamptz,
    finished_at timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, number)
);
CREATE INDEX IF NOT EXISTS builds_project_recent ON demo.builds (project_id, id DESC);
CREATE INDEX IF NOT EXISTS builds_active ON demo.builds (id) WHERE state IN ('QUEUED', 'STARTED');
`

var seedProjects = []Project{
	{1, "storefront", "acme/storefront", "main"},
	{2, "payments-api", "acme/payments-api", "main"},
	{3, "mobile-app", "acme/mobile-app", "develop"},
	{4, "docs-site", "acme/docs-site", "main"},
}

func (d *Demo) setup(ctx context.Context) error {
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("demo setup: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(setupLock)); err != nil {
		return fmt.Errorf("demo setup: %w", err)
	}
	if _, err := tx.Exec(ctx, schema); err != nil {
		return fmt.Errorf("demo setup: create schema: %w", err)
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM demo.projects`).Scan(&n); err != nil {
		return fmt.Errorf("demo setup: %w", err)
	}
	if n == 0 {
		if err := d.seed(ctx, tx); err != nil {
			return fmt.Errorf("demo setup: seed: %w", err)
		}
		d.log.Info("demo: seeded projects and builds", "projects", len(seedProjects))
	}
	return tx.Commit(ctx)
}

// seed writes each project's history: finished builds over the last hours,
// and on two projects one build running and one queued, so the page is
// alive at once. No notices: nobody has seen these builds yet.
func (d *Demo) seed(ctx context.Context, tx pgx.Tx) error {
	now := time.Now()
	for pi, p := range seedProjects {
		if _, err := tx.Exec(ctx, `INSERT INTO demo.projects (id, name, repo, branch) VALUES ($1, $2, $3, $4)`, p.ID, p.Name, p.Repo, p.Branch); err != nil {
			return err
		}
		const history = 5
		for i := range history {
			state := Passed
			if d.chance(0.25) {
				state = Failed
			}
			progress := 100
			created := now.Add(-time.Duration(history-i)*47*time.Minute - time.Duration(pi*7)*time.Minute)
			started := created.Add(time.Duration(5+d.intn(40)) * time.Second)
			var finished *time.Time
			f := started.Add(time.Duration(90+d.intn(400)) * time.Second)
			finished = &f
			if i == history-1 && pi%2 == 0 { // the newest is still running
				state, progress, finished = Started, 20+d.intn(50), nil
				created = now.Add(-time.Duration(30+d.intn(60)) * time.Second)
				started = created.Add(3 * time.Second)
			}
			if err := d.insertBuild(ctx, tx, p, i+1, state, progress, created, &started, finished); err != nil {
				return err
			}
		}
		if pi == 1 {
			if err := d.insertBuild(ctx, tx, p, history+1, Queued, 0, now.Add(-5*time.Second), nil, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *Demo) insertBuild(ctx context.Context, tx pgx.Tx, p Project, number int, state string, progress int, created time.Time, started, finished *time.Time) error {
	c := d.commit()
	_, err := tx.Exec(ctx, `
		INSERT INTO demo.builds (project_id, number, branch, sha, message, author, state, progress, created_at, started_at, finished_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $9)`,
		p.ID, number, c.branch(p), c.sha, c.message, c.author, state, progress, created, started, finished)
	return err
}

// ---------------------------------------------------------------------------
// the simulator

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

// ---------------------------------------------------------------------------
// queries for the API

// Projects lists the projects.
func (d *Demo) Projects(ctx context.Context) ([]Project, error) {
	rows, err := d.pool.Query(ctx, `SELECT id, name, repo, branch FROM demo.projects ORDER BY id`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Project, error) {
		var p Project
		err := r.Scan(&p.ID, &p.Name, &p.Repo, &p.Branch)
		return p, err
	})
}

// ErrNotFound is returned for a project or build that does not exist.
var ErrNotFound = errors.New("not found")

const buildColumns = `id, project_id, number, branch, sha, message, author, state, progress, version, created_at, started_at, finished_at, updated_at`

func scanBuild(r pgx.CollectableRow) (Build, error) {
	var b Build
	err := r.Scan(&b.ID, &b.Project, &b.Number, &b.Branch, &b.Commit, &b.Message, &b.Author, &b.State, &b.Progress, &b.Version, &b.CreatedAt, &b.StartedAt, &b.FinishedAt, &b.UpdatedAt)
	return b, err
}

// Builds lists a project's most recent builds, newest first.
func (d *Demo) Builds(ctx context.Context, project int64, limit int) ([]Build, error) {
	var exists bool
	if err := d.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM demo.projects WHERE id = $1)`, project).Scan(&exists); err != nil {
		return nil, err
	}
	if !exists {
		return nil, ErrNotFound
	}
	rows, err := d.pool.Query(ctx, `SELECT `+buildColumns+` FROM demo.builds WHERE project_id = $1 ORDER BY id DESC LIMIT $2`, project, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanBuild)
}

// Build returns one build.
func (d *Demo) Build(ctx context.Context, id int64) (Build, error) {
	rows, err := d.pool.Query(ctx, `SELECT `+buildColumns+` FROM demo.builds WHERE id = $1`, id)
	if err != nil {
		return Build{}, err
	}
	b, err := pgx.CollectExactlyOneRow(rows, scanBuild)
	if errors.Is(err, pgx.ErrNoRows) {
		return Build{}, ErrNotFound
	}
	return b, err
}

// ---------------------------------------------------------------------------
// randomness

func (d *Demo) intn(n int) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rng.IntN(n)
}

func (d *Demo) chance(p float64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rng.Float64() < p
}

func (d *Demo) jitter(pace time.Duration) time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return pace/2 + time.Duration(d.rng.Int64N(int64(pace)+1))
}

type commitInfo struct {
	sha, message, author, topic string
}

// branch is the project's default branch, or now and then a topic branch.
func (c commitInfo) branch(p Project) string {
	if c.topic != "" {
		return c.topic
	}
	return p.Branch
}

var (
	authors  = []string{"ada", "grace", "linus", "margaret", "ken", "barbara", "dennis", "frances"}
	messages = []string{
		"Fix flaky checkout test",
		"Bump pgx to v5.7",
		"Add retry to webhook delivery",
		"Refactor cart totals",
		"Speed up asset pipeline",
		"Handle empty search results",
		"Update onboarding copy",
		"Cache exchange rates for 5 minutes",
		"Drop legacy v1 endpoints",
		"Lazy-load product images",
		"Log slow queries over 200 ms",
		"Fix timezone in invoice dates",
		"Add dark mode toggle",
		"Migrate CI to the new runners",
	}
	topics = []string{"feature/checkout-v2", "fix/rounding", "chore/deps", "feature/dark-mode"}
)

func (d *Demo) commit() commitInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := commitInfo{
		sha:     fmt.Sprintf("%07x", d.rng.Uint32()>>4),
		message: messages[d.rng.IntN(len(messages))],
		author:  authors[d.rng.IntN(len(authors))],
	}
	if d.rng.Float64() < 0.3 {
		c.topic = topics[d.rng.IntN(len(topics))]
	}
	return c
}

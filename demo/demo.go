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
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

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

// Package apitest starts a whole herald (sequencer, feed, HTTP API) on a
// fresh database for tests in any package: real Postgres, real HTTP.
package apitest

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herald-dev/herald/api"
	"github.com/herald-dev/herald/store"
	"github.com/herald-dev/herald/store/pgtest"
)

// Env is one running herald.
type Env struct {
	URL    string // base URL of the HTTP API, e.g. http://127.0.0.1:41234
	DBURL  string // its database
	DB     *store.DB
	Feed   *store.Feed
	Seq    *store.Sequencer
	Leases *store.Leases
	Server *api.Server
	HTTP   *httptest.Server
	Pool   *pgxpool.Pool // for tests that write as an app would

	stop func()
}

// Options configure Start; zero values take herald's defaults.
type Options struct {
	API       api.Config
	Feed      store.FeedOptions
	Sequencer store.SequencerOptions
	// DBURL runs on an existing database (a second node) instead of a
	// fresh one.
	DBURL string
}

// Start runs herald on a fresh database and stops it when t ends. It
// returns once the feed knows the head, so the server is ready.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	url := opts.DBURL
	if url == "" {
		url = pgtest.URL(t)
	}
	ctx, cancel := context.WithCancel(context.Background())
	db, err := store.Open(ctx, url, nil)
	if err != nil {
		cancel()
		t.Fatalf("open store: %v", err)
	}
	e := &Env{DBURL: url, DB: db}
	seqOpts := opts.Sequencer
	if m := opts.API.Metrics; m != nil {
		m.Sequencer(&seqOpts)
		m.Feed(&opts.Feed)
	}
	e.Seq = db.NewSequencer(seqOpts)
	e.Feed = db.NewFeed(opts.Feed)
	if opts.API.Sequencer == nil {
		opts.API.Sequencer = e.Seq
	}
	e.Leases = db.NewLeases(0)
	if opts.API.Leases == nil {
		opts.API.Leases = e.Leases
	}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); _ = e.Seq.Run(ctx) }()
	go func() { defer wg.Done(); _ = e.Feed.Run(ctx) }()
	go func() { defer wg.Done(); _ = e.Leases.Renew(ctx) }()
	e.Server = api.New(opts.API, db, e.Feed)
	e.HTTP = httptest.NewServer(e.Server.Handler())
	e.URL = e.HTTP.URL
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatalf("pool: %v", err)
	}
	e.Pool = pool
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			e.Server.Drain()
			e.HTTP.CloseClientConnections()
			e.HTTP.Close()
			wctx, wcancel := context.WithTimeout(context.Background(), 15*time.Second)
			if err := e.Server.Wait(wctx); err != nil {
				t.Errorf("streams still running 15s after Drain: %v", err)
			}
			wcancel()
			cancel()
			wg.Wait()
			pool.Close()
			db.Close()
		})
	}
	t.Cleanup(e.stop)
	select {
	case <-e.Feed.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("feed not ready after 30s")
	}
	return e
}

// Stop shuts this herald down now (Drain, close HTTP, stop the loops).
func (e *Env) Stop() { e.stop() }

// Insert writes one event with SQL, as an app would, and fails t on error.
func (e *Env) Insert(t testing.TB, channel, typ, data string) {
	t.Helper()
	if _, err := e.Pool.Exec(context.Background(),
		`INSERT INTO herald.events (channel, type, data) VALUES ($1, $2, $3)`, channel, typ, data); err != nil {
		t.Fatalf("insert into %s: %v", channel, err)
	}
}

// WaitHead waits until the feed has delivered everything up to seq.
func (e *Env) WaitHead(t testing.TB, seq int64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for e.Feed.Head() < seq {
		if time.Now().After(deadline) {
			t.Fatalf("feed head %d, want >= %d after %v", e.Feed.Head(), seq, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Package apitest starts a whole herald (sequencer, feed, HTTP API) on a
// fresh database for tests in any package: real Postgres, real HTTP.
package apitest

import (
	"context"
	"net"
	"net/http"
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
	HTTP   *http.Server
	// Listener is the HTTP server's: tests may tune its socket options.
	Listener net.Listener
	Pool     *pgxpool.Pool // for tests that write as an app would

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
	ctx := context.Background()
	db, err := store.Open(ctx, url, nil)
	if err != nil {
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
	// The same lifecycle as herald serve's; loop errors are not logged.
	life := api.NewLifecycle(ctx, nil)
	life.Go("sequencer", e.Seq.Run)
	life.Go("feed", e.Feed.Run)
	life.Go("leases", e.Leases.Renew)
	e.Server = api.New(opts.API, db, e.Feed)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		life.Wait()
		db.Close()
		t.Fatalf("listen: %v", err)
	}
	e.HTTP, e.Listener, e.URL = &http.Server{}, ln, "http://"+ln.Addr().String()
	life.Start(e.Server, e.HTTP, ln, e.Feed.Ready())
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatalf("pool: %v", err)
	}
	e.Pool = pool
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			// No grace for requests: a test that ends leaves none worth
			// finishing, so their connections close at once.
			wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
			if err := life.Drain(wctx, 0); err != nil {
				t.Errorf("streams still running 15s after Drain: %v", err)
			}
			wcancel()
			life.Wait()
			pool.Close()
			db.Close()
		})
	}
	t.Cleanup(e.stop)
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	if err := life.Ready(rctx); err != nil {
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

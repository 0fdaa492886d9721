package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herald-dev/herald"
	"github.com/herald-dev/herald/store"
	"github.com/herald-dev/herald/store/pgtest"
)

// node is one herald process's store side: sequencer and feed running.
type node struct {
	db   *store.DB
	seq  *store.Sequencer
	feed *store.Feed
	stop func()
}

// setup returns a fresh database with one running node, and a raw pool
// for writers.
func setup(t *testing.T) (*node, *pgxpool.Pool, string) {
	t.Helper()
	return setupWith(t, store.SequencerOptions{}, store.FeedOptions{})
}

// setupWith is setup with sequencer and feed options.
func setupWith(t *testing.T, so store.SequencerOptions, fo store.FeedOptions) (*node, *pgxpool.Pool, string) {
	t.Helper()
	url := pgtest.URL(t)
	n := startNodeWith(t, url, so, fo)
	return n, openPool(t, url), url
}

// openPool is a raw pool on url for writers, closed when t ends.
func openPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func startNode(t *testing.T, url string, fo store.FeedOptions) *node {
	t.Helper()
	return startNodeWith(t, url, store.SequencerOptions{}, fo)
}

// startNodeWith is startNode with sequencer options.
func startNodeWith(t *testing.T, url string, so store.SequencerOptions, fo store.FeedOptions) *node {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	db, err := store.Open(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{db: db, seq: db.NewSequencer(so), feed: db.NewFeed(fo)}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); n.seq.Run(ctx) }()
	go func() { defer wg.Done(); n.feed.Run(ctx) }()
	var once sync.Once
	n.stop = func() { once.Do(func() { cancel(); wg.Wait(); db.Close() }) }
	t.Cleanup(n.stop)
	select {
	case <-n.feed.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("feed not ready")
	}
	return n
}

// collect takes events from sub until want events arrived or the deadline.
func collect(t *testing.T, sub herald.Subscription, want int, timeout time.Duration) []*herald.Event {
	t.Helper()
	var got []*herald.Event
	deadline := time.After(timeout)
	ctx := context.Background()
	for len(got) < want {
		b, err := sub.Take(ctx, 1000)
		if err != nil {
			t.Fatalf("take after %d events: %v", len(got), err)
		}
		got = append(got, b.Events...)
		if len(b.Events) > 0 {
			continue
		}
		select {
		case <-sub.Ready():
		case <-deadline:
			t.Fatalf("got %d of %d events before timeout", len(got), want)
		}
	}
	return got
}

// waitFor polls cond until it holds or d has passed.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

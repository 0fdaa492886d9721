package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herald-dev/herald"
	"github.com/herald-dev/herald/store"
	"github.com/herald-dev/herald/store/pgtest"
)

// TestRetention: with small partitions and a count limit, the leader
// raises the floor, drops whole partitions, and then a cursor at the floor
// replays while one below it resets, from the database and from the ring.
func TestRetention(t *testing.T) {
	url := pgtest.URL(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `UPDATE herald.sequencer_state SET partition_size = 10`); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	floors := make(chan int64, 100)
	seq := db.NewSequencer(store.SequencerOptions{
		Retention:   store.Retention{MaxEvents: 25, Every: 20 * time.Millisecond},
		OnRetention: func(floor int64, _ int) { floors <- floor },
	})
	feed := db.NewFeed(store.FeedOptions{Poll: 50 * time.Millisecond})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); seq.Run(ctx) }()
	go func() { defer wg.Done(); feed.Run(ctx) }()
	defer wg.Wait()
	defer cancel()
	<-feed.Ready()

	start := time.Now()
	for i := 0; i < 100; i++ {
		if _, err := pool.Exec(ctx, `INSERT INTO herald.events (channel, data) VALUES ('a', '{}')`); err != nil {
			t.Fatal(err)
		}
	}
	// Wait for the floor to reach 100-25+1 = 76.
	deadline := time.After(30 * time.Second)
	for floor := int64(0); floor < 76; {
		select {
		case floor = <-floors:
		case <-deadline:
			t.Fatal("floor did not reach 76")
		}
	}
	st, err := db.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Head != 100 || st.Floor != 76 {
		t.Fatalf("state %+v, want head 100 floor 76", st)
	}
	var rows, parts int
	var minSeq int64
	if err := pool.QueryRow(ctx, `SELECT count(*), min(seq) FROM herald.event_log`).Scan(&rows, &minSeq); err != nil {
		t.Fatalf("count retained rows: %v", err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_inherits WHERE inhparent = 'herald.event_log'::regclass`).Scan(&parts); err != nil {
		t.Fatalf("count partitions: %v", err)
	}
	if rows != 25 || minSeq != 76 {
		t.Fatalf("%d rows retained from seq %d, want 25 from 76", rows, minSeq)
	}
	if parts == 0 {
		t.Fatal("no partitions left: the retained rows must live in some")
	}
	// [1,11) … [61,71) dropped; [71,81) … [101,111) (and a spare) remain.
	if parts > 6 {
		t.Fatalf("%d partitions left: whole partitions below the floor were not dropped", parts)
	}
	// The feed learns the floor on its next read (the safety-net poll).
	t.Logf("floor 76 after %v", time.Since(start))
	for known := time.Now().Add(10 * time.Second); !floorKnown(t, feed); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(known) {
			t.Fatal("the feed did not learn the new floor within 10 s")
		}
	}
	t.Logf("feed knows after %v", time.Since(start))

	for _, tc := range []struct {
		cursor    int64
		reset     bool
		firstSeq  int64
		wantCount int
	}{
		{cursor: 75, firstSeq: 76, wantCount: 25}, // just above the floor: replays
		{cursor: 74, reset: true},                 // below it: reset
		{cursor: 0, reset: true},
	} {
		sub, err := feed.Subscribe(ctx, []string{"a"}, tc.cursor, true)
		if err != nil {
			t.Fatal(err)
		}
		b, err := sub.Take(ctx, 1000)
		sub.Close()
		if err != nil {
			t.Fatal(err)
		}
		if (b.Reset != nil) != tc.reset {
			t.Fatalf("cursor %d: reset %v, want %v", tc.cursor, b.Reset, tc.reset)
		}
		if tc.reset {
			if b.Cursor != 100 || b.Reset.Head.Seq != 100 {
				t.Fatalf("cursor %d: reset to %d, want the head 100", tc.cursor, b.Cursor)
			}
			continue
		}
		if len(b.Events) != tc.wantCount || b.Events[0].Seq != tc.firstSeq {
			t.Fatalf("cursor %d: %d events from %d, want %d from %d", tc.cursor, len(b.Events), b.Events[0].Seq, tc.wantCount, tc.firstSeq)
		}
	}
	// The database path decides the same (After is what a fresh replica uses).
	var reset *herald.ResetError
	if _, err := db.After(ctx, 74, []string{"a"}, 0, 10); !errors.As(err, &reset) || reset.Head.Seq != 100 {
		t.Fatalf("After(74): %v, want a reset to the head 100", err)
	}
	if p, err := db.After(ctx, 75, []string{"a"}, 0, 10); err != nil || len(p.Events) != 10 || p.Events[0].Seq != 76 {
		t.Fatalf("After(75): %v %d events", err, len(p.Events))
	}
}

// floorKnown subscribes below the floor and reports whether it resets
// (the feed has seen the new floor).
func floorKnown(t *testing.T, feed *store.Feed) bool {
	t.Helper()
	sub, err := feed.Subscribe(context.Background(), []string{"a"}, 74, true)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	b, err := sub.Take(context.Background(), 1)
	return err == nil && b.Reset != nil
}

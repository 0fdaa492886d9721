package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/herald-dev/herald/store"
)

// TestIdleFeedTrustsItsLeader runs one process's sequencer and feed with a
// 50 ms safety net and poll. Idle, the feed's safety-net reads are left to
// the leader's look (which reads the log's state anyway); a floor moved
// behind herald's back, with no notice, is still seen, and a subscriber
// resuming below it gets a reset rather than a replay from memory.
func TestIdleFeedTrustsItsLeader(t *testing.T) {
	const net = 50 * time.Millisecond
	n, pool, _ := setupWith(t, store.SequencerOptions{SafetyNet: net}, store.FeedOptions{Poll: net})
	db, feed, ctx := n.db, n.feed, context.Background()

	sub, err := feed.Subscribe(ctx, []string{"a"}, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if _, err := pool.Exec(ctx, `INSERT INTO herald.events (channel) SELECT 'a' FROM generate_series(1, 10)`); err != nil {
		t.Fatal(err)
	}
	collect(t, sub, 10, 10*time.Second)

	// Idle for 40 safety nets. Without the leader's word the feed reads
	// the log once per poll; wait for the sequencer to fall asleep first.
	waitFor(t, 10*time.Second, "4 idle polls without a log read (the feed relying on its leader)", func() bool {
		before := db.LogReads()
		time.Sleep(4 * net)
		return db.LogReads() == before
	})
	before := db.LogReads()
	time.Sleep(40 * net)
	if d := db.LogReads() - before; d > 4 {
		t.Fatalf("idle for 40 polls, the feed read the log %d times; want it to rely on its leader's look", d)
	}

	// Retention's floor, moved with no notice: the leader's look sees it,
	// the feed reads the log and takes it.
	before = db.LogReads()
	if _, err := pool.Exec(ctx, `UPDATE herald.sequencer_state SET floor_seq = 6`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the feed to read the log after the floor moved", func() bool {
		return db.LogReads() > before
	})
	// The read is counted as it starts and the floor set when it ends:
	// resume below the floor until the answer is a reset.
	var got int
	resets := func() bool {
		late, err := feed.Subscribe(ctx, []string{"a"}, 2, true)
		if err != nil {
			t.Fatal(err)
		}
		defer late.Close()
		b, err := late.Take(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		got = len(b.Events)
		return b.Reset != nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for !resets() {
		if time.Now().After(deadline) {
			t.Fatalf("resuming at 2 below floor 6 got %d events and no reset", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

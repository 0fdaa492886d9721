package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/herald-dev/herald"
	"github.com/herald-dev/herald/store"
)

// TestBurstLargerThanBufferIsCaughtUp: one transaction of 2,500 rows on a
// channel whose subscriber buffers 100 costs the subscriber nothing: the
// overflow is read back from the ring or the database, exactly once, in
// order. A subscriber that never reads is evicted.
func TestBurstLargerThanBufferIsCaughtUp(t *testing.T) {
	for _, ring := range []int{16384, 50} { // from the ring; from the database
		// StallTimeout is far above how long the reading subscriber can be
		// descheduled on a loaded 2-core machine (100 ms evicted it there);
		// the exact stall boundary is hub's TestOverflow, on a fake clock.
		n, pool, _ := setupWith(t, store.SequencerOptions{}, store.FeedOptions{MaxPending: 100, RingSize: ring, StallTimeout: 2 * time.Second})
		ctx := context.Background()
		reader, err := n.feed.Subscribe(ctx, []string{"a"}, 0, true)
		if err != nil {
			t.Fatal(err)
		}
		defer reader.Close()
		stalled, err := n.feed.Subscribe(ctx, []string{"a"}, 0, true)
		if err != nil {
			t.Fatal(err)
		}
		defer stalled.Close()
		if _, err := pool.Exec(ctx, `INSERT INTO herald.events (channel, data)
			SELECT 'a', jsonb_build_object('i', g) FROM generate_series(1, 2500) g`); err != nil {
			t.Fatal(err)
		}
		got := collect(t, reader, 2500, 60*time.Second)
		for i, ev := range got {
			if ev.Seq != int64(i+1) {
				t.Fatalf("ring %d: event %d has seq %d", ring, i, ev.Seq)
			}
		}
		if reader.Err() != nil {
			t.Fatalf("ring %d: the reading subscriber ended: %v", ring, reader.Err())
		}
		// The stalled one goes once events keep coming past StallTimeout.
		deadline := time.Now().Add(60 * time.Second)
		for stalled.Err() == nil {
			if time.Now().After(deadline) {
				t.Fatalf("ring %d: a subscriber that never reads was not evicted", ring)
			}
			if _, err := pool.Exec(ctx, `INSERT INTO herald.events (channel, data) VALUES ('a', '{}')`); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond) // pacing the writer, not waiting for readiness
		}
		if !errors.Is(stalled.Err(), herald.ErrSlow) {
			t.Fatalf("stalled subscriber ended with %v, want ErrSlow", stalled.Err())
		}
		if reader.Err() != nil {
			t.Fatalf("the reading subscriber was evicted too: %v", reader.Err())
		}
	}
}

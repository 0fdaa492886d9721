package hub

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-dev/herald"
)

// TestOverflow: a burst larger than MaxPending costs a reading subscriber
// nothing (what overflowed is re-read from the ring, or from the log when
// the ring no longer holds it, exactly once and in order), while one that
// does not come back for its overflow within StallTimeout is evicted with
// ErrSlow once more events arrive. The eviction hook and the OnEnd
// callback run outside the hub's lock.
func TestOverflow(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ring     int
		fromRing bool // the re-read is served by the ring
	}{
		{"ring holds the burst", 16384, true},
		{"ring smaller than the burst", 50, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newFakeLog("e1")
			var evicts, ringReplays, logReplays atomic.Int64
			var hookUnlocked atomic.Bool
			hookUnlocked.Store(true)
			var h *Hub
			h = startHub(l, Options{MaxPending: 100, RingSize: tc.ring, StallTimeout: time.Second,
				OnEvict: func() { evicts.Add(1); hookUnlocked.Store(hookUnlocked.Load() && unlocked(h)) },
				OnReplay: func(fromRing bool, _ int) {
					if fromRing {
						ringReplays.Add(1)
					} else {
						logReplays.Add(1)
					}
				},
			})
			clk := newClock().install(h)
			ctx := context.Background()
			reader, err := h.SubscribeAt(ctx, []string{"a"}, herald.Cursor{}, false)
			if err != nil {
				t.Fatal(err)
			}
			defer reader.Close()
			stalled, err := h.SubscribeAt(ctx, []string{"a"}, herald.Cursor{}, false)
			if err != nil {
				t.Fatal(err)
			}
			defer stalled.Close()
			endUnlocked := make(chan bool, 1)
			stalled.OnEnd(func() { endUnlocked <- unlocked(h) })

			// The burst arrives in one go (the clock does not move):
			// both overflow, nobody is evicted.
			l.add("a", 2500)
			follow(h, l, 1000)
			if reader.Err() != nil || stalled.Err() != nil {
				t.Fatalf("evicted by a burst alone: %v, %v", reader.Err(), stalled.Err())
			}
			got := takeAll(t, reader, 0, 2500, func(int64) bool { return true })
			if len(got) != 2500 {
				t.Fatalf("reader got %d events, want 2500", len(got))
			}
			if tc.fromRing && logReplays.Load() != 0 {
				t.Fatalf("%d replays from the log; the ring held the burst", logReplays.Load())
			}
			if !tc.fromRing && logReplays.Load() == 0 {
				t.Fatalf("no replay from the log; the ring of %d cannot hold the burst", tc.ring)
			}

			// Past StallTimeout, the next event evicts the one that never
			// came back, and only it.
			clk.advance(2 * time.Second)
			l.add("a", 1)
			follow(h, l, 1000)
			if !errors.Is(stalled.Err(), herald.ErrSlow) {
				t.Fatalf("stalled subscriber: %v, want ErrSlow", stalled.Err())
			}
			select {
			case <-stalled.Done():
			default:
				t.Fatal("stalled subscriber ended without closing Done")
			}
			if reader.Err() != nil {
				t.Fatalf("the reading subscriber was evicted too: %v", reader.Err())
			}
			if n := evicts.Load(); n != 1 {
				t.Fatalf("OnEvict ran %d times, want 1", n)
			}
			if !hookUnlocked.Load() {
				t.Fatal("OnEvict ran under the hub's lock")
			}
			if ok := <-endUnlocked; !ok {
				t.Fatal("OnEnd ran under the hub's lock")
			}
			if got := takeAll(t, reader, 2500, 2501, func(int64) bool { return true }); len(got) != 1 {
				t.Fatalf("reader after the eviction: %d events, want 1", len(got))
			}
		})
	}
}

// TestConcurrentDelivery: subscribers joining at random cursors (in the
// ring, below it, live) while events are dispatched, and reading while
// their queues overflow, each get every event of their channel after their
// cursor exactly once, in order. Run with -race.
func TestConcurrentDelivery(t *testing.T) {
	l := newFakeLog("e1")
	l.add("a", 300)
	l.add("b", 300)
	h := startHub(l, Options{MaxPending: 8, RingSize: 256, StallTimeout: time.Hour})
	const total = 3000
	channels := func(seq int64) string {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.events[seq-1].Channel
	}
	stop := make(chan struct{})
	go func() { // the follower: dispatches until the subscribers are done
		for h.Head() < total {
			n := min(1+rand.IntN(40), total-int(l.head()))
			l.add([]string{"a", "b"}[rand.IntN(2)], n)
			follow(h, l, 16)
		}
		close(stop)
	}()
	t.Run("subscribers", func(t *testing.T) {
		for i := range 16 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				ch := []string{"a", "b"}[i%2]
				from := rand.Int64N(600)
				hasCursor := i%4 != 3
				sub, err := h.SubscribeAt(context.Background(), []string{ch}, herald.Cursor{Epoch: "e1", Seq: from}, hasCursor)
				if err != nil {
					t.Fatal(err)
				}
				defer sub.Close()
				if c, ok := sub.Opening(); ok {
					from = c.Seq
				}
				takeAll(t, sub, from, total, func(seq int64) bool { return channels(seq) == ch })
			})
		}
	})
	<-stop
}

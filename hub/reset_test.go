package hub

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/herald-dev/herald"
)

// TestSubscribeReset: where a cursor cannot be served, the first batch is
// a reset to the head, with no events before it; where it can, the events
// after it follow. The log is at e1.100 with history below 40 dropped; the
// hub's ring still holds all of it, and must not say otherwise.
func TestSubscribeReset(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cursor    herald.Cursor
		logAhead  int   // events the log has that the hub has not seen
		reset     bool  // the first batch is a reset to the head
		firstSeq  int64 // else: the first event handed out
		wantCount int
	}{
		{name: "at the floor", cursor: herald.Cursor{Epoch: "e1", Seq: 39}, firstSeq: 40, wantCount: 61},
		{name: "below the floor, ring still holds it", cursor: herald.Cursor{Epoch: "e1", Seq: 38}, reset: true},
		{name: "zero", cursor: herald.Cursor{Epoch: "e1", Seq: 0}, reset: true},
		{name: "bare seq taken as current epoch", cursor: herald.Cursor{Seq: 90}, firstSeq: 91, wantCount: 10},
		{name: "another epoch", cursor: herald.Cursor{Epoch: "old", Seq: 90}, reset: true},
		{name: "ahead of the log", cursor: herald.Cursor{Epoch: "e1", Seq: 150}, reset: true},
		{name: "ahead of this hub, not of the log", cursor: herald.Cursor{Epoch: "e1", Seq: 103}, logAhead: 5},
		{name: "at the head", cursor: herald.Cursor{Epoch: "e1", Seq: 100}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newFakeLog("e1")
			l.add("a", 100)
			h := startHub(l, Options{})
			follow(h, l, 1000)
			l.retain(40)
			follow(h, l, 1000) // the hub learns the floor
			l.add("a", tc.logAhead)
			sub, err := h.SubscribeAt(context.Background(), []string{"a"}, tc.cursor, true)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			// Opening knows a reset only when it is decided at once (another
			// epoch, ahead of the log); below the floor it shows when read.
			c, ok := sub.Opening()
			if !ok && !tc.reset {
				t.Fatal("Opening says reset; want none")
			}
			b, err := sub.Take(context.Background(), 1000)
			if err != nil {
				t.Fatal(err)
			}
			if tc.reset {
				want := herald.Cursor{Epoch: "e1", Seq: 100}
				if b.Reset == nil || b.Reset.Head != want || b.Cursor != 100 || len(b.Events) != 0 {
					t.Fatalf("got reset %v, cursor %d, %d events; want a reset to %s alone", b.Reset, b.Cursor, len(b.Events), want)
				}
				// Then it goes on live from the head.
				l.add("a", 1)
				follow(h, l, 1000)
				if got := takeAll(t, sub, 100, 101, func(int64) bool { return true }); len(got) != 1 || got[0].Seq != 101 {
					t.Fatalf("after the reset: %d events", len(got))
				}
				return
			}
			if b.Reset != nil {
				t.Fatalf("reset %v, want none", b.Reset)
			}
			if c.Seq != tc.cursor.Seq || c.Epoch != "e1" {
				t.Fatalf("opening %s, want e1.%d", c, tc.cursor.Seq)
			}
			if len(b.Events) != tc.wantCount || (tc.wantCount > 0 && b.Events[0].Seq != tc.firstSeq) {
				t.Fatalf("%d events, want %d from %d", len(b.Events), tc.wantCount, tc.firstSeq)
			}
		})
	}
}

// TestForkWhileSubscribed: when history forks (the database restored or
// promoted: a new epoch, the head going back), every subscription ends with
// ErrEpochChanged, its OnEnd outside the hub's lock, and a client coming
// back with its old cursor is reset to the new history's head.
func TestForkWhileSubscribed(t *testing.T) {
	l := newFakeLog("e1")
	l.add("a", 50)
	h := startHub(l, Options{})
	follow(h, l, 1000)
	live, err := h.SubscribeAt(context.Background(), []string{"a"}, herald.Cursor{Epoch: "e1", Seq: 50}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	endUnlocked := make(chan bool, 1)
	live.OnEnd(func() { endUnlocked <- unlocked(h) })

	l.fork("e2", 30) // restored from a backup at 30
	l.add("a", 5)    // new events reuse seqs 31-35
	follow(h, l, 1000)
	if !errors.Is(live.Err(), herald.ErrEpochChanged) {
		t.Fatalf("live subscription: %v, want ErrEpochChanged", live.Err())
	}
	if !<-endUnlocked {
		t.Fatal("OnEnd ran under the hub's lock")
	}
	if p := h.Position(); p != (herald.Cursor{Epoch: "e2", Seq: 35}) {
		t.Fatalf("hub at %s, want e2.35", p)
	}
	back, err := h.SubscribeAt(context.Background(), []string{"a"}, herald.Cursor{Epoch: "e1", Seq: 50}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	b, err := back.Take(context.Background(), 100)
	if err != nil || b.Reset == nil || b.Reset.Head != (herald.Cursor{Epoch: "e2", Seq: 35}) || len(b.Events) != 0 {
		t.Fatalf("old cursor after the fork: %+v, %v; want a reset to e2.35", b, err)
	}
}

// TestForkDuringBacklog: a fork the hub has not seen yet, found by a
// subscriber's backlog read from the log, ends that read with
// ErrEpochChanged instead of handing out another history's events.
func TestForkDuringBacklog(t *testing.T) {
	l := newFakeLog("e1")
	l.add("a", 100)
	h := startHub(l, Options{RingSize: 10}) // the backlog is read from the log
	follow(h, l, 1000)
	sub, err := h.SubscribeAt(context.Background(), []string{"a"}, herald.Cursor{Epoch: "e1", Seq: 20}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	l.fork("e2", 60)
	if b, err := sub.Take(context.Background(), 100); !errors.Is(err, herald.ErrEpochChanged) || len(b.Events) != 0 {
		t.Fatalf("backlog across a fork: %d events, %v; want ErrEpochChanged", len(b.Events), err)
	}
}

// TestAwaitEpoch: a cursor of the epoch the log has but this hub has not
// seen yet (a client moving to a replica right after a fork) waits for the
// hub to catch up rather than being reset.
func TestAwaitEpoch(t *testing.T) {
	l := newFakeLog("e1")
	l.add("a", 10)
	h := startHub(l, Options{})
	follow(h, l, 1000)
	l.fork("e2", 10)
	l.add("a", 5)
	type result struct {
		sub herald.Subscription
		err error
	}
	done := make(chan result, 1)
	go func() {
		sub, err := h.SubscribeAt(context.Background(), []string{"a"}, herald.Cursor{Epoch: "e2", Seq: 12}, true)
		done <- result{sub, err}
	}()
	follow(h, l, 1000) // the hub sees the fork
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.sub.Close()
	if r.sub.Epoch() != "e2" {
		t.Fatalf("subscribed in %q, want e2", r.sub.Epoch())
	}
	if got := takeAll(t, r.sub, 12, 15, func(int64) bool { return true }); len(got) != 3 || got[0].Seq != 13 {
		t.Fatalf("%d events after e2.12, want 13-15", len(got))
	}
}

// TestGapAndStop: a dispatch that skips seqs (the log dropped history the
// hub never saw) ends every subscription with ErrGap; Stop ends them with
// ErrStopped and refuses new ones.
func TestGapAndStop(t *testing.T) {
	l := newFakeLog("e1")
	l.add("a", 10)
	h := startHub(l, Options{})
	follow(h, l, 1000)
	sub, err := h.SubscribeAt(context.Background(), []string{"a"}, herald.Cursor{}, false)
	if err != nil {
		t.Fatal(err)
	}
	l.add("a", 10)
	l.mu.Lock()
	skipped := l.events[15:] // 16-20: 11-15 never reached the hub
	l.mu.Unlock()
	if !h.Dispatch(skipped) {
		t.Fatal("Dispatch did not report the gap")
	}
	if !errors.Is(sub.Err(), herald.ErrGap) {
		t.Fatalf("after a gap: %v, want ErrGap", sub.Err())
	}

	other, err := h.SubscribeAt(context.Background(), []string{"a"}, herald.Cursor{}, false)
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan struct{})
	other.OnEnd(func() { close(ended) })
	h.Stop()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("OnEnd did not run on Stop")
	}
	if !errors.Is(other.Err(), herald.ErrStopped) {
		t.Fatalf("after Stop: %v, want ErrStopped", other.Err())
	}
	if _, err := h.SubscribeAt(context.Background(), []string{"a"}, herald.Cursor{}, false); !errors.Is(err, herald.ErrStopped) {
		t.Fatalf("subscribe after Stop: %v, want ErrStopped", err)
	}
}

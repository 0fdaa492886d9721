package hub

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-dev/herald"
)

// ready reports whether sub's Ready has a signal waiting, taking it.
func ready(sub herald.Subscription) bool {
	select {
	case <-sub.Ready():
		return true
	default:
		return false
	}
}

// TestOnReady: a Dispatch that queues events for a subscription with an
// OnReady callback calls it once, outside the hub's lock, instead of
// signalling Ready; a callback that declines gets the Ready signal; TakeLive
// hands out live events only, and declines (changing nothing) while a
// backlog, an overflow, a reset or the end is Take's to hand out.
func TestOnReady(t *testing.T) {
	ctx := context.Background()
	l := newFakeLog("e1")
	h := startHub(l, Options{MaxPending: 8, StallTimeout: time.Hour})

	t.Run("called once per dispatch, outside the lock", func(t *testing.T) {
		sub, err := h.SubscribeAt(ctx, []string{"a", "b"}, herald.Cursor{}, false)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		s := sub.(*Subscription)
		ready(sub) // the subscribe's own signal
		var calls atomic.Int64
		var got []*herald.Event
		s.OnReady(func() bool {
			calls.Add(1)
			if !unlocked(h) {
				t.Error("OnReady ran under the hub's lock")
			}
			b, ok := s.TakeLive(64)
			if !ok {
				t.Error("TakeLive declined a live subscription")
			}
			got = append(got, b.Events...)
			return true
		})
		// One dispatch with events on both of its channels.
		h.Dispatch(append(l.add("a", 2), l.add("b", 1)...))
		if calls.Load() != 1 || len(got) != 3 || ready(sub) {
			t.Fatalf("%d calls, %d events, Ready signalled %v; want 1 call, 3 events, no signal", calls.Load(), len(got), ready(sub))
		}
		follow(h, l, 100)
	})

	t.Run("a declined call signals Ready, and Take hands the events out", func(t *testing.T) {
		sub, err := h.SubscribeAt(ctx, []string{"a"}, herald.Cursor{}, false)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		ready(sub)
		sub.(*Subscription).OnReady(func() bool { return false })
		l.add("a", 2)
		follow(h, l, 100)
		if !ready(sub) {
			t.Fatal("a declined callback left Ready unsignalled")
		}
		takeAll(t, sub, h.Head()-2, h.Head(), func(int64) bool { return true })
	})

	t.Run("TakeLive declines a backlog, an overflow, a reset and the end", func(t *testing.T) {
		l.add("a", 3)
		follow(h, l, 100)
		head := h.Head()
		backlog, err := h.SubscribeAt(ctx, []string{"a"}, herald.Cursor{Epoch: "e1", Seq: head - 3}, true)
		if err != nil {
			t.Fatal(err)
		}
		defer backlog.Close()
		if _, ok := backlog.(*Subscription).TakeLive(64); ok {
			t.Error("TakeLive took a subscription with a backlog")
		}
		takeAll(t, backlog, head-3, head, func(int64) bool { return true }) // nothing was lost to the refusal

		reset, err := h.SubscribeAt(ctx, []string{"a"}, herald.Cursor{Epoch: "other", Seq: 1}, true)
		if err != nil {
			t.Fatal(err)
		}
		defer reset.Close()
		if _, ok := reset.(*Subscription).TakeLive(64); ok {
			t.Error("TakeLive took a subscription owed a reset")
		}
		if b, _ := reset.Take(ctx, 64); b.Reset == nil {
			t.Error("the reset was lost to TakeLive")
		}

		over, err := h.SubscribeAt(ctx, []string{"a"}, herald.Cursor{}, false)
		if err != nil {
			t.Fatal(err)
		}
		defer over.Close()
		from := h.Head()
		l.add("a", 20) // over MaxPending
		follow(h, l, 100)
		if _, ok := over.(*Subscription).TakeLive(64); ok {
			t.Error("TakeLive took an overflowed subscription")
		}
		takeAll(t, over, from, h.Head(), func(int64) bool { return true })

		over.Close()
		if _, ok := over.(*Subscription).TakeLive(64); ok {
			t.Error("TakeLive took an ended subscription")
		}
	})
}

package store

import (
	"testing"
	"time"

	"github.com/herald-dev/herald"
)

// TestVouchWatch: a watch starts only on a fresh matching look, a look that
// agrees keeps the watcher asleep, one that does not wakes it, and so do
// silence for maxAge and nothing after stop.
func TestVouchWatch(t *testing.T) {
	at := herald.Cursor{Epoch: "e1", Seq: 10}
	woken := func() (func(), <-chan struct{}) {
		ch := make(chan struct{}, 4)
		return func() { ch <- struct{}{} }, ch
	}
	expectWake := func(t *testing.T, ch <-chan struct{}, within time.Duration) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(within):
			t.Fatalf("not woken within %v", within)
		}
	}
	expectNoWake := func(t *testing.T, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
			t.Fatal("woken")
		default:
		}
	}

	t.Run("no look, stale look, other head", func(t *testing.T) {
		var v vouch
		wake, _ := woken()
		if _, ok := v.watch(at, 0, time.Second, time.Hour, wake); ok {
			t.Fatal("watched with no look")
		}
		v.store(logState{head: at, at: time.Now().Add(-2 * time.Second)})
		if _, ok := v.watch(at, 0, time.Second, time.Hour, wake); ok {
			t.Fatal("watched on a look older than fresh")
		}
		v.store(logState{head: at, floor: 3, at: time.Now()})
		if _, ok := v.watch(at, 0, time.Second, time.Hour, wake); ok {
			t.Fatal("watched on a look with another floor")
		}
		if _, ok := v.watch(herald.Cursor{Epoch: "e2", Seq: 10}, 3, time.Second, time.Hour, wake); ok {
			t.Fatal("watched on a look in another epoch")
		}
	})
	t.Run("agreeing looks keep it asleep, a moved log wakes it", func(t *testing.T) {
		var v vouch
		v.store(logState{head: at, at: time.Now()})
		wake, ch := woken()
		stop, ok := v.watch(at, 0, time.Second, time.Hour, wake)
		if !ok {
			t.Fatal("no watch on a fresh matching look")
		}
		defer stop()
		for range 3 {
			v.store(logState{head: at, at: time.Now()})
		}
		expectNoWake(t, ch)
		v.store(logState{head: herald.Cursor{Epoch: "e1", Seq: 9}, at: time.Now()})
		expectWake(t, ch, time.Second)
		v.store(logState{head: herald.Cursor{Epoch: "e1", Seq: 8}, at: time.Now()})
		expectNoWake(t, ch) // once
	})
	t.Run("silence wakes it", func(t *testing.T) {
		var v vouch
		v.store(logState{head: at, at: time.Now()})
		wake, ch := woken()
		stop, ok := v.watch(at, 0, time.Second, 20*time.Millisecond, wake)
		if !ok {
			t.Fatal("no watch")
		}
		defer stop()
		expectWake(t, ch, 10*time.Second)
	})
	t.Run("stopped, it stays asleep", func(t *testing.T) {
		var v vouch
		v.store(logState{head: at, at: time.Now()})
		wake, ch := woken()
		stop, _ := v.watch(at, 0, time.Second, 20*time.Millisecond, wake)
		stop()
		v.store(logState{head: herald.Cursor{Epoch: "e9", Seq: 1}, at: time.Now()})
		time.Sleep(60 * time.Millisecond) // past maxAge: the timer must not fire
		expectNoWake(t, ch)
	})
}

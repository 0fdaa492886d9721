package store

import (
	"testing"
	"time"
)

// TestNextGap: the ticking sequencer's wait halves after a step of several
// rows, doubles after an empty one, holds after one row, and stays between
// minGap and the tick (or at the tick when the tick is shorter than minGap).
func TestNextGap(t *testing.T) {
	const ms = time.Millisecond
	for _, c := range []struct {
		gap  time.Duration
		n    int
		tick time.Duration
		want time.Duration
	}{
		{4 * ms, 0, 10 * ms, 8 * ms},
		{8 * ms, 0, 10 * ms, 10 * ms}, // capped at the tick
		{10 * ms, 0, 10 * ms, 10 * ms},
		{4 * ms, 1, 10 * ms, 4 * ms},
		{4 * ms, 2, 10 * ms, 2 * ms},
		{4 * ms, 499, 10 * ms, 2 * ms},
		{ms, 3, 10 * ms, ms}, // floored at minGap
		{0, 1, 10 * ms, ms},  // from asleep: the shortest wait
		{0, 0, 10 * ms, ms},
		{ms, 0, ms, ms}, // --sequencer-tick 1ms: a fixed tick
		{ms, 5, ms, ms},
		{500 * time.Microsecond, 0, 500 * time.Microsecond, 500 * time.Microsecond}, // a tick under minGap wins
		{time.Second, 0, time.Second, time.Second},
	} {
		if got := nextGap(c.gap, c.n, c.tick); got != c.want {
			t.Errorf("nextGap(%v, %d, %v) = %v, want %v", c.gap, c.n, c.tick, got, c.want)
		}
	}
}

// TestCrowded: one crowded wake-up among quiet ones does not start the
// ticking; a run of them does, and quiet ones bring the share back down.
func TestCrowded(t *testing.T) {
	var w waker
	if w.crowded(true) {
		t.Fatal("one crowded wake-up started the ticking")
	}
	for range 20 {
		if w.crowded(false) {
			t.Fatal("quiet wake-ups started the ticking")
		}
	}
	// Every fifth wake-up crowded (200 events/s against a 1 ms step):
	// stays asleep.
	for i := range 100 {
		if w.crowded(i%5 == 0) {
			t.Fatalf("one crowded wake-up in five started the ticking after %d", i)
		}
	}
	// All crowded: ticks within a few.
	got := 0
	for i := 1; i <= 20; i++ {
		if w.crowded(true) {
			got = i
			break
		}
	}
	if got == 0 || got > 8 {
		t.Fatalf("a run of crowded wake-ups started the ticking after %d (want 1 to 8)", got)
	}
}

// TestSlowed: a ticking sequencer falls asleep after sleepAfter without a
// row, or after a window with fewer than slowRows; a window with bulkRows
// or more marks the flow bulk, and the next window can clear it.
func TestSlowed(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	type step struct {
		at    time.Duration
		n     int
		sleep bool
		bulk  bool
	}
	for _, c := range []struct {
		name  string
		steps []step
	}{
		{"a lull of sleepAfter", []step{
			{5 * time.Millisecond, 3, false, false},
			{20 * time.Millisecond, 0, false, false},
			{5*time.Millisecond + sleepAfter, 0, true, false},
		}},
		{"a row within sleepAfter keeps it ticking", []step{
			{10 * time.Millisecond, 4, false, false},
			{30 * time.Millisecond, 4, false, false},
			{55 * time.Millisecond, 4, false, false},
			{slowWindow, 1, false, false}, // 13 rows in the window
		}},
		{"a slow window", []step{
			{10 * time.Millisecond, 1, false, false},
			{35 * time.Millisecond, 1, false, false},
			{60 * time.Millisecond, 1, false, false},
			{85 * time.Millisecond, 1, false, false},
			{slowWindow, 1, true, false},
		}},
		{"a bulk window, then a fast one", []step{
			{50 * time.Millisecond, bulkRows / 2, false, false},
			{slowWindow, bulkRows / 2, false, true},
			{slowWindow + 10*time.Millisecond, 50, false, true}, // kept until the window ends
			{2 * slowWindow, 50, false, false},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := waker{lastRow: t0, window: t0}
			for i, s := range c.steps {
				if got := w.slowed(s.n, at(s.at)); got != s.sleep {
					t.Fatalf("step %d (%v, %d rows): sleep %v, want %v", i, s.at, s.n, got, s.sleep)
				}
				if w.bulk != s.bulk {
					t.Fatalf("step %d (%v, %d rows): bulk %v, want %v", i, s.at, s.n, w.bulk, s.bulk)
				}
			}
		})
	}
}

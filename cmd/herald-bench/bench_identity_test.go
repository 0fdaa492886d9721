package main

import (
	"fmt"
	"sync/atomic"
	"testing"
)

// A subscriber that gets event 1 twice and never event 3 has one
// duplicate and one missing: the duplicate neither counts as a delivery
// nor makes up for the loss (expected minus received would say 0).
func TestBenchDuplicatesCountedApartFromMissing(t *testing.T) {
	var run atomic.Int64
	run.Store(7)
	r := &recorder{run: &run}
	for _, n := range []int{0, 1, 1, 2} {
		r.record(fmt.Appendf(nil, `{"t":1,"n":%d,"r":7,"w":0}`, n))
	}
	r.record([]byte(`{"t":1,"n":3,"r":6,"w":0}`)) // another run's event: ignored
	pub := newPublishedSet()
	for i := range 4 {
		pub.mark(i)
	}
	tally := r.takeRun()
	if tally.count != 3 || tally.dup != 1 || len(tally.lat) != 3 {
		t.Errorf("tally %+v: want 3 distinct deliveries with 3 latencies and 1 duplicate", tally)
	}
	if m := pub.missing(tally.seen, func(int) bool { return true }); m != 1 {
		t.Errorf("missing %d, want 1 (event 3)", m)
	}
	// Only events for the subscriber's own channel are expected of it.
	if m := pub.missing(tally.seen, func(i int) bool { return i != 3 }); m != 0 {
		t.Errorf("missing %d with event 3 on another channel, want 0", m)
	}
	if again := r.takeRun(); again.count != 0 || again.dup != 0 || len(again.seen) != 0 {
		t.Errorf("takeRun did not reset: %+v", again)
	}
}

// The feed scenario keeps a sample where the feed saw the event before
// Append returned as the negative number it is, and counts it.
func TestBenchFeedSamplesKeepNegatives(t *testing.T) {
	committed := make([]atomic.Int64, 4)
	committed[0].Store(100)
	committed[1].Store(100)
	committed[2].Store(100) // never seen: missing
	// committed[3] unset: not published, not missing
	seen := []int64{150, 90, 0, 0}
	started := []int64{50, 50, 50, 50}
	c2f, p2f, missing, negative := feedSamples(committed, seen, started)
	if fmt.Sprint(c2f) != "[50 -10]" || fmt.Sprint(p2f) != "[100 40]" || missing != 1 || negative != 1 {
		t.Errorf("c2f %v p2f %v missing %d negative %d; want [50 -10] [100 40] 1 1", c2f, p2f, missing, negative)
	}
}

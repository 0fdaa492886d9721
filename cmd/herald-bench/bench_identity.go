package main

import "sync"

// runTally is one subscriber's deliveries in one run, by event identity:
// the payload's n, unique within a run. A duplicate is counted on its own
// and never as a delivery, so a replayed event cannot make up for a lost
// one: missing is worked out from the identities delivered, not as
// expected minus received.
type runTally struct {
	lat   []int64        // latency of each first delivery, nanoseconds
	count int64          // distinct events delivered
	seen  map[int64]bool // their n
	dup   int64          // deliveries of an n already delivered
}

// firstDelivery records event n for the current run and reports whether it
// is its first delivery; a repeat is counted as a duplicate. Call with
// s.mu held.
func (s *recorder) firstDelivery(n int64) bool {
	if s.seen == nil {
		s.seen = map[int64]bool{}
	}
	if s.seen[n] {
		s.dup++
		return false
	}
	s.seen[n] = true
	return true
}

// takeRun returns and resets the run's tally.
func (s *recorder) takeRun() runTally {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := runTally{lat: s.lat, seen: s.seen, dup: s.dup}
	s.lat, s.seen, s.dup = nil, nil, 0
	t.count = s.count.Swap(0)
	return t
}

// publishedSet is which event numbers a run published (the publishing
// call returned success), safe for the publishers to mark concurrently.
type publishedSet struct {
	mu sync.Mutex
	ok map[int]bool
}

func newPublishedSet() *publishedSet { return &publishedSet{ok: map[int]bool{}} }

func (p *publishedSet) mark(i int) {
	p.mu.Lock()
	p.ok[i] = true
	p.mu.Unlock()
}

// missing counts the published events that a subscriber expected (those
// for which wants returns true) and whose identity it never received.
func (p *publishedSet) missing(seen map[int64]bool, wants func(i int) bool) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var m int64
	for i := range p.ok {
		if wants(i) && !seen[int64(i)] {
			m++
		}
	}
	return m
}

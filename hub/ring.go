package hub

import "github.com/herald-dev/herald"

// ring holds the most recent events of all channels, contiguous by seq, so
// replays after a deploy or a blip are served from memory.
type ring struct {
	buf   []*herald.Event
	first int64 // seq of the oldest event held; 0 when empty
	last  int64 // seq of the newest event held
}

func newRing(size int) *ring { return &ring{buf: make([]*herald.Event, size)} }

// add appends ev, which must be last+1 (or anything when empty).
func (r *ring) add(ev *herald.Event) {
	if len(r.buf) == 0 {
		return
	}
	if r.first == 0 || ev.Seq != r.last+1 {
		r.first = ev.Seq
	} else if ev.Seq-r.first >= int64(len(r.buf)) {
		r.first++
	}
	r.last = ev.Seq
	r.buf[ev.Seq%int64(len(r.buf))] = ev
}

// clear forgets everything (the feed saw a gap it cannot vouch for).
func (r *ring) clear() { r.first, r.last = 0, 0 }

// covers reports whether every event with seq > cursor up to the newest is
// held.
func (r *ring) covers(cursor int64) bool {
	return r.first != 0 && cursor+1 >= r.first && cursor <= r.last
}

// collect appends to out up to limit events after cursor, up to upto,
// matching m. It returns the events and the seq it scanned to.
func (r *ring) collect(out []*herald.Event, cursor, upto int64, m matcher, limit int) ([]*herald.Event, int64) {
	upto = min(upto, r.last)
	scanned := cursor
	for seq := cursor + 1; seq <= upto; seq++ {
		ev := r.buf[seq%int64(len(r.buf))]
		scanned = seq
		if m.match(ev.Channel) {
			out = append(out, ev)
			if len(out) >= limit {
				break
			}
		}
	}
	return out, scanned
}

// matcher tests channel membership: a slice for the common few channels,
// a set for many.
type matcher struct {
	list []string
	set  map[string]struct{}
}

func newMatcher(channels []string) matcher {
	if len(channels) <= 8 {
		return matcher{list: channels}
	}
	set := make(map[string]struct{}, len(channels))
	for _, c := range channels {
		set[c] = struct{}{}
	}
	return matcher{set: set}
}

func (m matcher) match(ch string) bool {
	if m.set != nil {
		_, ok := m.set[ch]
		return ok
	}
	for _, c := range m.list {
		if c == ch {
			return true
		}
	}
	return false
}

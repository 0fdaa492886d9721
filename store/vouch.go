package store

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-dev/herald"
)

// logState is the log's head and floor as read from sequencer_state at a
// moment.
type logState struct {
	head  herald.Cursor
	floor int64
	at    time.Time // taken before the read: the state is at least this new
}

// vouch is how an asleep leader's safety-net look spares its own process's
// feed the same look. Idle, each replica's feed read the log once a second
// and the leader looked at the inbox once a second: two wake-ups of herald
// and of two Postgres backends per second where one does. The leader's
// look now reads sequencer_state in the same round trip and leaves it
// here. A feed of the same DB whose hub is at exactly that head, epoch and
// floor skips its read, and while the looks keep finding the log there it
// does not even wake (watch).
//
// That is no weaker than the read it replaces. The state is read from the
// database, not taken from the sequencer's memory, so a history restored
// under a running herald (another epoch, a head that went back) or a floor
// moved by retention is still seen, one safety net later at most. Rows
// sequenced after the read come with a notice on the feed's LISTEN
// connection, which Postgres does not drop while the session lives; a feed
// whose session ended catches up when it reconnects.
type vouch struct {
	last atomic.Pointer[logState]

	mu sync.Mutex
	w  *vouchWatch // the feed waiting on the looks, if any
}

type vouchWatch struct {
	head   herald.Cursor
	floor  int64
	maxAge time.Duration
	timer  *time.Timer // wakes the watcher when no look came within maxAge
	wake   func()
}

// store records a look's state, and wakes the watcher if it shows the log
// elsewhere than the watcher is.
func (v *vouch) store(s logState) {
	v.last.Store(&s)
	v.mu.Lock()
	defer v.mu.Unlock()
	w := v.w
	switch {
	case w == nil:
	case s.head == w.head && s.floor == w.floor:
		w.timer.Reset(w.maxAge)
	default:
		v.w = nil
		w.timer.Stop()
		w.wake()
	}
}

// covers reports whether a state read within maxAge shows the log at head
// with floor.
func (v *vouch) covers(head herald.Cursor, floor int64, maxAge time.Duration) bool {
	s := v.last.Load()
	return s != nil && time.Since(s.at) <= maxAge && s.head == head && s.floor == floor
}

// watch calls wake (once, and it must not block) when a look finds the log
// anywhere but at head with floor, or when no look comes for maxAge. It
// watches only if the last look, within fresh, found the log there, and
// reports whether it does; the check and the registration are one step
// under mu, so no look falls between them. The returned stop ends the
// watch; one watch at a time (a DB has one feed).
func (v *vouch) watch(head herald.Cursor, floor int64, fresh, maxAge time.Duration, wake func()) (stop func(), ok bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.covers(head, floor, fresh) {
		return nil, false
	}
	w := &vouchWatch{head: head, floor: floor, maxAge: maxAge, wake: wake}
	w.timer = time.AfterFunc(maxAge, func() {
		v.mu.Lock()
		if v.w == w {
			v.w = nil
		}
		v.mu.Unlock()
		wake()
	})
	v.w = w
	return func() {
		v.mu.Lock()
		if v.w == w {
			v.w = nil
		}
		v.mu.Unlock()
		w.timer.Stop()
	}, true
}

package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-dev/herald"
)

// fakeLog is an in-memory event log with store.DB's After and State
// semantics: dense seqs from 1, a retention floor, and an epoch that a
// fork replaces (with history cut back to a given head).
type fakeLog struct {
	mu     sync.Mutex
	epoch  string
	events []*herald.Event // events[i].Seq == i+1
	floor  int64           // lowest retained seq
	reads  atomic.Int64    // After calls
}

func newFakeLog(epoch string) *fakeLog { return &fakeLog{epoch: epoch, floor: 1} }

// add appends n events on channel and returns them.
func (l *fakeLog) add(channel string, n int) []*herald.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*herald.Event, 0, n)
	for range n {
		seq := int64(len(l.events) + 1)
		ev := &herald.Event{Epoch: l.epoch, Seq: seq, Channel: channel, Type: "t",
			Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, seq)), At: time.Unix(seq, 0)}
		ev.JSON()
		l.events = append(l.events, ev)
		out = append(out, ev)
	}
	return out
}

// retain drops everything below floor, as retention does.
func (l *fakeLog) retain(floor int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.floor = floor
}

// fork starts a new history: epoch, with the events after head gone (a
// restore from a backup taken at head).
func (l *fakeLog) fork(epoch string, head int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.epoch = epoch
	l.events = l.events[:head]
	for i, ev := range l.events {
		cp := *ev
		cp.Epoch = epoch
		l.events[i] = &cp
	}
}

func (l *fakeLog) head() int64 { return int64(len(l.events)) }

func (l *fakeLog) After(ctx context.Context, cursor int64, channels []string, upto int64, limit int) (Page, error) {
	l.reads.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	p := Page{Epoch: l.epoch, Floor: l.floor, Head: l.head()}
	if upto <= 0 || upto > p.Head {
		upto = p.Head
	}
	for seq := max(cursor+1, l.floor); seq <= upto && len(p.Events) < limit; seq++ {
		ev := l.events[seq-1]
		for _, ch := range channels {
			if ev.Channel == ch {
				p.Events = append(p.Events, ev)
				break
			}
		}
	}
	if cursor+1 < p.Floor {
		return p, &herald.ResetError{Head: herald.Cursor{Epoch: p.Epoch, Seq: p.Head}}
	}
	return p, nil
}

func (l *fakeLog) State(context.Context) (State, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return State{Epoch: l.epoch, Head: l.head(), Floor: l.floor}, nil
}

// follow does what store's LISTEN loop does on a wake-up: read after the
// hub's head, fork on a new epoch (or a head that went back), else
// dispatch in pages of fetch.
func follow(h *Hub, l *fakeLog, fetch int) {
	for {
		l.mu.Lock()
		epoch, head, floor := l.epoch, l.head(), l.floor
		from := h.Head()
		var page []*herald.Event
		if epoch == h.Epoch() && head >= from {
			page = append(page, l.events[from:min(head, from+int64(fetch))]...)
		}
		l.mu.Unlock()
		if epoch != h.Epoch() || head < from {
			h.Fork(epoch, head)
			continue
		}
		h.SetFloor(floor)
		if len(page) == 0 {
			return
		}
		h.Dispatch(page)
	}
}

// clock is a StallTimeout clock the test moves by hand.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }
func newClock() *clock                   { c := &clock{}; c.ns.Store(time.Unix(1e9, 0).UnixNano()); return c }
func (c *clock) install(h *Hub) *clock   { h.now = c.now; return c }
func startHub(l *fakeLog, opts Options) *Hub {
	h := New(l, opts)
	st, _ := l.State(context.Background())
	h.Start(st.Epoch, st.Head)
	return h
}

// unlocked reports, from a callback, whether the hub's lock is free: a
// callback run under it would find it taken.
func unlocked(h *Hub) bool {
	if !h.mu.TryLock() {
		return false
	}
	h.mu.Unlock()
	return true
}

// takeAll takes from sub until it has handed out everything up to head,
// failing on a gap, a duplicate, a reset or an error.
func takeAll(t *testing.T, sub herald.Subscription, from, head int64, want func(seq int64) bool) []*herald.Event {
	t.Helper()
	var got []*herald.Event
	last := from
	deadline := time.Now().Add(20 * time.Second)
	for last < head {
		b, err := sub.Take(context.Background(), 64)
		if err != nil || b.Reset != nil {
			t.Fatalf("take after %d: %v, reset %v", last, err, b.Reset)
		}
		for _, ev := range b.Events {
			for seq := last + 1; seq < ev.Seq; seq++ {
				if want(seq) {
					t.Fatalf("gap: %d skipped (got %d after %d)", seq, ev.Seq, last)
				}
			}
			if ev.Seq <= last || !want(ev.Seq) {
				t.Fatalf("event %d after %d: duplicate, out of order or not subscribed", ev.Seq, last)
			}
			last = ev.Seq
			got = append(got, ev)
		}
		last = max(last, b.Cursor)
		if len(b.Events) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("stuck at %d of %d", last, head)
			}
			select {
			case <-sub.Ready():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return got
}

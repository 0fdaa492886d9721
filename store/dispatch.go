package store

import "github.com/herald-dev/herald"

// fork moves the feed to a new history: epoch with head dbHead. Every
// subscriber is ended (their positions belong to the old history), the ring
// is emptied, and waiters on forked are woken.
func (f *Feed) fork(epoch string, dbHead, oldHead int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.db.log.Warn("feed: history forked; ending subscriptions", "epoch", f.epoch, "head", oldHead, "new_epoch", epoch, "new_head", dbHead)
	f.ring.clear()
	for _, set := range f.subs {
		for s := range set {
			f.dropLocked(s, herald.ErrEpochChanged)
		}
	}
	f.epoch = epoch
	f.head.Store(dbHead)
	close(f.forked)
	f.forked = make(chan struct{})
}

// dispatch appends events (consecutive seqs) to the ring and pushes each to
// the subscribers of its channel. The head moves only after the pushes, so
// a subscriber that sees head H has been given every event <= H.
func (f *Feed) dispatch(events []*herald.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if first := events[0].Seq; first != f.head.Load()+1 {
		// Retention dropped events this feed never saw (it was disconnected
		// for longer than the history). Nobody may be told "you have
		// everything up to here": evict all, they reconnect and get reset.
		f.db.log.Warn("feed: gap in the log; evicting subscribers", "head", f.head.Load(), "next", first)
		f.ring.clear()
		for _, set := range f.subs {
			for s := range set {
				f.dropLocked(s, herald.ErrGap)
			}
		}
	}
	deliveries := 0
	for _, ev := range events {
		f.ring.add(ev)
		for s := range f.subs[ev.Channel] {
			if !s.push(ev, f.opts.MaxPending) {
				f.dropLocked(s, herald.ErrSlow)
				if f.opts.OnEvict != nil {
					f.opts.OnEvict()
				}
				continue
			}
			deliveries++
		}
	}
	f.head.Store(events[len(events)-1].Seq)
	if f.opts.OnDispatch != nil {
		f.opts.OnDispatch(events, deliveries)
	}
}

// dropLocked unregisters s and ends it with err. f.mu must be held.
func (f *Feed) dropLocked(s *Subscription, err error) {
	for _, ch := range s.channels {
		if set := f.subs[ch]; set != nil {
			delete(set, s)
			if len(set) == 0 {
				delete(f.subs, ch)
			}
		}
	}
	s.end(err)
}

// stop ends every subscription; later Subscribe calls fail.
func (f *Feed) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped = true
	for _, set := range f.subs {
		for s := range set {
			f.dropLocked(s, herald.ErrStopped)
		}
	}
}

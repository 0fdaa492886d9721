package api

import (
	"container/list"
	"sync"
	"time"
)

// decisionCache holds the app's decisions, one per (credentials, channel),
// and evicts the least recently used entry when full. One decision per
// channel is what makes a key unambiguous: a channel name may contain any
// separator a joined key would use.
type decisionCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // front: most recently used; values are *cacheEntry
	byKey map[[32]byte]*list.Element
}

// decision is the app's answer about one channel for one set of credentials.
type decision struct {
	granted         bool
	unauthenticated bool
	subject         string
	expires         time.Time
}

type cacheEntry struct {
	key [32]byte
	d   decision
}

func newDecisionCache(max int) *decisionCache {
	return &decisionCache{max: max, order: list.New(), byKey: make(map[[32]byte]*list.Element)}
}

// get returns the live decision for key and marks it recently used.
func (c *decisionCache) get(key [32]byte, now time.Time) (decision, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[key]
	if !ok {
		return decision{}, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.d.expires) {
		c.order.Remove(el)
		delete(c.byKey, key)
		return decision{}, false
	}
	c.order.MoveToFront(el)
	return e.d, true
}

// put stores d under key, evicting the least recently used entries beyond max.
func (c *decisionCache) put(key [32]byte, d decision) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[key]; ok {
		el.Value.(*cacheEntry).d = d
		c.order.MoveToFront(el)
		return
	}
	c.byKey[key] = c.order.PushFront(&cacheEntry{key: key, d: d})
	for c.order.Len() > c.max {
		old := c.order.Back()
		c.order.Remove(old)
		delete(c.byKey, old.Value.(*cacheEntry).key)
	}
}

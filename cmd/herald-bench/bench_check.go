package main

import (
	"fmt"
	"strings"
)

// orderCheck is one subscriber's ledger in the resume scenario: every event
// carries a unique number n and the number w of the writer that published
// it, and each writer publishes its events one after another. A correct
// delivery has each n exactly once, ids strictly increasing, and each
// writer's events in the order it published them.
type orderCheck struct {
	seen    map[int64]bool
	lastID  []int64
	lastByW map[int64]int64

	Received   int64 // events handed to add
	Duplicate  int64 // an n seen before
	OutOfOrder int64 // id not above the previous one, or a writer's events swapped
	Resets     int64 // the server could not resume (history gone)
}

func newOrderCheck() *orderCheck {
	return &orderCheck{seen: map[int64]bool{}, lastByW: map[int64]int64{}}
}

// add records one delivered event. A duplicate counts only as a duplicate,
// not also as out of order.
func (c *orderCheck) add(id string, n, w int64) {
	c.Received++
	if c.seen[n] {
		c.Duplicate++
		return
	}
	c.seen[n] = true
	ooo := false
	parsed := parseID(id)
	if c.lastID != nil && compareIDs(parsed, c.lastID) <= 0 {
		ooo = true
	}
	c.lastID = parsed
	if prev, has := c.lastByW[w]; has && n < prev {
		ooo = true // keep the writer's highest n
	} else {
		c.lastByW[w] = n
	}
	if ooo {
		c.OutOfOrder++
	}
}

// Has reports whether event n was delivered.
func (c *orderCheck) Has(n int64) bool { return c.seen[n] }

// Missing counts the expected numbers never delivered.
func (c *orderCheck) Missing(expected []int64) int64 {
	var m int64
	for _, n := range expected {
		if !c.seen[n] {
			m++
		}
	}
	return m
}

// String is a one-line summary, for failures.
func (c *orderCheck) String() string {
	return fmt.Sprintf("received %d, duplicate %d, out of order %d, resets %d", c.Received, c.Duplicate, c.OutOfOrder, c.Resets)
}

// parseID turns an SSE id into comparable numbers: herald's "k3x9q.4711" is
// [4711] (the epoch is dropped: a bench run stays in one epoch, and seqs
// compare only within one), nchan's "1795435275:3" is [1795435275 3].
// Non-digits separate.
func parseID(id string) []int64 {
	if i := strings.LastIndexByte(id, '.'); i >= 0 {
		id = id[i+1:]
	}
	out := make([]int64, 0, 2)
	var cur int64
	in := false
	for i := 0; i < len(id); i++ {
		if ch := id[i]; ch >= '0' && ch <= '9' {
			cur = cur*10 + int64(ch-'0')
			in = true
		} else if in {
			out = append(out, cur)
			cur, in = 0, false
		}
	}
	if in {
		out = append(out, cur)
	}
	return out
}

// compareIDs orders parsed ids lexicographically: -1, 0 or 1.
func compareIDs(a, b []int64) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		switch {
		case a[i] < b[i]:
			return -1
		case a[i] > b[i]:
			return 1
		}
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}

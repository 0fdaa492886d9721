package store

import (
	"encoding/json"
	"testing"
	"time"
)

// TestRevocationsMatch: a jti revocation matches that token only; a sub
// revocation matches the subject's tokens issued at or before it (and
// those without iat), not later ones; expired revocations match nothing;
// watchers fire only for what matches.
func TestRevocationsMatch(t *testing.T) {
	now := time.Now()
	rv := newRevocations()
	notice := func(r Revocation) {
		t.Helper()
		b, _ := json.Marshal(r)
		if err := rv.apply(string(b)); err != nil {
			t.Fatal(err)
		}
	}
	fired := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	wJTI, stop1 := rv.Watch("j1", "alice", now.Add(-time.Minute))
	defer stop1()
	wOther, stop2 := rv.Watch("j2", "bob", now.Add(-time.Minute))
	defer stop2()
	wLater, stop3 := rv.Watch("j3", "carol", now.Add(time.Minute))
	defer stop3()
	wEarlier, stop4 := rv.Watch("j4", "carol", now.Add(-time.Minute))
	defer stop4()

	notice(Revocation{JTI: "j1", RevokedAt: now, ExpiresAt: now.Add(time.Hour)})
	notice(Revocation{Subject: "carol", RevokedAt: now, ExpiresAt: now.Add(time.Hour)})
	notice(Revocation{Subject: "bob", RevokedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)}) // expired

	cases := []struct {
		name     string
		jti, sub string
		iat      time.Time
		want     bool
	}{
		{"revoked jti", "j1", "alice", now.Add(-time.Minute), true},
		{"same user, another jti", "j9", "alice", now.Add(-time.Minute), false},
		{"sub, issued before", "j5", "carol", now.Add(-time.Minute), true},
		{"sub, issued at the revocation", "j5", "carol", now, true},
		{"sub, no iat", "j5", "carol", time.Time{}, true},
		{"sub, issued after", "j5", "carol", now.Add(time.Second), false},
		{"expired revocation", "j2", "bob", now.Add(-3 * time.Hour), false},
		{"no jti, no sub", "", "", time.Time{}, false},
	}
	for _, c := range cases {
		if got := rv.Revoked(c.jti, c.sub, c.iat); got != c.want {
			t.Errorf("%s: Revoked = %v, want %v", c.name, got, c.want)
		}
	}
	if !fired(wJTI) || !fired(wEarlier) || fired(wOther) || fired(wLater) {
		t.Fatalf("watchers fired: jti %v, carol earlier %v, bob %v, carol later %v; want true, true, false, false",
			fired(wJTI), fired(wEarlier), fired(wOther), fired(wLater))
	}
	// Watching an already revoked token fires at once; stopping removes
	// the watcher.
	if ch, _ := rv.Watch("j1", "", time.Time{}); !fired(ch) {
		t.Fatal("watching a revoked token did not fire at once")
	}
	stop2()
	if n := len(rv.watchers["s:bob"]); n != 0 {
		t.Fatalf("%d watchers left for bob after stop", n)
	}
	if _, ok := rv.sub["bob"]; ok {
		t.Fatal("an expired revocation is still held")
	}
}

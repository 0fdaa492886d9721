package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/herald-dev/herald"
)

// revocationsChannel is the NOTIFY channel a new revocation is announced
// on; its payload is the revocation as JSON.
const revocationsChannel = "herald_revocations"

// Revocation takes tokens back: the one whose jti is JTI, or every token of
// Subject issued at or before RevokedAt. Exactly one of JTI and Subject is
// set. It matters until ExpiresAt.
type Revocation struct {
	JTI       string    `json:"jti,omitempty"`
	Subject   string    `json:"sub,omitempty"`
	RevokedAt time.Time `json:"revoked_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// MaxRevocationID is the longest jti or sub a revocation accepts.
const MaxRevocationID = 256

// Revoke stores a revocation of jti or subject (exactly one non-empty) for
// ttl and announces it to every replica; it also deletes expired ones.
func (db *DB) Revoke(ctx context.Context, jti, subject string, ttl time.Duration) (Revocation, error) {
	if err := ValidateRevocationID(jti + subject); err != nil {
		return Revocation{}, &herald.InvalidError{Field: "body", Reason: "jti or sub " + err.Error()}
	}
	switch {
	case (jti == "") == (subject == ""):
		return Revocation{}, &herald.InvalidError{Field: "body", Reason: "name exactly one of jti and sub"}
	case ttl <= 0:
		return Revocation{}, &herald.InvalidError{Field: "ttl", Reason: "ttl must be positive"}
	}
	var r Revocation
	var jtiOut, subOut *string
	err := db.pool.QueryRow(ctx, `
		WITH gone AS (DELETE FROM herald.revocations WHERE expires_at < now()),
		ins AS (
			INSERT INTO herald.revocations (jti, sub, expires_at)
			VALUES (nullif($1, ''), nullif($2, ''), now() + $3 * interval '1 microsecond')
			RETURNING jti, sub, revoked_at, expires_at
		)
		SELECT jti, sub, revoked_at, expires_at,
		       pg_notify('`+revocationsChannel+`', json_build_object('jti', jti, 'sub', sub,
		           'revoked_at', revoked_at, 'expires_at', expires_at)::text)
		FROM ins`, jti, subject, ttl.Microseconds()).Scan(&jtiOut, &subOut, &r.RevokedAt, &r.ExpiresAt, nil)
	if err != nil {
		return Revocation{}, fmt.Errorf("revoke: %w", err)
	}
	if jtiOut != nil {
		r.JTI = *jtiOut
	}
	if subOut != nil {
		r.Subject = *subOut
	}
	return r, nil
}

// ValidateRevocationID checks a jti or sub to revoke: 1 to MaxRevocationID
// bytes of UTF-8 without control characters.
func ValidateRevocationID(v string) error {
	switch {
	case v == "":
		return errors.New("is empty")
	case len(v) > MaxRevocationID:
		return fmt.Errorf("is longer than %d bytes", MaxRevocationID)
	case !utf8.ValidString(v):
		return errors.New("is not valid UTF-8")
	case strings.IndexFunc(v, unicode.IsControl) >= 0:
		return errors.New("contains control characters")
	}
	return nil
}

// Revocations is one replica's copy of the live revocations, kept current
// by the feed's LISTEN connection, and the streams watching for them.
type Revocations struct {
	mu       sync.Mutex
	jti      map[string]time.Time    // jti -> expires
	sub      map[string][2]time.Time // sub -> revoked at, expires
	watchers map[string]map[*watcher]struct{}
}

type watcher struct {
	iat  time.Time
	ch   chan struct{}
	once sync.Once
}

func (w *watcher) fire() { w.once.Do(func() { close(w.ch) }) }

func newRevocations() *Revocations {
	return &Revocations{jti: map[string]time.Time{}, sub: map[string][2]time.Time{}, watchers: map[string]map[*watcher]struct{}{}}
}

// Revoked reports whether a token (its jti, sub and iat; zero iat when it
// has none) is revoked.
func (rv *Revocations) Revoked(jti, sub string, iat time.Time) bool {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return rv.revoked(jti, sub, iat, time.Now())
}

func (rv *Revocations) revoked(jti, sub string, iat, now time.Time) bool {
	if exp, ok := rv.jti[jti]; ok && jti != "" && now.Before(exp) {
		return true
	}
	if s, ok := rv.sub[sub]; ok && sub != "" && now.Before(s[1]) && !iat.After(s[0]) {
		return true
	}
	return false
}

// Watch returns a channel closed when the token is revoked (at once if it
// already is), and a function to stop watching.
func (rv *Revocations) Watch(jti, sub string, iat time.Time) (<-chan struct{}, func()) {
	w := &watcher{iat: iat, ch: make(chan struct{})}
	var keys []string
	if jti != "" {
		keys = append(keys, "j:"+jti)
	}
	if sub != "" {
		keys = append(keys, "s:"+sub)
	}
	rv.mu.Lock()
	defer rv.mu.Unlock()
	if rv.revoked(jti, sub, iat, time.Now()) {
		w.fire()
		return w.ch, func() {}
	}
	for _, k := range keys {
		if rv.watchers[k] == nil {
			rv.watchers[k] = map[*watcher]struct{}{}
		}
		rv.watchers[k][w] = struct{}{}
	}
	return w.ch, func() {
		rv.mu.Lock()
		defer rv.mu.Unlock()
		for _, k := range keys {
			delete(rv.watchers[k], w)
			if len(rv.watchers[k]) == 0 {
				delete(rv.watchers, k)
			}
		}
	}
}

// add records r and ends the streams it matches. Callers hold mu.
func (rv *Revocations) add(r Revocation, now time.Time) {
	if !now.Before(r.ExpiresAt) {
		return
	}
	if r.JTI != "" {
		if r.ExpiresAt.After(rv.jti[r.JTI]) {
			rv.jti[r.JTI] = r.ExpiresAt
		}
		for w := range rv.watchers["j:"+r.JTI] {
			w.fire()
		}
	}
	if r.Subject != "" {
		// A later revocation of a subject covers the earlier ones' tokens.
		old := rv.sub[r.Subject]
		rv.sub[r.Subject] = [2]time.Time{maxTime(old[0], r.RevokedAt), maxTime(old[1], r.ExpiresAt)}
		for w := range rv.watchers["s:"+r.Subject] {
			if !w.iat.After(r.RevokedAt) {
				w.fire()
			}
		}
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// apply handles one NOTIFY payload.
func (rv *Revocations) apply(payload string) error {
	var r Revocation
	if err := json.Unmarshal([]byte(payload), &r); err != nil {
		return fmt.Errorf("revocation notice %q: %w", payload, err)
	}
	rv.mu.Lock()
	defer rv.mu.Unlock()
	now := time.Now()
	// Expired entries match nothing; drop them as new ones come, so the
	// copy holds about what the table holds.
	for k, exp := range rv.jti {
		if !now.Before(exp) {
			delete(rv.jti, k)
		}
	}
	for k, s := range rv.sub {
		if !now.Before(s[1]) {
			delete(rv.sub, k)
		}
	}
	rv.add(r, now)
	return nil
}

// load replaces the copy with the database's live revocations, on every
// (re)connect: notices sent while disconnected are not replayed.
func (rv *Revocations) load(ctx context.Context, conn *pgx.Conn) error {
	rows, err := conn.Query(ctx, `
		SELECT coalesce(jti, ''), coalesce(sub, ''), revoked_at, expires_at
		FROM herald.revocations WHERE expires_at > now()`)
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42P01" {
			return nil // schema older than revocations: nothing to load
		}
		return fmt.Errorf("load revocations: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Revocation, error) {
		var r Revocation
		err := row.Scan(&r.JTI, &r.Subject, &r.RevokedAt, &r.ExpiresAt)
		return r, err
	})
	if err != nil {
		return fmt.Errorf("load revocations: %w", err)
	}
	rv.mu.Lock()
	defer rv.mu.Unlock()
	rv.jti, rv.sub = map[string]time.Time{}, map[string][2]time.Time{}
	now := time.Now()
	for _, r := range list {
		rv.add(r, now)
	}
	return nil
}

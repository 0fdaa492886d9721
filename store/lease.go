package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrLimit means a subject already holds as many connections as allowed.
var ErrLimit = errors.New("connection limit reached")

// Leases counts open connections per subject across all replicas, with a
// row per connection in herald.leases. Each replica renews its own rows
// while it runs; rows of a replica that died stop counting after TTL.
type Leases struct {
	db   *DB
	node string
	ttl  time.Duration

	mu     sync.Mutex
	held   int     // leases taken and not released
	orphan []int64 // released leases whose DELETE failed; Renew retries
}

// NewLeases returns this replica's lease keeper; run Renew in the
// background while it serves.
func (db *DB) NewLeases(ttl time.Duration) *Leases {
	if ttl <= 0 {
		ttl = 30 * time.Second
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return &Leases{db: db, node: hex.EncodeToString(b), ttl: ttl}
}

// Acquire takes one of subject's max connections, or returns ErrLimit.
// The check and the insert are serialised per subject by a transaction
// advisory lock, so two replicas cannot both take the last one. The lock
// is its own statement, and the count and insert that follow run under
// READ COMMITTED, each with a snapshot taken after the lock was granted:
// they see every lease committed by the previous holder. (In one statement
// the snapshot predates the lock wait, and the planner may skip the lock.)
func (l *Leases) Acquire(ctx context.Context, subject string, max int) (release func(), err error) {
	id, err := l.acquire(ctx, subject, max)
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, ErrLimit
		}
		return nil, fmt.Errorf("acquire lease for %q: %w", subject, err)
	}
	l.mu.Lock()
	l.held++
	l.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() { l.release(ctx, id) })
	}, nil
}

func (l *Leases) release(ctx context.Context, id int64) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, err := l.db.pool.Exec(ctx, `DELETE FROM herald.leases WHERE id = $1`, id)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held--
	if err != nil {
		// Database away: the next Renew deletes it.
		l.orphan = append(l.orphan, id)
	}
}

// Renew keeps this replica's leases alive and clears expired rows, until
// ctx ends; then it deletes this replica's rows.
func (l *Leases) Renew(ctx context.Context) error {
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	defer func() {
		c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, _ = l.db.pool.Exec(c, `DELETE FROM herald.leases WHERE node = $1`, l.node)
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if err := l.renew(ctx); err != nil && ctx.Err() == nil {
			l.db.log.Warn("renew connection leases", "err", err)
		}
	}
}

// renew extends this replica's leases, and deletes released leases whose
// DELETE failed and everyone's expired ones. A replica that holds none and
// owes no DELETE skips it: an idle replica costs the database nothing, and
// expired rows do not count anyway (acquire), so their cleanup can wait for
// a replica with leases to renew.
func (l *Leases) renew(ctx context.Context) error {
	l.mu.Lock()
	orphan, held := l.orphan, l.held
	l.orphan = nil
	l.mu.Unlock()
	if held == 0 && len(orphan) == 0 {
		return nil
	}
	if _, err := l.db.pool.Exec(ctx, `
		DELETE FROM herald.leases WHERE id = ANY($1) OR expires_at < now()`, orphan); err != nil {
		l.mu.Lock()
		l.orphan = append(l.orphan, orphan...)
		l.mu.Unlock()
		return fmt.Errorf("clear: %w", err)
	}
	if _, err := l.db.pool.Exec(ctx, `
		UPDATE herald.leases SET expires_at = now() + $2::interval WHERE node = $1`, l.node, l.ttl.String()); err != nil {
		return fmt.Errorf("extend: %w", err)
	}
	return nil
}

// acquire runs Acquire's transaction: lock, then count and insert with a
// fresh snapshot; pgx.ErrNoRows means the subject is at max.
func (l *Leases) acquire(ctx context.Context, subject string, max int) (int64, error) {
	var id int64
	err := pgx.BeginTxFunc(ctx, l.db.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('herald.lease:' || $1, 0))`, subject); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		return tx.QueryRow(ctx, `
			INSERT INTO herald.leases (subject, node, expires_at)
			SELECT $1, $2, now() + $3::interval
			 WHERE (SELECT count(*) FROM herald.leases
			         WHERE subject = $1 AND expires_at > clock_timestamp()) < $4
			RETURNING id`, subject, l.node, l.ttl.String(), max).Scan(&id)
	})
	return id, err
}

package store

import (
	"context"
	"crypto/rand"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/herald-dev/herald"
)

// identity is what a history was minted under: the cluster's system
// identifier, the database's OID and the WAL timeline. Each changes in one
// of the ways a database goes back in time: a dump restored into a new
// database (new OID) or a new cluster (new system identifier), a physical
// backup recovered to a point in time or a replica promoted (new timeline).
// An empty or zero field is unknown (not readable by herald's role) and is
// never taken for a change.
type identity struct {
	sysid    string
	dbOID    int64
	timeline int64
}

// readIdentity reads the identity, each part on its own so that a role
// without the privilege for one (pg_control_system() may need pg_monitor
// on some installations) still gets the others.
func readIdentity(ctx context.Context, conn *pgx.Conn) (identity, error) {
	var id identity
	if err := conn.QueryRow(ctx, `SELECT oid::bigint FROM pg_database WHERE datname = current_database()`).Scan(&id.dbOID); err != nil {
		return identity{}, fmt.Errorf("read database oid: %w", err)
	}
	// Each optional read runs in a savepoint-free single statement; a
	// permission error leaves the connection usable.
	var sysid *string
	if err := conn.QueryRow(ctx, `SELECT system_identifier::text FROM pg_control_system()`).Scan(&sysid); err == nil && sysid != nil {
		id.sysid = *sysid
	}
	// The timeline WAL is being written on: the first 8 hex digits of the
	// current WAL file name. pg_control_checkpoint() lags a promotion
	// until the next checkpoint; this does not.
	var wal *string
	if err := conn.QueryRow(ctx, `SELECT pg_walfile_name(pg_current_wal_lsn())`).Scan(&wal); err == nil && wal != nil && len(*wal) >= 8 {
		if tl, err := strconv.ParseInt((*wal)[:8], 16, 64); err == nil {
			id.timeline = tl
		}
	}
	return id, nil
}

// differs reports whether a known part of id differs from the same part of
// stored.
func (id identity) differs(stored identity) (bool, string) {
	switch {
	case stored.dbOID != 0 && id.dbOID != stored.dbOID:
		return true, fmt.Sprintf("database oid %d -> %d (recreated or restored)", stored.dbOID, id.dbOID)
	case stored.sysid != "" && id.sysid != "" && id.sysid != stored.sysid:
		return true, fmt.Sprintf("system identifier %s -> %s (another cluster)", stored.sysid, id.sysid)
	case stored.timeline != 0 && id.timeline != 0 && id.timeline != stored.timeline:
		return true, fmt.Sprintf("timeline %d -> %d (promotion or point-in-time recovery)", stored.timeline, id.timeline)
	}
	return false, ""
}

// newEpoch returns a random epoch: 10 characters of [a-z0-9] (about 51
// bits), so two forks of one history never pick the same one.
func newEpoch() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	var b [10]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:])
}

// checkEpoch runs when this process takes leadership: it compares the
// database's identity with the one the epoch was minted under, and the head
// with the highest head this process has seen in that epoch. If either says
// history may have forked it starts a new epoch (and tells the feeds); the
// first run on a database only records the identity. t.epoch is updated.
func (s *Sequencer) checkEpoch(ctx context.Context, conn *pgx.Conn, t *tick) error {
	var stored identity
	if err := conn.QueryRow(ctx, `SELECT epoch_sysid, epoch_db_oid, epoch_timeline FROM herald.sequencer_state`).
		Scan(&stored.sysid, &stored.dbOID, &stored.timeline); err != nil {
		return fmt.Errorf("load epoch identity: %w", err)
	}
	cur, err := readIdentity(ctx, conn)
	if err != nil {
		return err
	}
	changed, why := cur.differs(stored)
	if seen := s.seen.Load(); !changed && seen != nil && seen.Epoch == t.epoch && t.lastSeq < seen.Seq {
		changed, why = true, fmt.Sprintf("head went back from %d to %d", seen.Seq, t.lastSeq)
	}
	epoch := t.epoch
	if changed {
		epoch = newEpoch()
		s.db.log.Warn("sequencer: history may have forked; new epoch", "why", why, "old", t.epoch, "new", epoch, "head", t.lastSeq)
	}
	if !changed && cur == stored {
		return nil
	}
	// Fill in parts that were unknown before; keep known ones unless the
	// epoch changed.
	if !changed {
		if cur.sysid == "" {
			cur.sysid = stored.sysid
		}
		if cur.timeline == 0 {
			cur.timeline = stored.timeline
		}
	}
	_, err = conn.Exec(ctx, `
		UPDATE herald.sequencer_state
		SET epoch = $1, epoch_sysid = $2, epoch_db_oid = $3, epoch_timeline = $4`,
		epoch, cur.sysid, cur.dbOID, cur.timeline)
	if err != nil {
		return fmt.Errorf("store epoch: %w", err)
	}
	if changed {
		if _, err := conn.Exec(ctx, `SELECT pg_notify('herald_log', $1)`, herald.Cursor{Epoch: epoch, Seq: t.lastSeq}.String()); err != nil {
			return fmt.Errorf("notify new epoch: %w", err)
		}
	}
	t.epoch = epoch
	return nil
}

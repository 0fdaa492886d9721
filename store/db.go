// Package store is herald's Postgres layer: the connection pool, the inbox
// and event log, the sequencer that turns inbox rows into a dense
// commit-ordered log, the LISTEN feed that fans the log out to subscribers,
// and retention. pgx stays inside it (the embedded development cluster is
// package embedpg).
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DB is a handle on herald's database.
type DB struct {
	pool   *pgxpool.Pool
	config *pgx.ConnConfig // for dedicated (LISTEN, leader) connections
	log    *slog.Logger

	// logReads counts queries that read herald.event_log, so tests and
	// metrics can prove that one wake-up costs one query however many
	// subscribers wait.
	logReads atomic.Int64

	// state is the log state the leader's idle look last read (vouch).
	state vouch
}

// Open connects to url (a postgres:// URL or key=value DSN).
func Open(ctx context.Context, url string, log *slog.Logger) (*DB, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", redactErr(err))
	}
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "herald"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open pool: %w", err)
	}
	return &DB{pool: pool, config: cfg.ConnConfig.Copy(), log: log}, nil
}

// Close closes the pool.
func (db *DB) Close() { db.pool.Close() }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// LogReads is the number of queries that have read herald.event_log.
func (db *DB) LogReads() int64 { return db.logReads.Load() }

// connect opens a dedicated connection, outside the pool, for work that
// holds session state (LISTEN, the leader's advisory lock).
func (db *DB) connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, db.config.Copy())
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	return conn, nil
}

// redactErr drops the text of URL parse errors, which echo the URL and with
// it any password.
func redactErr(err error) error {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		return errors.New("invalid connection string (check DATABASE_URL)")
	}
	return err
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/golang-migrate/migrate/v4"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/herald-dev/herald/migrations"
)

// migrateLockKey serialises herald processes migrating one database. It is
// taken with pg_try_advisory_lock in a loop bounded by ctx, because
// golang-migrate's own lock waits forever (and its LockTimeout leaks the
// waiting goroutine, which later takes the lock and never releases it).
const migrateLockKey = 0x68657261_6d67

// MigrateCommand is "up", "down", "version" or "force".
type MigrateCommand string

// Migration commands.
const (
	MigrateUp      MigrateCommand = "up"
	MigrateDown    MigrateCommand = "down"
	MigrateVersion MigrateCommand = "version"
	MigrateForce   MigrateCommand = "force"
)

// DirtyError means a migration failed halfway and golang-migrate will not
// touch the schema until told what state it is in.
type DirtyError struct{ Version uint }

func (e *DirtyError) Error() string {
	return fmt.Sprintf("database schema is dirty at version %d: a migration failed halfway. "+
		"Inspect the herald schema, finish or undo that migration by hand, then run "+
		"`herald migrate force %d` (if it completed) or `herald migrate force %d` (if it did not), and start herald again",
		e.Version, e.Version, e.Version-1)
}

// Migrate runs cmd against the database at url and returns the resulting
// version. arg is the version for "force".
func Migrate(ctx context.Context, url string, cmd MigrateCommand, arg int) (uint, error) {
	// Parsed as a pool URL, as Open does, so the pool's own settings
	// (pool_max_conns=...) are taken out instead of being sent to the
	// server as unknown runtime parameters: one DATABASE_URL serves both.
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", redactErr(err))
	}
	sqlDB := stdlib.OpenDB(*pcfg.ConnConfig)
	defer sqlDB.Close()

	// Our own lock, on a connection of its own, before golang-migrate's.
	lockConn, err := sqlDB.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrate: connect: %w", err)
	}
	defer lockConn.Close()
	if err := tryLock(ctx, lockConn); err != nil {
		return 0, err
	}
	defer lockConn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, int64(migrateLockKey))

	// golang-migrate keeps its version table inside the herald schema, so
	// the schema must exist first.
	if _, err := lockConn.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS herald`); err != nil {
		return 0, fmt.Errorf("migrate: create schema herald: %w", err)
	}
	src, err := iofs.New(migrations.FS, ".")
	if err != nil {
		return 0, fmt.Errorf("migrate: read embedded migrations: %w", err)
	}
	drv, err := migratepgx.WithInstance(sqlDB, &migratepgx.Config{
		MigrationsTable:       `"herald"."schema_migrations"`,
		MigrationsTableQuoted: true,
		StatementTimeout:      5 * time.Minute,
	})
	if err != nil {
		return 0, fmt.Errorf("migrate: open driver: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "pgx5", drv)
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	// Close releases the driver's own connection; without it the
	// database stays "in use" (and cannot serve as a template, or be dropped).
	defer m.Close()
	m.LockTimeout = time.Minute

	switch cmd {
	case MigrateUp:
		err = m.Up()
	case MigrateDown:
		err = m.Down()
	case MigrateForce:
		err = m.Force(arg)
	case MigrateVersion:
	default:
		return 0, fmt.Errorf("migrate: unknown command %q (want up, down, version or force)", cmd)
	}
	if err != nil && !errors.Is(err, migrate.ErrNoChange) {
		if v, dirty, verr := m.Version(); verr == nil && dirty {
			return v, &DirtyError{Version: v}
		}
		return 0, fmt.Errorf("migrate %s: %w", cmd, err)
	}
	v, dirty, err := m.Version()
	if errors.Is(err, migrate.ErrNilVersion) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("migrate: read version: %w", err)
	}
	if dirty {
		return v, &DirtyError{Version: v}
	}
	return v, nil
}

func tryLock(ctx context.Context, conn *sql.Conn) error {
	for {
		var got bool
		if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, int64(migrateLockKey)).Scan(&got); err != nil {
			return fmt.Errorf("migrate: take lock: %w", err)
		}
		if got {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("migrate: another process holds the migration lock (advisory lock %d); gave up: %w", migrateLockKey, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// SchemaCurrent reports whether the database's schema is the one this
// binary's migrations end at, and not left dirty by a failed migration:
// /readyz asks it, so api needs no knowledge of the migrations package. An
// error means the version could not be read.
func (db *DB) SchemaCurrent(ctx context.Context) (bool, error) {
	v, dirty, err := db.schemaVersion(ctx)
	if err != nil {
		return false, err
	}
	return !dirty && v == migrations.Latest, nil
}

// schemaVersion reads the applied migration version.
func (db *DB) schemaVersion(ctx context.Context) (version int64, dirty bool, err error) {
	err = db.pool.QueryRow(ctx, `SELECT version, dirty FROM herald.schema_migrations LIMIT 1`).Scan(&version, &dirty)
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, false, nil // migrated all the way down
	case errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "3F000"):
		return 0, false, nil // never migrated: no table (or no schema)
	case err != nil:
		return 0, false, fmt.Errorf("read schema version: %w", err)
	}
	return version, dirty, nil
}

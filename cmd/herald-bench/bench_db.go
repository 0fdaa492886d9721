package main

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-dev/herald/store"
)

// herald's database as the bench sees it. The load generator uses pgx
// directly for the few things store does not offer an app: which server
// process to meter, and a scratch database without a sequencer.

// dsnWithPoolSize sets pgxpool's pool_max_conns on a URL or key=value DSN, so
// W concurrent writers get W connections.
func dsnWithPoolSize(u string, n int) string {
	if strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://") {
		if p, err := url.Parse(u); err == nil {
			q := p.Query()
			q.Set("pool_max_conns", strconv.Itoa(n))
			p.RawQuery = q.Encode()
			return p.String()
		}
	}
	return u + " pool_max_conns=" + strconv.Itoa(n)
}

// dsnWithDatabase returns the connection string u naming database db.
func dsnWithDatabase(u, db string) string {
	if strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://") {
		if p, err := url.Parse(u); err == nil {
			p.Path = "/" + db
			p.RawPath = ""
			return p.String()
		}
	}
	return u + " dbname=" + db
}

// findPostgres meters herald's Postgres: the postmaster (--pg-pid, or the
// parent of this connection's backend) and all its children. Only a
// server on this machine can be metered.
func (b *bench) findPostgres(ctx context.Context) error {
	pids, err := parsePIDs(b.cfg.pgPIDs)
	if err != nil {
		return err
	}
	root := 0
	if len(pids) > 0 {
		root = pids[0]
	} else {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(cctx, b.dbURL)
		if err != nil {
			return err
		}
		// The backend's parent is read while the connection is open: the
		// backend exits once its connection closes.
		defer conn.Close(context.Background())
		var backend int
		if err := conn.QueryRow(cctx, `SELECT pg_backend_pid()`).Scan(&backend); err != nil {
			return err
		}
		st, err := readStat(backend)
		if err != nil {
			return fmt.Errorf("backend %d is not a process here (remote database?): %w", backend, err)
		}
		root = st.ppid
	}
	if _, err := readStat(root); err != nil {
		return fmt.Errorf("postmaster %d: %w", root, err)
	}
	b.pg = &cpuMeter{root: root, children: true}
	b.progress("postgres postmaster %d", root)
	return nil
}

// scratchDatabase creates and migrates a database beside herald's on the
// same server, where no herald runs and so no sequencer, and drops the
// inbox's wake trigger there; drop removes the database.
func (b *bench) scratchDatabase(ctx context.Context) (dbURL string, drop func(), err error) {
	name := "herald_bench_noseq_" + b.nonce
	admin, err := pgx.Connect(ctx, b.dbURL)
	if err != nil {
		return "", nil, err
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", nil, fmt.Errorf("create scratch database (needs CREATEDB): %w", err)
	}
	drop = func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(dctx, b.dbURL); err == nil {
			_, _ = c.Exec(dctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`)
			c.Close(dctx)
		}
	}
	dbURL = dsnWithDatabase(b.dbURL, name)
	if _, err := store.Migrate(ctx, dbURL, store.MigrateUp, 0); err != nil {
		drop()
		return "", nil, err
	}
	// A plain table: without the sequencer's wake trigger, the baseline
	// the INSERT share divides by.
	if c, err := pgx.Connect(ctx, dbURL); err == nil {
		_, err = c.Exec(ctx, `DROP TRIGGER IF EXISTS wake_sequencer ON herald.events`)
		c.Close(context.Background())
		if err != nil {
			drop()
			return "", nil, fmt.Errorf("drop the wake trigger in the scratch database: %w", err)
		}
	} else {
		drop()
		return "", nil, err
	}
	return dbURL, drop, nil
}

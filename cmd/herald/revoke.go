package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/herald-dev/herald/store"
)

// revoke takes tokens back on every replica: one token by its jti, or all
// of a user's tokens issued until now by sub. It writes to the database as
// POST /v1/revocations does; the replicas learn of it by NOTIFY.
func revoke(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c commonFlags
	var jti, sub string
	var ttl, maxLifetime time.Duration
	e := &envFlags{fs: newFlags("revoke", stderr), getenv: getenv}
	c.bind(e)
	e.fs.StringVar(&jti, "jti", "", "revoke the one token with this jti")
	e.fs.StringVar(&sub, "sub", "", "revoke every token of this subject issued until now")
	e.Duration(&maxLifetime, "jwt-max-lifetime", "HERALD_JWT_MAX_LIFETIME", 0, "the servers' token lifetime limit: the default --ttl when set")
	e.Duration(&ttl, "ttl", "HERALD_REVOCATION_TTL", 0, "how long the revocation lasts: at least as long as the tokens it matches live (default: --jwt-max-lifetime, else 24h)")
	if err := e.parse(args); err != nil {
		return err
	}
	if e.fs.NArg() > 0 {
		return &usageError{fmt.Sprintf("revoke takes no arguments, got %q", e.fs.Args())}
	}
	if (jti == "") == (sub == "") {
		return &usageError{"revoke needs exactly one of --jti and --sub"}
	}
	if err := store.ValidateRevocationID(jti + sub); err != nil {
		return &usageError{fmt.Sprintf("--jti/--sub %v", err)}
	}
	ttl = revocationTTL(ttl, maxLifetime)
	db, err := c.openStore(ctx, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	r, err := db.Revoke(ctx, jti, sub, ttl)
	if err != nil {
		return err
	}
	what := "jti " + r.JTI
	if r.Subject != "" {
		what = "sub " + r.Subject + " (tokens issued until " + r.RevokedAt.UTC().Format(time.RFC3339) + ")"
	}
	fmt.Fprintf(stdout, "revoked %s until %s\n", what, r.ExpiresAt.UTC().Format(time.RFC3339))
	return nil
}

// revocationTTL is how long a revocation lasts: as set, else as long as the
// longest token the servers accept, else a day.
func revocationTTL(set, maxLifetime time.Duration) time.Duration {
	switch {
	case set > 0:
		return set
	case maxLifetime > 0:
		return maxLifetime + time.Minute // and the clock leeway
	default:
		return 24 * time.Hour
	}
}

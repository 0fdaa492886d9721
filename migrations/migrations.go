// Package migrations holds herald's SQL schema, embedded so the binary can
// migrate a database with nothing else on disk. Files follow golang-migrate's
// NNNN_name.up.sql / NNNN_name.down.sql convention.
package migrations

import "embed"

// FS is the migration files, for golang-migrate's iofs source.
//
//go:embed *.sql
var FS embed.FS

// Latest is the version the code expects; /readyz compares against it.
const Latest = 3

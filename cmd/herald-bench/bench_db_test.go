package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/herald-dev/herald/store/pgtest"
)

// TestBenchFindsPostgres: the postmaster, whose CPU the Postgres rows
// count, is found through a backend of herald's database, every time.
func TestBenchFindsPostgres(t *testing.T) {
	b := &bench{dbURL: pgtest.URL(t), log: io.Discard}
	for i := range 20 {
		b.pg = nil
		if err := b.findPostgres(context.Background()); err != nil || b.pg == nil {
			t.Fatalf("attempt %d: findPostgres = %v, meter %v", i, err, b.pg)
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", b.pg.root))
		if err != nil || !strings.HasPrefix(string(comm), "postgres") {
			t.Fatalf("attempt %d: root %d is %q (%v), want the postmaster", i, b.pg.root, comm, err)
		}
	}
}

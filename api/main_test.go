package api_test

import (
	"testing"

	"github.com/herald-dev/herald/store/pgtest"
)

// TestMain stops the throwaway PostgreSQL (if pgtest started one) after the
// package's tests. Fuzzing and the pure parser tests never start it.
func TestMain(m *testing.M) { pgtest.Main(m) }

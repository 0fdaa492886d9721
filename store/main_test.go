package store_test

import (
	"testing"

	"github.com/herald-dev/herald/store/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

package main

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/herald-dev/herald/store"
)

// TestSequencerTickFlag: --sequencer-tick and HERALD_SEQUENCER_TICK set the
// sequencer's interval, the default is store's, and a value outside 1ms-1s
// is a usage error naming the range.
func TestSequencerTickFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  []string
		want time.Duration // 0: refused
	}{
		{nil, nil, store.DefaultSequencerTick},
		{[]string{"--sequencer-tick", "1ms"}, nil, time.Millisecond},
		{nil, []string{"HERALD_SEQUENCER_TICK", "2ms"}, 2 * time.Millisecond},
		{[]string{"--sequencer-tick", "1s"}, nil, time.Second},
		{[]string{"--sequencer-tick", "500us"}, nil, 0},
		{[]string{"--sequencer-tick", "2s"}, nil, 0},
		{[]string{"--sequencer-tick", "0"}, nil, 0},
		{nil, []string{"HERALD_SEQUENCER_TICK", "-5ms"}, 0},
		{nil, []string{"HERALD_SEQUENCER_TICK", "fast"}, 0},
	} {
		cfg, _, err := parseServeFlags("serve", tc.args, env(tc.env...), io.Discard, nil)
		name := strings.Join(append(tc.args, tc.env...), " ")
		if tc.want == 0 {
			var u *usageError
			if !errors.As(err, &u) || !strings.Contains(err.Error(), "SEQUENCER_TICK") {
				t.Errorf("%q: %v, want a usage error naming HERALD_SEQUENCER_TICK", name, err)
			}
			continue
		}
		if err != nil || cfg.sequencerTick != tc.want {
			t.Errorf("%q: tick %v, %v; want %v", name, cfg.sequencerTick, err, tc.want)
		}
	}
}

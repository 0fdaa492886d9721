package client

import (
	"github.com/herald-dev/herald"
)

// dropReplayed records an event the client drops because its seq is not
// above the cursor: a server that replays what it already sent, or sends
// out of order. Dropping keeps the handler's exactly-once promise;
// counting it in Options.Dropped keeps such a server visible to
// whoever asks (tests assert it stays 0).
func (s *subscription) dropReplayed(_ *herald.Event) {
	if s.opts.Dropped != nil {
		s.opts.Dropped.Add(1)
	}
}

package client

import (
	"encoding/json"
	"fmt"
	"time"
)

// unavailableEvent is herald's in-band answer to an event-stream request it
// cannot serve right now (429 at a limit, 503 while its database, the auth
// app or the replica is away): a 200 stream with retry:, this event and the
// end, so that a browser's EventSource, for which any other status is
// fatal, tries again after the hint.
const unavailableEvent = "unavailable"

// unavailableError turns an "unavailable" event's data
// {"status":503,"error":{"code","message"},"retryAfter":2} into the
// *HTTPError the same answer as a status would have been, so the reconnect
// loop waits at least retryAfter, as for a 429 or 503.
func unavailableError(data []byte) error {
	var wire struct {
		Status int `json:"status"`
		Error  struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
		RetryAfter float64 `json:"retryAfter"`
	}
	if err := json.Unmarshal(data, &wire); err != nil {
		return fmt.Errorf("stream: malformed unavailable event: %w", err)
	}
	if wire.Status < 400 || wire.Status > 599 {
		wire.Status = 503
	}
	he := &HTTPError{Status: wire.Status, Code: wire.Error.Code, Message: wire.Error.Message}
	if wire.RetryAfter > 0 {
		he.retryAfter = time.Duration(min(wire.RetryAfter, 24*3600) * float64(time.Second))
	}
	if he.permanent() { // herald sends only passing conditions in-band
		he.Status = 503
	}
	return he
}

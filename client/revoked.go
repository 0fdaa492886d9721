package client

import (
	"errors"
	"fmt"

	"github.com/herald-dev/herald"
)

// RevokedError is what the Go client returns when the server revoked the
// stream's grant; Subscribe does not reconnect after it.
type RevokedError struct{ herald.Revocation }

func (e *RevokedError) Error() string {
	return fmt.Sprintf("stream: revoked by the server: %s: %s", e.Code, e.Message)
}

// ErrRevoked matches any *RevokedError with errors.Is.
var ErrRevoked = errors.New("stream: revoked")

func (e *RevokedError) Is(target error) bool { return target == ErrRevoked }

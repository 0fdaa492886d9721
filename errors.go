package herald

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"
)

// Error is a client-facing error: a stable code that clients switch on and
// a message that says what is wrong and how to fix it. Its HTTP status is
// not a field: it follows from the code through the one table, statuses, so
// a code can never be answered with two statuses.
type Error struct {
	Code       string
	Message    string
	RetryAfter time.Duration // the Retry-After hint, when retrying helps
	Cursor     *Cursor       // for a reset: where to continue
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Status is the HTTP status of the error's code (500 for a code not in the
// table: a bug, loudly).
func (e *Error) Status() int { return Status(e.Code) }

// The codes herald's core answers with itself (ErrorOf); the API adds its
// own (auth, limits, request parsing), all listed in statuses.
const (
	CodeReset           = "reset"
	CodeUnavailable     = "unavailable"
	CodeShuttingDown    = "shutting_down"
	CodeClientClosed    = "client_closed"
	CodePayloadTooLarge = "payload_too_large"
)

// StatusClientClosed is nginx's 499: the client went away before the
// answer. Nobody reads it but logs and metrics.
const StatusClientClosed = 499

// statuses is the one table of error codes and their HTTP statuses. Every
// code herald answers with is here; docs/ and api/openapi.json list the
// same codes.
var statuses = map[string]int{
	// The request itself is wrong: retrying it unchanged cannot help.
	"invalid_body":      http.StatusBadRequest,
	"invalid_channel":   http.StatusBadRequest,
	"invalid_type":      http.StatusBadRequest,
	"invalid_data":      http.StatusBadRequest,
	"invalid_cursor":    http.StatusBadRequest,
	"invalid_limit":     http.StatusBadRequest,
	"invalid_query":     http.StatusBadRequest,
	"invalid_timeout":   http.StatusBadRequest,
	"invalid_ttl":       http.StatusBadRequest,
	"invalid_jti":       http.StatusBadRequest,
	"invalid_sub":       http.StatusBadRequest,
	"no_channels":       http.StatusBadRequest,
	"too_many_channels": http.StatusBadRequest,
	"unknown_field":     http.StatusBadRequest,
	"unknown_parameter": http.StatusBadRequest,
	"duplicate_field":   http.StatusBadRequest,

	"body_timeout":           http.StatusRequestTimeout,
	"method_not_allowed":     http.StatusMethodNotAllowed,
	CodePayloadTooLarge:      http.StatusRequestEntityTooLarge,
	"too_many_events":        http.StatusRequestEntityTooLarge,
	"query_too_long":         http.StatusRequestURITooLong,
	"unsupported_media_type": http.StatusUnsupportedMediaType,

	// Who is asking.
	"unauthenticated":  http.StatusUnauthorized,
	"token_required":   http.StatusUnauthorized,
	"invalid_token":    http.StatusUnauthorized,
	"token_expired":    http.StatusUnauthorized,
	"token_revoked":    http.StatusUnauthorized,
	"api_key_required": http.StatusUnauthorized,
	"invalid_api_key":  http.StatusUnauthorized,

	"forbidden":           http.StatusForbidden,
	"channel_not_allowed": http.StatusForbidden,
	"key_scope":           http.StatusForbidden,
	"origin_not_allowed":  http.StatusForbidden,

	"not_found":            http.StatusNotFound,
	"publish_disabled":     http.StatusNotFound,
	"revocations_disabled": http.StatusNotFound,

	// The cursor's history cannot be served: refetch and continue.
	CodeReset: http.StatusGone,

	// Passing conditions: retry after the hint.
	"too_many_connections": http.StatusTooManyRequests,
	"auth_rate_limited":    http.StatusTooManyRequests,
	CodeUnavailable:        http.StatusServiceUnavailable,
	CodeShuttingDown:       http.StatusServiceUnavailable,
	"auth_unavailable":     http.StatusServiceUnavailable,

	CodeClientClosed: StatusClientClosed,

	// A panic in a handler: a bug, logged with its stack.
	"internal": http.StatusInternalServerError,
}

// Codes lists every code in the table, sorted: what api/openapi.json's
// ErrorCode enum must match.
func Codes() []string {
	out := make([]string, 0, len(statuses))
	for c := range statuses {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// Status is code's HTTP status, or 500 for a code not in the table.
func Status(code string) int {
	if s, ok := statuses[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// ErrorOf maps an error to its client-facing Error: an *Error as is, and
// the core's error kinds (invalid input, reset, a forked history, a
// stopping server, a cancelled request) to their codes. Anything else is
// not the client's doing and was not foreseen: known is false (log it), and
// the client sees "unavailable" with a retry hint, because such failures
// are nearly always the database being away.
func ErrorOf(err error) (e *Error, known bool) {
	var (
		ae    *Error
		inv   *InvalidError
		reset *ResetError
	)
	switch {
	case errors.As(err, &ae):
		return ae, true
	case errors.As(err, &inv):
		code := "invalid_" + inv.Field
		if inv.TooLarge {
			code = CodePayloadTooLarge
		}
		return &Error{Code: code, Message: inv.Reason}, true
	case errors.As(err, &reset):
		head := reset.Head
		return &Error{Code: CodeReset, Message: reset.Error(), Cursor: &head}, true
	case errors.Is(err, ErrEpochChanged):
		return &Error{Code: CodeUnavailable, Message: "the database's history changed (restored or promoted) while answering; retry and you will get a reset", RetryAfter: time.Second}, true
	case errors.Is(err, ErrStopped):
		return &Error{Code: CodeShuttingDown, Message: "this server is shutting down; retry (another replica will answer)", RetryAfter: time.Second}, true
	case errors.Is(err, context.Canceled):
		return &Error{Code: CodeClientClosed, Message: "request cancelled"}, true
	}
	return &Error{Code: CodeUnavailable, Message: "the server cannot reach its database right now; retry shortly", RetryAfter: 2 * time.Second}, false
}

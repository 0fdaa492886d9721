package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/herald-dev/herald/longpoll"
	"github.com/herald-dev/herald/store"
)

// Error is a client-facing error: a stable code, a message that says what
// is wrong and how to fix it, and the HTTP status.
type Error struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration
	Cursor     *store.Cursor // for 410 reset: where to continue
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func badRequest(code, msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: code, Message: msg}
}

// toAPIError is the one table from error kinds to HTTP answers. Anything
// not in it is internal: logged, and the client sees a stable 500 (never
// for anything the client sent) or 503 when the database is away.
func toAPIError(err error) (*Error, bool) {
	var ae *Error
	var inv *store.InvalidError
	var reset *longpoll.ResetError
	switch {
	case errors.As(err, &ae):
		return ae, true
	case errors.As(err, &inv):
		status := http.StatusBadRequest
		code := "invalid_" + inv.Field
		if inv.TooLarge {
			status, code = http.StatusRequestEntityTooLarge, "payload_too_large"
		}
		return &Error{Status: status, Code: code, Message: inv.Reason}, true
	case errors.As(err, &reset):
		head := reset.Head
		return &Error{Status: http.StatusGone, Code: "reset", Message: reset.Error(), Cursor: &head}, true
	case errors.Is(err, store.ErrEpochChanged):
		return &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the database's history changed (restored or promoted) while answering; retry and you will get a reset", RetryAfter: time.Second}, true
	case errors.Is(err, store.ErrFeedStopped):
		return &Error{Status: http.StatusServiceUnavailable, Code: "shutting_down", Message: "this server is shutting down; retry (another replica will answer)", RetryAfter: time.Second}, true
	case errors.Is(err, context.Canceled):
		return &Error{Status: 499, Code: "client_closed", Message: "request cancelled"}, true
	}
	return &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the server cannot reach its database right now; retry shortly", RetryAfter: 2 * time.Second}, false
}

// abort writes err as {"error":{"code","message"}} and stops the chain.
func (s *Server) abort(c *gin.Context, err error) {
	ae, known := toAPIError(err)
	if !known {
		s.log.Error("request failed", "route", c.FullPath(), "err", err)
	}
	if ae.RetryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(int((ae.RetryAfter+time.Second-1)/time.Second)))
	}
	body := gin.H{"error": gin.H{"code": ae.Code, "message": ae.Message}}
	if ae.Cursor != nil {
		body["cursor"] = ae.Cursor.String()
	}
	c.Header("Cache-Control", "no-store")
	c.AbortWithStatusJSON(ae.Status, body)
}

package api

import (
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/herald-dev/herald"
)

// Error is a client-facing error: a stable code, a message that says what
// is wrong and how to fix it. Its HTTP status comes from the core's one
// table of codes (herald.Status), never from the place that builds it.
type Error = herald.Error

func badRequest(code, msg string) *Error {
	return &Error{Code: code, Message: msg}
}

// toAPIError maps err through the core's error kinds (herald.ErrorOf).
// Anything not among them is internal: logged, and the client sees a
// stable 503 when the database is away (never a 500 for anything the
// client sent).
func toAPIError(err error) (*Error, bool) { return herald.ErrorOf(err) }

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
	c.AbortWithStatusJSON(ae.Status(), body)
}

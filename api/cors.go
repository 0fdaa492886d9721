package api

import (
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"
)

// cors answers cross-origin requests from the configured origins only.
// An allowed origin is echoed with credentials allowed (cookie auth); "*"
// allows any origin without credentials. Others get no CORS headers, so
// the browser refuses them, and a refused preflight gets a 403.
func (s *Server) cors() gin.HandlerFunc {
	any := slices.Contains(s.cfg.CORSOrigins, "*")
	return func(c *gin.Context) {
		// Vary on every answer, with or without Origin: a cache between
		// herald and browsers must not hand one origin's answer (or an
		// answer without CORS headers) to another.
		h := c.Writer.Header()
		h.Add("Vary", "Origin")
		origin := c.GetHeader("Origin")
		if origin == "" {
			c.Next()
			return
		}
		allowed := slices.Contains(s.cfg.CORSOrigins, origin)
		switch {
		case allowed:
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
		case any:
			h.Set("Access-Control-Allow-Origin", "*")
		}
		preflight := c.Request.Method == http.MethodOptions && c.GetHeader("Access-Control-Request-Method") != ""
		if !preflight {
			c.Next()
			return
		}
		if !allowed && !any {
			s.abort(c, &Error{Code: "origin_not_allowed",
				Message: "origin " + truncate(origin, 100) + " may not call this server; add it to HERALD_CORS_ORIGINS"})
			return
		}
		h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID, Cache-Control")
		h.Set("Access-Control-Max-Age", "600")
		c.AbortWithStatus(http.StatusNoContent)
	}
}

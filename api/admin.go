package api

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// adminRoutes are the operator's endpoints: readiness and metrics. They
// sit on the main router unless Config.SeparateAdmin moves them to
// AdminHandler, so that a public listener does not expose them.
func (s *Server) adminRoutes(e *gin.Engine) {
	e.GET("/readyz", s.readyz)
	if s.cfg.Metrics != nil {
		e.GET("/metrics", gin.WrapH(s.cfg.Metrics.handler()))
	}
}

// AdminHandler serves /healthz, /readyz and /metrics alone, for a
// listener that only operators and their tools reach.
func (s *Server) AdminHandler() http.Handler {
	e := gin.New()
	e.Use(s.recoverer())
	e.NoRoute(func(c *gin.Context) {
		s.abort(c, &Error{Code: "not_found", Message: "the admin listener serves /healthz, /readyz and /metrics"})
	})
	e.GET("/healthz", s.healthz)
	s.adminRoutes(e)
	return e
}

package main

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/herald-dev/herald/api"
	"github.com/herald-dev/herald/web"
)

// mountWeb serves the browser client, so a dashboard can
// `import { subscribe } from "https://herald.example/herald.js"`.
func mountWeb(srv *api.Server) {
	js, err := web.FS.ReadFile("herald.js")
	if err != nil {
		panic("web: herald.js missing from the embedded files: " + err.Error())
	}
	srv.Engine().GET("/herald.js", func(c *gin.Context) {
		// Short cache: dashboards pick up a new client within minutes.
		c.Header("Cache-Control", "public, max-age=300")
		c.Data(http.StatusOK, "text/javascript; charset=utf-8", js)
	})
}

package main

import (
	"io/fs"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/herald-dev/herald/api"
	"github.com/herald-dev/herald/web"
)

// mountWeb serves the browser client, so a dashboard can
// `import { subscribe } from "https://herald.example/herald.js"`.
// herald.js imports its modules relatively ("./herald/cursor.js"), so
// each is served next to it, at /herald/<name>.js, the same way.
func mountWeb(srv *api.Server) {
	modules, err := fs.Glob(web.FS, "herald/*.js")
	if err != nil || len(modules) == 0 {
		panic("web: herald/*.js missing from the embedded files")
	}
	for _, name := range append([]string{"herald.js"}, modules...) {
		js, err := web.FS.ReadFile(name)
		if err != nil {
			panic("web: " + name + " missing from the embedded files: " + err.Error())
		}
		srv.Engine().GET("/"+name, func(c *gin.Context) {
			// Short cache: dashboards pick up a new client within minutes.
			c.Header("Cache-Control", "public, max-age=300")
			c.Data(http.StatusOK, "text/javascript; charset=utf-8", js)
		})
	}
}

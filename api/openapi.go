package api

import (
	_ "embed"
	"net/http"

	"github.com/gin-gonic/gin"
)

// OpenAPI is herald's HTTP API as an OpenAPI 3.1 document, served at
// GET /v1/openapi.json so teams can generate clients and docs from it.
// openapi_test.go validates real responses against it, so it cannot drift
// from the handlers: a new endpoint, parameter, field, status or error code
// goes into this file together with the code.
//
//go:embed openapi.json
var OpenAPI []byte

func serveOpenAPI(c *gin.Context) {
	c.Header("Cache-Control", "public, max-age=300")
	c.Data(http.StatusOK, "application/json", OpenAPI)
}

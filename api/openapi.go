package api

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// openapiJSON is the OpenAPI 3 document of this API, written by hand and
// kept true by the tests, which check every response they get against it.
//
//go:embed openapi.json
var openapiJSON []byte

// OpenAPI returns the OpenAPI 3 document of the API.
func OpenAPI() []byte { return append([]byte(nil), openapiJSON...) }

func (s *Server) openapiRoutes(e *echo.Echo) {
	e.GET("/v1/openapi.json", func(c echo.Context) error {
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openapiJSON)
	})
}

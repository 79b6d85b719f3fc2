package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/envvault/envvault/internal/dotenv"
	"github.com/envvault/envvault/vault"
)

// POST /v1/secrets/import: a dotenv file's NAME=value lines into the
// user's secrets, all or nothing, with the rules and messages of the
// command line's and the dashboard's import (dotenv.Import is the one
// place they live).

// importRequest is the body of importSecrets.
type importRequest struct {
	Content    *string  `json:"content"`
	Scope      *string  `json:"scope"`
	ProfileIDs []string `json:"profile_ids"`
}

// importResultJSON counts what an import did.
type importResultJSON struct {
	Created   int `json:"created"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
}

// importLineJSON is one bad line of a refused import: never its value.
type importLineJSON struct {
	Line    int    `json:"line"`
	Message string `json:"message"`
}

// importErrorBody is the error shape with the bad lines beside the
// message, so that a client can show them one per line.
type importErrorBody struct {
	Error importErrorDetail `json:"error"`
}

type importErrorDetail struct {
	errorDetail
	Lines []importLineJSON `json:"lines"`
}

func (s *Server) importSecrets(c echo.Context) error {
	var req importRequest
	if err := decodeJSON(c, s.bodyLimit, &req); err != nil {
		return err
	}
	if req.Content == nil {
		return vault.Invalid("content", "is required: the dotenv file's text")
	}
	scope := vault.ScopeAll
	if req.Scope != nil {
		scope = vault.Scope(*req.Scope)
	}
	ctx := c.Request().Context()
	res, err := dotenv.Import(ctx, s.svc, UserID(ctx), []byte(*req.Content), scope, req.ProfileIDs)
	var ie *vault.ImportError
	if errors.As(err, &ie) {
		// Lines that break a rule are 422; lines that collide with the
		// user's secrets, 409.
		code := vault.ErrorCode(err)
		return writeJSON(c, statusOf[code], importRefusal(code, ie.Lines))
	}
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, importResultJSON{Created: res.Created, Updated: res.Updated, Unchanged: res.Unchanged})
}

// importRefusal is the answer to an import refused for its lines.
func importRefusal(code string, bad []vault.ImportLineError) importErrorBody {
	lines := make([]importLineJSON, len(bad))
	msgs := make([]string, len(bad))
	for i, l := range bad {
		lines[i] = importLineJSON{Line: l.Line, Message: l.Message}
		msgs[i] = fmt.Sprintf("line %d: %s", l.Line, l.Message)
	}
	return importErrorBody{Error: importErrorDetail{
		errorDetail: errorDetail{Code: code, Field: "content",
			Message: fmt.Sprintf("content: %d bad lines, nothing imported: %s", len(bad), strings.Join(msgs, "; "))},
		Lines: lines,
	}}
}

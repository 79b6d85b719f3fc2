package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

// requiredSecretJSON is one name a profile requires.
type requiredSecretJSON struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

func newRequiredSecretsJSON(list []vault.RequiredSecret) []requiredSecretJSON {
	out := make([]requiredSecretJSON, len(list))
	for i, r := range list {
		out[i] = requiredSecretJSON(r)
	}
	return out
}

// requiredSecrets converts a request's list; nil stays nil (not given).
func requiredSecrets(list []requiredSecretJSON) []vault.RequiredSecret {
	if list == nil {
		return nil
	}
	out := make([]vault.RequiredSecret, len(list))
	for i, r := range list {
		out[i] = vault.RequiredSecret(r)
	}
	return out
}

// secretKeyJSON is one name a profile declares or receives; never a value.
type secretKeyJSON struct {
	Name        string `json:"name"`
	HasValue    bool   `json:"has_value"`
	Source      string `json:"source"`
	Required    bool   `json:"required"`
	Description string `json:"description"`
}

type secretKeysJSON struct {
	Data []secretKeyJSON `json:"data"`
}

// profileSecretKeys answers every name the profile declares or receives,
// whether it has a value and where it comes from; never a value. Without
// an orchestrator (no baseline known here) the baseline is empty, as the
// dashboard's preview does.
func (s *Server) profileSecretKeys(c echo.Context) error {
	ctx := c.Request().Context()
	user, id := UserID(ctx), c.Param("id")
	var keys []orchestrator.SecretKey
	var err error
	if s.orch != nil {
		keys, err = s.orch.SecretKeys(ctx, user, id)
	} else {
		keys, err = secretKeysWithoutBaseline(c, s.svc, user, id)
	}
	if err != nil {
		return notFound(err, "profile")
	}
	return writeSecretKeys(c, keys)
}

// writeSecretKeys answers keys (GET /v1/profiles/:id/secret-keys and
// GET /v1/task/secret-keys).
func writeSecretKeys(c echo.Context, keys []orchestrator.SecretKey) error {
	out := secretKeysJSON{Data: make([]secretKeyJSON, len(keys))}
	for i, k := range keys {
		out.Data[i] = secretKeyJSON(k)
	}
	return writeJSON(c, http.StatusOK, out)
}

func secretKeysWithoutBaseline(c echo.Context, svc *vault.Service, user, id string) ([]orchestrator.SecretKey, error) {
	ctx := c.Request().Context()
	p, err := svc.Profile(ctx, user, id)
	if err != nil {
		return nil, err
	}
	secrets, err := svc.ProfileSecrets(ctx, user, id)
	if err != nil {
		return nil, err
	}
	return orchestrator.SecretKeys(orchestrator.Baseline{}, p, secrets), nil
}

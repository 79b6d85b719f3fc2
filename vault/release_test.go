package vault

import (
	"fmt"
	"strings"
	"testing"
)

// A ReleasedSecret carries a value; no fmt verb may print it, alone, in a
// slice or in a struct, since such values end up in logs and errors.
func TestReleasedSecretNeverFormatsItsValue(t *testing.T) {
	const canary = "CANARY-released-value-7f3a"
	r := ReleasedSecret{EnvSecret: EnvSecret{Name: "GITHUB_TOKEN", SecretID: "sec_x", Scope: ScopeAgents, Version: 3}, Value: canary}
	list := []ReleasedSecret{r, r}
	holder := struct{ Released []ReleasedSecret }{list}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		for _, arg := range []any{r, &r, list, holder} {
			got := fmt.Sprintf(verb, arg)
			if strings.Contains(got, canary) {
				t.Errorf("fmt.Sprintf(%q, %T) = %q: holds the value", verb, arg, got)
			}
			if !strings.Contains(got, "GITHUB_TOKEN") {
				t.Errorf("fmt.Sprintf(%q, %T) = %q: does not name the secret", verb, arg, got)
			}
		}
	}
}

package web

import (
	"strings"

	"github.com/envvault/envvault/vault"
)

// requiredDash separates a required name from its description in the
// profile form's textarea.
const requiredDash = " — "

// parseRequired reads the profile form's required secrets: one per
// non-blank line, the name first, then optionally its description after
// " — ", " - " or ":". The vault checks the names (its errors name
// required_secrets); the list is never nil, so an emptied textarea clears it.
func parseRequired(s string) []vault.RequiredSecret {
	out := []vault.RequiredSecret{}
	for _, line := range splitLines(s) {
		line = strings.TrimSpace(line)
		name, desc := line, ""
		if i := strings.IndexAny(line, " \t:"); i >= 0 {
			name, desc = line[:i], strings.TrimSpace(line[i:])
			desc = strings.TrimPrefix(desc, ":")
			for _, dash := range []string{"—", "–", "-"} {
				if strings.HasPrefix(desc, dash) {
					desc = strings.TrimPrefix(desc, dash)
					break
				}
			}
		}
		out = append(out, vault.RequiredSecret{Name: name, Description: strings.TrimSpace(desc)})
	}
	return out
}

// formatRequired writes a profile's required secrets as parseRequired
// reads them; a line break in a description (possible through the API)
// becomes a space, or the next line would read as a name.
func formatRequired(list []vault.RequiredSecret) string {
	var b strings.Builder
	for _, r := range list {
		b.WriteString(r.Name)
		if r.Description != "" {
			b.WriteString(requiredDash + strings.Join(strings.Fields(r.Description), " "))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

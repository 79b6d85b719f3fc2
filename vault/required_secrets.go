package vault

import "strings"

// MaxRequiredSecrets is how many names a profile may declare it requires.
const MaxRequiredSecrets = 100

// RequiredSecret is a name a profile declares its tasks need, with a
// description telling the user what value to give. A task on the profile
// does not start while one of them has no value (orchestrator: awaiting
// secrets).
type RequiredSecret struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// validateRequired checks a profile's required names: at most
// MaxRequiredSecrets, each a valid secret name given once, each description
// within a secret description's limits.
func validateRequired(list []RequiredSecret) error {
	const field = "required_secrets"
	if len(list) > MaxRequiredSecrets {
		return Invalid(field, "must hold at most %d names", MaxRequiredSecrets)
	}
	seen := make(map[string]bool, len(list))
	for i, r := range list {
		if err := ValidateName("name", r.Name); err != nil {
			return Invalid(field, "entry %d: %s", i, ErrorMessage(err))
		}
		if seen[r.Name] {
			return Invalid(field, "entry %d: name %s is given twice", i, r.Name)
		}
		seen[r.Name] = true
		if err := validateDescription(r.Description); err != nil {
			return Invalid(field, "entry %d (%s): %s", i, r.Name, ErrorMessage(err))
		}
	}
	return nil
}

// normalizeRequired returns the list in the user's order, never nil, with
// each description's surrounding spaces trimmed.
func normalizeRequired(list []RequiredSecret) []RequiredSecret {
	out := make([]RequiredSecret, len(list))
	for i, r := range list {
		out[i] = RequiredSecret{Name: r.Name, Description: strings.TrimSpace(r.Description)}
	}
	return out
}

// RequiredNames returns the names of list, in its order.
func RequiredNames(list []RequiredSecret) []string {
	out := make([]string, len(list))
	for i, r := range list {
		out[i] = r.Name
	}
	return out
}

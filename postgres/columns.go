package postgres

import "time"

// How Go values are stored in columns: a time is timestamptz (read back in
// UTC), an absent time or text is NULL, a list or map is JSON.

// jsonList and jsonMap keep a nil list or map from being stored as JSON
// null: the columns hold an array and an object.
func jsonList(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

func jsonMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// nullText stores "" as NULL.
func nullText(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// timeArg is a time as the argument of a shared query (package sqlstore).
func timeArg(t time.Time) any { return t }

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

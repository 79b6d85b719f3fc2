package sqlstore

import (
	"time"

	"github.com/envvault/envvault/vault"
)

// AuditWhere is the WHERE clause of a page of the user's audit events
// matching f; timeArg encodes a time as the dialect stores it.
func AuditWhere(ph Placeholder, timeArg func(time.Time) any, userID string, f vault.AuditFilter) *Where {
	w := NewWhere(ph)
	w.Add("user_id = ?", userID)
	if f.Action != "" {
		w.Add("action = ?", f.Action)
	}
	if f.TargetID != "" {
		w.Add("target_id = ?", f.TargetID)
	}
	if !f.Since.IsZero() {
		w.Add("time >= ?", timeArg(f.Since))
	}
	if !f.Until.IsZero() {
		w.Add("time < ?", timeArg(f.Until))
	}
	if f.Before > 0 {
		w.Add("seq < ?", f.Before)
	}
	return w
}

// DecodeAuditRow sets the fields of e that come from its details column
// and its nullable hash. Details that do not decode are kept undecoded,
// under "undecodable", so that verify reports the row as changed.
func DecodeAuditRow(e *vault.AuditEvent, details string) {
	d, err := vault.DecodeAuditDetails([]byte(details))
	if err != nil {
		d = map[string]any{"undecodable": details}
	}
	e.Details = d
	if e.PrevHash == nil {
		e.PrevHash = []byte{}
	}
}

package api

import (
	"context"
	"encoding/hex"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/envvault/envvault/vault"
)

func (s *Server) auditRoutes(g authed) {
	g.GET("/audit", s.listAudit)
}

// recordActor puts the request's vault.Actor in its context: its request
// id and client address (c.RealIP, which reads only the connection's peer
// address: the server trusts no X-Forwarded-For or X-Real-IP header, which
// any client can send). authenticate adds the user and token. The vault
// copies the actor into every audit event the request causes.
func (s *Server) recordActor(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		ctx := req.Context()
		c.SetRequest(req.WithContext(vault.WithActor(ctx, vault.Actor{RequestID: RequestID(ctx), ClientAddr: c.RealIP()})))
		return next(c)
	}
}

// withUser adds the user and token a request authenticated as to the
// actor of ctx.
func withUser(ctx context.Context, userID, tokenID string) context.Context {
	a := vault.ActorFrom(ctx)
	a.UserID, a.TokenID = userID, tokenID
	return vault.WithActor(ctx, a)
}

// auditEventJSON is an audit event as the API shows it: what was done,
// never a value.
type auditEventJSON struct {
	Seq        int64          `json:"seq"`
	Time       string         `json:"time"`
	UserID     string         `json:"user_id"`
	TokenID    *string        `json:"token_id"`
	RequestID  *string        `json:"request_id"`
	ClientAddr *string        `json:"client_addr"`
	Action     string         `json:"action"`
	TargetType string         `json:"target_type"`
	TargetID   string         `json:"target_id"`
	Details    map[string]any `json:"details"`
	PrevHash   string         `json:"prev_hash"`
	Hash       string         `json:"hash"`
}

// orNull is nil for "", so that an absent value shows as null.
func orNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func newAuditEventJSON(e *vault.AuditEvent) auditEventJSON {
	details := e.Details
	if details == nil {
		details = map[string]any{}
	}
	return auditEventJSON{
		Seq: e.Seq, Time: timestamp(e.Time), UserID: e.UserID,
		TokenID: orNull(e.TokenID), RequestID: orNull(e.RequestID), ClientAddr: orNull(e.ClientAddr),
		Action: e.Action, TargetType: e.TargetType, TargetID: e.TargetID, Details: details,
		PrevHash: hex.EncodeToString(e.PrevHash), Hash: hex.EncodeToString(e.Hash),
	}
}

// listAudit answers the caller's own audit events, newest first: limit and
// cursor as every list, and the filters action, target (a target id),
// since (inclusive) and until (exclusive), RFC 3339 times; each at most
// once.
func (s *Server) listAudit(c echo.Context) error {
	opts, err := listOptions(c)
	if err != nil {
		return err
	}
	if opts.Query != "" {
		return vault.Invalid("q", "the audit trail cannot be searched: filter by action or target")
	}
	q := c.QueryParams()
	for _, name := range []string{"action", "target", "since", "until"} {
		if len(q[name]) > 1 {
			return vault.Invalid(name, "must be given at most once")
		}
	}
	o := vault.AuditOptions{Action: q.Get("action"), TargetID: q.Get("target"), Cursor: opts.Cursor, Limit: opts.Limit}
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"since", &o.Since}, {"until", &o.Until}} {
		if v := q.Get(p.name); v != "" {
			if *p.t, err = time.Parse(time.RFC3339Nano, v); err != nil {
				return vault.Invalid(p.name, "must be an RFC 3339 time, such as 2031-07-09T10:11:12Z")
			}
		}
	}
	return listPage(c, o, s.svc.AuditEvents, newAuditEventJSON)
}

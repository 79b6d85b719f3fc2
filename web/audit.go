package web

import (
	"net"
	"net/http"

	"github.com/envvault/envvault/vault"
)

// withActor puts the request's vault.Actor in its context: its request id
// and the connection's peer address, the same the API records (no
// forwarding header is believed). The vault copies it into every audit
// event the request causes, a failed sign-in included.
func withActor(r *http.Request, requestID string) *http.Request {
	addr := r.RemoteAddr
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	return r.WithContext(vault.WithActor(r.Context(), vault.Actor{RequestID: requestID, ClientAddr: addr}))
}

// withSession adds the signed-in user and the API token its session was
// made from to the request's actor.
func withSession(r *http.Request, u *user) *http.Request {
	a := vault.ActorFrom(r.Context())
	a.UserID, a.TokenID = u.ID, u.Session.TokenID
	return r.WithContext(vault.WithActor(r.Context(), a))
}

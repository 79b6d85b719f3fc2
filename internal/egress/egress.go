// Package egress guards the connections envvault opens to addresses its
// users choose: the token, device and authorization endpoints of their
// OAuth2 secrets. Without it, a user of a shared envvault could point an
// endpoint at the host's loopback, the operator's private network or a
// cloud metadata service (169.254.169.254) and have envvault send requests
// there and report how they failed.
//
// A Policy refuses, unless the operator allows its network, every address
// that is not a public unicast one: the special-purpose registries of
// IANA for IPv4 and IPv6 (loopback, private, shared, link-local, reserved,
// benchmarking, documentation, NAT64 and the rest), as code.dny.dev/ssrf
// keeps them, on any port. The check runs on the address the dialer is
// about to connect to, after name resolution, so a name that resolves to
// a refused address (or is re-pointed to one between two requests) is
// refused too.
package egress

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"

	"code.dny.dev/ssrf"
)

// ErrRefused is wrapped by the error of a dial to an address the policy
// refuses.
var ErrRefused = errors.New("address not allowed")

// Policy says which non-public networks envvault may still connect to.
type Policy struct {
	// Allow are networks allowed although not public (for example
	// 127.0.0.0/8 for a provider on the same host, in tests).
	Allow []netip.Prefix
}

// ParsePrefixes parses CIDR prefixes ("10.1.0.0/16", "::1/128"); field
// names the setting in the error.
func ParsePrefixes(field string, s []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(s))
	for _, v := range s {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a network in CIDR form (such as 10.0.0.0/8 or fd00::/8)", field, v)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// guardian is the check of p: any port, TCP only, p.Allow allowed.
func (p Policy) guardian() *ssrf.Guardian {
	var v4, v6 []netip.Prefix
	for _, n := range p.Allow {
		if n.Addr().Is4() {
			v4 = append(v4, n)
		} else {
			v6 = append(v6, n)
		}
	}
	return ssrf.New(ssrf.WithAnyPort(), ssrf.WithAllowedV4Prefixes(v4...), ssrf.WithAllowedV6Prefixes(v6...))
}

// Permits reports whether the policy lets envvault connect to ip.
func (p Policy) Permits(ip netip.Addr) bool {
	return p.guardian().SafeAddr(ip) == nil
}

// Control returns a net.Dialer Control function that refuses to connect to
// an address the policy does not permit, with an error wrapping ErrRefused.
func (p Policy) Control() func(network, address string, c syscall.RawConn) error {
	g := p.guardian()
	return func(network, address string, c syscall.RawConn) error {
		if err := g.Safe(network, address, c); err != nil {
			return fmt.Errorf("%w: %w (an operator may allow its network)", ErrRefused, err)
		}
		return nil
	}
}

// Client returns an HTTP client whose every connection the policy guards,
// that follows no redirect (a provider's endpoint answers itself) and
// uses no proxy from the environment, with timeout bounding each request.
func (p Policy) Client(timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: timeout, Control: p.Control()}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:         d.DialContext,
			TLSHandshakeTimeout: timeout,
			MaxIdleConns:        16,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

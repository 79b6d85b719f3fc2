// Package egress guards the connections envvault opens to addresses its
// users choose: the token, device and authorization endpoints of their
// OAuth2 secrets. Without it, a user of a shared envvault could point an
// endpoint at the host's loopback, the operator's private network or a
// cloud metadata service (169.254.169.254) and have envvault send requests
// there and report how they failed.
//
// A Policy refuses, unless the operator allows its network, every address
// that is not a public unicast one: loopback, private (10/8, 172.16/12,
// 192.168/16, fc00::/7), shared (100.64/10), link-local (169.254/16,
// fe80::/10), unspecified, multicast and the IPv4 broadcast. The check runs
// on the address the dialer is about to connect to, after name resolution,
// so a name that resolves to a refused address (or is re-pointed to one
// between two requests) is refused too.
package egress

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
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

// Permits reports whether the policy lets envvault connect to ip.
func (p Policy) Permits(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, n := range p.Allow {
		if n.Contains(ip) {
			return true
		}
	}
	return public(ip)
}

// shared is RFC 6598's carrier-grade NAT space, which netip does not class
// as private.
var shared = netip.MustParsePrefix("100.64.0.0/10")

func public(ip netip.Addr) bool {
	return ip.IsValid() && ip.IsGlobalUnicast() && !ip.IsPrivate() && !shared.Contains(ip) &&
		ip != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// Control is a net.Dialer Control function that refuses to connect to an
// address the policy does not permit, with an error wrapping ErrRefused.
func (p Policy) Control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("dial %s: %w", address, ErrRefused)
	}
	if !p.Permits(ap.Addr()) {
		return fmt.Errorf("dial %s: %w: not a public address (an operator may allow its network)", ap.Addr(), ErrRefused)
	}
	return nil
}

// Client returns an HTTP client whose every connection the policy guards,
// that follows no redirect (a provider's endpoint answers itself) and
// uses no proxy from the environment, with timeout bounding each request.
func (p Policy) Client(timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: timeout, Control: p.Control}
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

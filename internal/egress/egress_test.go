package egress

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestPermits(t *testing.T) {
	allowLoopback := Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	for _, c := range []struct {
		ip      string
		policy  Policy
		permits bool
	}{
		{"93.184.216.34", Policy{}, true},
		{"2606:2800:220:1:248:1893:25c8:1946", Policy{}, true},
		{"127.0.0.1", Policy{}, false},
		{"::1", Policy{}, false},
		{"::ffff:127.0.0.1", Policy{}, false},
		{"10.1.2.3", Policy{}, false},
		{"172.17.0.1", Policy{}, false},
		{"192.168.1.1", Policy{}, false},
		{"100.100.100.200", Policy{}, false},
		{"169.254.169.254", Policy{}, false},
		{"fe80::1", Policy{}, false},
		{"fd00:ec2::254", Policy{}, false},
		{"0.0.0.0", Policy{}, false},
		{"::", Policy{}, false},
		{"224.0.0.1", Policy{}, false},
		{"255.255.255.255", Policy{}, false},
		{"127.0.0.1", allowLoopback, true},
		{"::ffff:127.0.0.1", allowLoopback, false}, // a mapped address is checked as IPv6
		{"10.1.2.3", allowLoopback, false},
	} {
		if got := c.policy.Permits(netip.MustParseAddr(c.ip)); got != c.permits {
			t.Errorf("Permits(%s) with allow %v = %v, want %v", c.ip, c.policy.Allow, got, c.permits)
		}
	}
}

// TestClient connects for real: a server on loopback is refused by the
// default policy (after resolving "localhost", which it never reaches)
// and reached once the operator allows 127.0.0.0/8.
func TestClient(t *testing.T) {
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }))
	t.Cleanup(srv.Close)
	_, port, _ := strings.Cut(srv.Listener.Addr().String(), ":")
	for _, url := range []string{srv.URL, "http://localhost:" + port} {
		_, err := Policy{}.Client(5 * time.Second).Get(url)
		if !errors.Is(err, ErrRefused) {
			t.Fatalf("GET %s with the default policy: %v, want an error wrapping ErrRefused", url, err)
		}
	}
	if hits != 0 {
		t.Fatalf("the refused requests reached the server %d times", hits)
	}
	allow, err := ParsePrefixes("oauth2-allow-network", []string{"127.0.0.0/8", "::1/128"})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := Policy{Allow: allow}.Client(5 * time.Second).Get(srv.URL)
	if err != nil {
		t.Fatalf("GET with loopback allowed: %v", err)
	}
	resp.Body.Close()
	if hits != 1 {
		t.Fatalf("server reached %d times, want 1", hits)
	}
}

func TestParsePrefixesNamesTheField(t *testing.T) {
	_, err := ParsePrefixes("oauth2-allow-network", []string{"10.0.0.0/8", "not-a-network"})
	if err == nil || !strings.Contains(err.Error(), "oauth2-allow-network") || !strings.Contains(err.Error(), "not-a-network") {
		t.Fatalf("ParsePrefixes: %v, want an error naming the field and the value", err)
	}
}

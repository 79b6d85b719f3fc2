package testenv

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
)

// CutProxy forwards TCP from a loopback port to a PostgreSQL server and can
// be cut (every open connection closed, new ones closed on accept, as a
// database that went away) and restored, without its address changing.
type CutProxy struct {
	// URL is the database URL of the target with the proxy's address.
	URL string

	server string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]struct{}
}

// NewCutProxy starts a proxy in front of the server of the database URL
// target; t.Cleanup stops it and waits for its goroutines.
func NewCutProxy(t testing.TB, target string) *CutProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &CutProxy{server: u.Host, conns: map[net.Conn]struct{}{}}
	u.Host = ln.Addr().String()
	p.URL = u.String()
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); p.Cut(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := p.dial()
			if err != nil {
				c.Close()
				continue
			}
			if !p.track(c, s) {
				continue
			}
			wg.Go(func() { _, _ = io.Copy(c, s); c.Close(); s.Close() })
			wg.Go(func() { _, _ = io.Copy(s, c); s.Close(); c.Close() })
		}
	})
	return p
}

func (p *CutProxy) dial() (net.Conn, error) {
	p.mu.Lock()
	down := p.down
	p.mu.Unlock()
	if down {
		return nil, net.ErrClosed
	}
	return net.Dial("tcp", p.server)
}

// track records an accepted pair, or closes both if the proxy was cut
// meanwhile.
func (p *CutProxy) track(c, s net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		c.Close()
		s.Close()
		return false
	}
	p.conns[c] = struct{}{}
	p.conns[s] = struct{}{}
	return true
}

// Cut closes every open connection and refuses new ones until Restore.
func (p *CutProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Restore lets connections through again.
func (p *CutProxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

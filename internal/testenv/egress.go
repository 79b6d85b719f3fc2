package testenv

import "net/netip"

// Loopback are the networks of the tests' OAuth2 servers (a token endpoint
// in the test, Ory Hydra), which listen on the loopback address: envvault
// connects to them only when allowed (vault.Options.OAuth2AllowNetworks,
// the binary's --oauth2-allow-network), as an operator would allow a
// provider on its own network.
var Loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

package testimage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/envvault/envvault/orchestrator/swarmbackend"
)

// NewSwarmBackend returns a Swarm backend on cli with an init of its own,
// as NewRunner does: built by Init, named for the test, and removed (with
// its image and volume) when the test ends. A StopTimeout of 0 is 5s.
func NewSwarmBackend(t testing.TB, cli client.APIClient, opts swarmbackend.Options) *swarmbackend.Backend {
	t.Helper()
	var raw [6]byte
	_, _ = rand.Read(raw[:])
	opts.InitPath, opts.InitName = Init(t), "envvault-init-test-"+hex.EncodeToString(raw[:])
	if opts.StopTimeout == 0 {
		opts.StopTimeout = 5 * time.Second
	}
	b, err := swarmbackend.New(cli, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := b.Runner().RemoveInit(ctx); err != nil {
			t.Errorf("remove the test's init: %v", err)
		}
	})
	return b
}

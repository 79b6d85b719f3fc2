package runner

import (
	"slices"
	"testing"
)

func TestHarden(t *testing.T) {
	for _, tc := range []struct {
		name      string
		h         Hardening
		wantTmpfs string
		wantPids  int64 // 0: unset
	}{
		{name: "zero: invariants only", wantTmpfs: "rw,nosuid,nodev,mode=1777"},
		{name: "limits", h: Hardening{User: "1000:1000", MemoryBytes: 64 << 20, NanoCPUs: 5e8, PidsLimit: 32,
			CapAdd: []string{"NET_BIND_SERVICE"}, Network: "none", ReadOnlyRootfs: true},
			wantTmpfs: "rw,nosuid,nodev,mode=1777,size=67108864", wantPids: 32},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := Spec{Image: "img", Hardening: tc.h}
			cfg, host := toConfig(spec, imageConfig{})
			if cfg.User != tc.h.User {
				t.Errorf("User = %q, want %q", cfg.User, tc.h.User)
			}
			if host.Privileged || !slices.Equal(host.CapDrop, []string{"ALL"}) || !slices.Equal(host.CapAdd, tc.h.CapAdd) {
				t.Errorf("Privileged %v, CapDrop %v, CapAdd %v", host.Privileged, host.CapDrop, host.CapAdd)
			}
			if !slices.Equal(host.SecurityOpt, []string{"no-new-privileges:true"}) || host.IpcMode != "private" {
				t.Errorf("SecurityOpt %v, IpcMode %q", host.SecurityOpt, host.IpcMode)
			}
			if host.ReadonlyRootfs != tc.h.ReadOnlyRootfs || string(host.NetworkMode) != tc.h.Network {
				t.Errorf("ReadonlyRootfs %v, NetworkMode %q", host.ReadonlyRootfs, host.NetworkMode)
			}
			if len(host.Tmpfs) != 1 || host.Tmpfs["/tmp"] != tc.wantTmpfs {
				t.Errorf("Tmpfs = %v, want /tmp: %q", host.Tmpfs, tc.wantTmpfs)
			}
			if host.Memory != tc.h.MemoryBytes || host.MemorySwap != tc.h.MemoryBytes || host.NanoCPUs != tc.h.NanoCPUs {
				t.Errorf("Memory %d, MemorySwap %d, NanoCPUs %d", host.Memory, host.MemorySwap, host.NanoCPUs)
			}
			if (host.PidsLimit == nil) != (tc.wantPids == 0) || (host.PidsLimit != nil && *host.PidsLimit != tc.wantPids) {
				t.Errorf("PidsLimit = %v, want %d", host.PidsLimit, tc.wantPids)
			}
			if len(host.Binds) != 0 || len(host.Mounts) != 0 || len(host.Devices) != 0 || len(host.VolumesFrom) != 0 {
				t.Errorf("host mounts or devices: %v %v %v %v", host.Binds, host.Mounts, host.Devices, host.VolumesFrom)
			}
		})
	}
}

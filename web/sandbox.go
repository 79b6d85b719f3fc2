package web

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/envvault/envvault/vault"
)

// sandboxForm is a profile's sandbox request as the form holds it: numbers
// as typed ("" is the operator's default), capabilities separated by
// commas or spaces.
type sandboxForm struct {
	User, MemoryMB, CPUMillis, PidsLimit, CapAdd, Network string
	WritableRootfs                                        bool
	EnvDelivery                                           string // "", stdin or env
}

func readSandboxForm(pf url.Values) sandboxForm {
	return sandboxForm{
		User: strings.TrimSpace(pf.Get("sandbox_user")), MemoryMB: strings.TrimSpace(pf.Get("sandbox_memory_mb")),
		CPUMillis: strings.TrimSpace(pf.Get("sandbox_cpu_millis")), PidsLimit: strings.TrimSpace(pf.Get("sandbox_pids_limit")),
		CapAdd: pf.Get("sandbox_cap_add"), Network: strings.TrimSpace(pf.Get("sandbox_network")),
		WritableRootfs: pf.Get("sandbox_writable_rootfs") == "on", EnvDelivery: strings.TrimSpace(pf.Get("sandbox_env_delivery")),
	}
}

func newSandboxForm(s vault.Sandbox) sandboxForm {
	num := func(n int64) string {
		if n == 0 {
			return ""
		}
		return strconv.FormatInt(n, 10)
	}
	return sandboxForm{User: s.User, MemoryMB: num(s.MemoryMB), CPUMillis: num(s.CPUMillis), PidsLimit: num(s.PidsLimit),
		CapAdd: strings.Join(s.CapAdd, ", "), Network: s.Network, WritableRootfs: s.WritableRootfs, EnvDelivery: s.EnvDelivery}
}

// parse returns the request the form holds. Returns EINVALID naming the
// field of a number that is not a whole number; the vault checks the rest.
func (f sandboxForm) parse() (vault.Sandbox, error) {
	out := vault.Sandbox{User: f.User, Network: f.Network, WritableRootfs: f.WritableRootfs, EnvDelivery: f.EnvDelivery,
		CapAdd: strings.FieldsFunc(f.CapAdd, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })}
	for _, n := range []struct {
		field, text string
		dst         *int64
	}{{"sandbox.memory_mb", f.MemoryMB, &out.MemoryMB}, {"sandbox.cpu_millis", f.CPUMillis, &out.CPUMillis}, {"sandbox.pids_limit", f.PidsLimit, &out.PidsLimit}} {
		if n.text == "" {
			continue
		}
		v, err := strconv.ParseInt(n.text, 10, 64)
		if err != nil {
			return vault.Sandbox{}, vault.Invalid(n.field, "must be a whole number, or empty for the default")
		}
		*n.dst = v
	}
	return out, nil
}

// sandboxField is the form's error key of a sandbox field, "" if the field
// is not one.
func sandboxField(field string) string {
	switch field {
	case "sandbox.user", "sandbox.memory_mb", "sandbox.cpu_millis", "sandbox.pids_limit", "sandbox.cap_add", "sandbox.network", "sandbox.writable_rootfs", "sandbox.env_delivery":
		return strings.Replace(field, ".", "_", 1)
	}
	return ""
}

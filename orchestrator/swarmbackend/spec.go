package swarmbackend

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"

	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/runner"
)

// Labels on every service and secret the backend makes. They are not the
// Docker backend's (runner.LabelManaged): Swarm copies no service label
// onto the task's container, and the Docker backend on the same engine
// must not take a Swarm task's container for one of its own.
const (
	LabelManaged = "envvault.swarm" // always "true"
	LabelTask    = runner.LabelTask
	LabelUser    = runner.LabelUser
	LabelProfile = runner.LabelProfile
	// LabelName is on the secret: the name of the service it serves.
	LabelName = "envvault.name"
)

// The env block in the task's container: a Swarm secret, which Swarm
// mounts as a file of an in-memory filesystem, read by envvault-init -f.
const (
	SecretTarget = "envvault-env"
	SecretPath   = "/run/secrets/" + SecretTarget
)

// MaxSecretSize is Swarm's limit on a secret's data (500 KiB), and so on
// a task's env block (runner/envblock: 4 bytes + NAME=value\0 per name).
const MaxSecretSize = 500 << 10

// stopConstraint is the placement constraint Stop adds: no node has this
// id, so the task that replaces the stopped one is never scheduled, and the
// stopped one keeps its exit code (see Stop).
const stopConstraint = "node.id==envvault-stopped"

// constraintRE is Swarm's placement constraint syntax: an attribute of
// the node or its engine, == or !=, a value.
var constraintRE = regexp.MustCompile(`^(node\.(id|hostname|role|platform\.os|platform\.arch|labels\.[A-Za-z0-9_.-]+)|engine\.labels\.[A-Za-z0-9_.-]+)\s*(==|!=)\s*[^\s=!][^=!]*$`)

// ValidateConstraint checks one operator placement constraint, such as
// "node.labels.pool==agents" or "node.role!=manager".
func ValidateConstraint(c string) error {
	if !constraintRE.MatchString(strings.TrimSpace(c)) {
		return fmt.Errorf("placement constraint %q: want ATTRIBUTE==VALUE or ATTRIBUTE!=VALUE, ATTRIBUTE one of node.id, node.hostname, node.role, node.platform.os, node.platform.arch, node.labels.NAME, engine.labels.NAME", c)
	}
	return nil
}

// serviceInput is what toServiceSpec needs beyond the orchestrator's
// spec: what Start has found or made.
type serviceInput struct {
	argv        []string // what the init execs (runner.ProcessArgv)
	initVolume  string
	secretID    string
	secretName  string
	grace       time.Duration
	constraints []string
}

// toServiceSpec is the service of a task: one replica, never restarted,
// the init as its command reading the env block from the secret, and the
// vault's sandbox settings as far as Swarm's service spec carries them
// (see the package doc for what it does not). It holds no env value.
func toServiceSpec(s orchestrator.Spec, in serviceInput) (swarm.ServiceSpec, error) {
	sb := s.Sandbox
	var networks []swarm.NetworkAttachmentConfig
	switch sb.Network {
	case "", "bridge", "default":
		// The node's default bridge, as a container's default.
	case "none":
		return swarm.ServiceSpec{}, fmt.Errorf("network none is not available to Docker Swarm services (Engine 20.10 cannot attach a service to the none network): allow only bridge (--networks bridge) on a Swarm worker")
	default:
		networks = []swarm.NetworkAttachmentConfig{{Target: sb.Network}}
	}
	uid, gid, mode := secretOwner(sb.User)
	one, grace := uint64(1), in.grace
	labels := map[string]string{LabelManaged: "true", LabelTask: s.TaskID, LabelUser: s.UserID, LabelProfile: s.ProfileID}
	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: s.Name, Labels: labels},
		Mode:        swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{
				Image: s.Image,
				// On the task's container too, so that it can be found by
				// them; LabelManaged is not the Docker backend's.
				Labels:  labels,
				Command: []string{runner.InitProgram, "-f", SecretPath, "--"},
				Args:    in.argv,
				User:    sb.User,
				// Hardening Swarm carries: capabilities, read-only root.
				CapabilityDrop:  []string{"ALL"},
				CapabilityAdd:   append([]string(nil), sb.CapAdd...),
				ReadOnly:        sb.ReadOnlyRootfs,
				StopGracePeriod: &grace,
				Mounts: []mount.Mount{
					{Type: mount.TypeVolume, Source: in.initVolume, Target: runner.InitDir, ReadOnly: true,
						VolumeOptions: &mount.VolumeOptions{NoCopy: true}},
					// Swarm mounts it rw,nosuid,nodev,noexec, mode 1777.
					{Type: mount.TypeTmpfs, Target: runner.TmpDir, TmpfsOptions: &mount.TmpfsOptions{SizeBytes: sb.MemoryMB << 20}},
				},
				Secrets: []*swarm.SecretReference{{
					File:     &swarm.SecretReferenceFileTarget{Name: SecretTarget, UID: uid, GID: gid, Mode: mode},
					SecretID: in.secretID, SecretName: in.secretName,
				}},
			},
			Resources: &swarm.ResourceRequirements{Limits: &swarm.Limit{
				NanoCPUs: sb.CPUMillis * 1_000_000, MemoryBytes: sb.MemoryMB << 20, Pids: sb.PidsLimit,
			}},
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionNone},
			Placement:     &swarm.Placement{Constraints: append([]string(nil), in.constraints...)},
			Networks:      networks,
			// Service logs need a driver that keeps them.
			LogDriver: &swarm.Driver{Name: "json-file"},
		},
		UpdateConfig: &swarm.UpdateConfig{Parallelism: 1, Order: swarm.UpdateOrderStopFirst, FailureAction: swarm.UpdateFailureActionContinue},
	}
	return spec, nil
}

// secretOwner is the owner and mode of the env block's file: readable by
// the task's user only when the user is numeric (uid or uid:gid), else by
// every user of the container (Swarm takes numbers only, and the image's
// user names are not known to the manager).
func secretOwner(user string) (uid, gid string, mode os.FileMode) {
	if user == "" {
		return "0", "0", 0o400
	}
	u, g, hasGroup := strings.Cut(user, ":")
	if _, err := strconv.ParseUint(u, 10, 32); err != nil {
		return "0", "0", 0o444
	}
	if !hasGroup {
		return u, "0", 0o400
	}
	if _, err := strconv.ParseUint(g, 10, 32); err != nil {
		return u, "0", 0o400
	}
	return u, g, 0o400
}

// state is the orchestrator's State of a service whose first task is
// task (nil: none yet).
func state(task *swarm.Task) orchestrator.State {
	if task == nil {
		return orchestrator.StateCreated
	}
	switch task.Status.State {
	case swarm.TaskStateNew, swarm.TaskStatePending, swarm.TaskStateAssigned, swarm.TaskStateAccepted,
		swarm.TaskStatePreparing, swarm.TaskStateReady, swarm.TaskStateStarting:
		// Not started yet: recovery removes it and starts the attempt
		// again.
		return orchestrator.StateCreated
	case swarm.TaskStateRunning:
		return orchestrator.StateRunning
	case swarm.TaskStateComplete, swarm.TaskStateFailed, swarm.TaskStateShutdown, swarm.TaskStateRejected,
		swarm.TaskStateOrphaned, swarm.TaskStateRemove:
		return orchestrator.StateExited
	}
	return orchestrator.StateUnknown
}

// first is the task a service was made for: its oldest. Stop's update
// adds another, which never runs.
func first(tasks []swarm.Task) *swarm.Task {
	var out *swarm.Task
	for i := range tasks {
		if out == nil || tasks[i].CreatedAt.Before(out.CreatedAt) {
			out = &tasks[i]
		}
	}
	return out
}

package runner

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/volume"
)

// Env delivery modes (Spec.EnvDelivery).
const (
	// DeliveryEnv gives the env to the engine as the container's Env:
	// every value stands in `docker inspect` and the engine's on-disk
	// container config.
	DeliveryEnv = "env"
	// DeliveryStdin gives the engine no value: the container runs
	// envvault-init (InitProgram, from a read-only named volume), which
	// reads the env from its stdin, attached before the start and closed
	// once the block is written, and execs the command.
	DeliveryStdin = "stdin"
)

// The init program's place in a task container with stdin delivery: the
// named volume is mounted read-only at InitDir.
const (
	InitDir     = "/.envvault"
	InitProgram = InitDir + "/init"
)

// LabelInit marks the image, volume and fill container of an init; its
// value is the init's content hash.
const LabelInit = "envvault.init"

// DefaultInitName names the init's image (NAME:HASH) and volume
// (NAME-HASH) unless Options say otherwise.
const DefaultInitName = "envvault-init"

// DeliveryTimeout bounds writing the env block into a started container;
// a container whose init never reads it is removed.
const DeliveryTimeout = 30 * time.Second

// ErrNoInit: stdin delivery was asked for but the runner has no usable
// init program (Options.InitPath).
var ErrNoInit = errors.New("env init unavailable")

// initState is the runner's prepared init: the volume holding it.
type initState struct {
	path, name string
	volume     string // "" until prepared
}

// ensureInit prepares, once per runner, the named volume holding the init
// program: an image FROM nothing holding only InitProgram, and a container
// created (never started) from it with the empty volume mounted at
// InitDir, which makes the engine copy the program into the volume. Both
// are named by the program's content hash, so runners of one build share
// them and a new build gets its own. Returns the volume's name.
func (r *Runner) ensureInit(ctx context.Context) (string, error) {
	r.initMu.Lock()
	defer r.initMu.Unlock()
	if r.init.volume != "" {
		return r.init.volume, nil
	}
	if r.init.path == "" {
		return "", newError(ErrNoInit, "env delivery stdin needs the envvault-init program and none is configured (--env-init)", nil)
	}
	prog, err := readInit(r.init.path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(prog)
	hash := hex.EncodeToString(sum[:])[:16]
	ref, vol := r.init.name+":"+hash, r.init.name+"-"+hash
	labels := map[string]string{LabelInit: hash}
	if err := r.importInit(ctx, ref, hash, prog); err != nil {
		return "", err
	}
	if _, err := r.cli.VolumeCreate(ctx, volume.CreateOptions{Name: vol, Labels: labels}); err != nil {
		return "", opError(ctx, r, "create the init volume "+vol, err)
	}
	fill, err := r.cli.ContainerCreate(ctx,
		&container.Config{Image: ref, Entrypoint: []string{InitProgram}, Labels: labels, NetworkDisabled: true},
		&container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: vol, Target: InitDir}}},
		nil, nil, "")
	if err != nil {
		return "", opError(ctx, r, "fill the init volume "+vol, err)
	}
	if err := r.cli.ContainerRemove(ctx, fill.ID, container.RemoveOptions{Force: true}); err != nil {
		return "", opError(ctx, r, "remove the init volume's fill container "+fill.ID, err)
	}
	r.init.volume = vol
	return vol, nil
}

// readInit reads the init program and checks that it can run in any
// image: a Linux ELF executable without an interpreter (static).
func readInit(path string) ([]byte, error) {
	prog, err := os.ReadFile(path)
	if err != nil {
		return nil, newError(ErrNoInit, fmt.Sprintf("read the envvault-init program: %v", err), err)
	}
	f, err := elf.NewFile(bytes.NewReader(prog))
	if err != nil {
		return nil, newError(ErrNoInit, fmt.Sprintf("envvault-init program %s is not an ELF executable", path), err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return nil, newError(ErrNoInit, fmt.Sprintf("envvault-init program %s is dynamically linked: build it with CGO_ENABLED=0 so that it runs in any image", path), nil)
		}
	}
	return prog, nil
}

// importInit makes the image ref hold only the init program, unless the
// engine has it already.
func (r *Runner) importInit(ctx context.Context, ref, hash string, prog []byte) error {
	if _, err := r.cli.ImageInspect(ctx, ref); err == nil {
		return nil
	} else if !cerrdefs.IsNotFound(err) {
		return opError(ctx, r, "inspect the init image "+ref, err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	_ = tw.WriteHeader(&tar.Header{Name: InitDir[1:] + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch})
	_ = tw.WriteHeader(&tar.Header{Name: InitProgram[1:], Typeflag: tar.TypeReg, Mode: 0o555, Size: int64(len(prog)), ModTime: epoch})
	_, _ = tw.Write(prog)
	if err := tw.Close(); err != nil {
		return fmt.Errorf("pack the init program: %w", err)
	}
	rc, err := r.cli.ImageImport(ctx, image.ImportSource{Source: &buf, SourceName: "-"}, ref,
		image.ImportOptions{Changes: []string{"LABEL " + LabelInit + "=" + hash}})
	if err != nil {
		return opError(ctx, r, "import the init image "+ref, err)
	}
	defer rc.Close()
	var out bytes.Buffer
	_, _ = out.ReadFrom(rc)
	if _, err := r.cli.ImageInspect(ctx, ref); err != nil {
		return opError(ctx, r, "import the init image "+ref+" (the engine said: "+out.String()+")", err)
	}
	return nil
}

// forgetInit makes the next start with stdin delivery prepare the init
// again.
func (r *Runner) forgetInit() {
	r.initMu.Lock()
	r.init.volume = ""
	r.initMu.Unlock()
}

// RemoveInit removes the init image and volume this runner prepared, if
// no container uses them. Tests call it; an operator keeps them.
func (r *Runner) RemoveInit(ctx context.Context) error {
	r.initMu.Lock()
	defer r.initMu.Unlock()
	vol := r.init.volume
	if vol == "" {
		return nil
	}
	r.init.volume = ""
	ref := r.init.name + ":" + vol[len(r.init.name)+1:]
	errV := r.cli.VolumeRemove(ctx, vol, false)
	_, errI := r.cli.ImageRemove(ctx, ref, image.RemoveOptions{PruneChildren: true})
	return errors.Join(errV, errI)
}

// stdinConfig turns the env-delivery configuration of spec into stdin
// delivery: no env value in the configuration, the init as entrypoint
// with what the container would have run as its arguments, stdin open
// for one attach, and the init's volume mounted read-only (never copied
// into: the engine would copy the image's InitDir).
func stdinConfig(cfg *container.Config, host *container.HostConfig, spec *Spec, img imageConfig, vol string) error {
	argv, err := processArgv(cfg, spec, img)
	if err != nil {
		return err
	}
	cfg.Entrypoint = []string{InitProgram, "--"}
	cfg.Cmd = argv
	cfg.Env = nil
	cfg.OpenStdin, cfg.StdinOnce, cfg.AttachStdin = true, true, true
	host.Mounts = append(host.Mounts, mount.Mount{
		Type: mount.TypeVolume, Source: vol, Target: InitDir, ReadOnly: true,
		VolumeOptions: &mount.VolumeOptions{NoCopy: true},
	})
	return nil
}

// processArgv is what the init execs in a container of configuration
// cfg (toConfig of spec on an image whose own configuration is img).
func processArgv(cfg *container.Config, spec *Spec, img imageConfig) ([]string, error) {
	var argv []string
	switch {
	case len(cfg.Entrypoint) > 0: // setup commands: the shell runs ARGV
		argv = slices.Concat(cfg.Entrypoint, cfg.Cmd)
	case len(spec.Command) > 0:
		argv = slices.Concat(img.Entrypoint, spec.Command)
	default:
		argv = slices.Concat(img.Entrypoint, img.Cmd)
	}
	if len(argv) == 0 {
		return nil, newError(ErrBadCommand, fmt.Sprintf("image %s has no entrypoint or CMD and the profile gives no command", quoteSafe(spec, spec.Image)), nil)
	}
	return argv, nil
}

// PrepareInit makes the init's volume ready on this engine, once per
// runner, and returns its name: for a backend that mounts it in
// containers it makes itself (orchestrator/swarmbackend). Returns ErrNoInit,
// ErrUnavailable or ErrRefused.
func (r *Runner) PrepareInit(ctx context.Context) (string, error) {
	return r.ensureInit(ctx)
}

// ProcessArgv returns the argv the process of spec runs, as the init
// execs it with DeliveryStdin: the image's entrypoint and CMD, as this
// engine has the image, with spec's command and setup commands (the
// shell script of toConfig) applied. For a backend that runs the init
// itself (orchestrator/swarmbackend). Returns ErrInvalidSpec,
// ErrImageNotFound, ErrBadCommand, ErrUnavailable or ErrRefused.
func (r *Runner) ProcessArgv(ctx context.Context, spec Spec) ([]string, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	inspect, err := r.cli.ImageInspect(ctx, spec.Image)
	if err != nil {
		return nil, startError(ctx, r, stepImage, &spec, err)
	}
	var img imageConfig
	if inspect.Config != nil {
		img = imageConfig{Entrypoint: inspect.Config.Entrypoint, Cmd: inspect.Config.Cmd, Env: inspect.Config.Env}
	}
	cfg, _ := toConfig(spec, img)
	return processArgv(cfg, &spec, img)
}

// deliver writes the env block to the stdin of a created container: it
// attaches first, so that no byte is lost, then starts it; while the init
// waits for the block it checks the init's program (checkProgram), then
// writes the block and closes stdin (StdinOnce: the init reads EOF after
// it). If the runtime cannot start the init, its volume was emptied.
func (r *Runner) deliver(ctx context.Context, id string, spec *Spec, img imageConfig, program string, block []byte) error {
	att, err := r.cli.ContainerAttach(ctx, id, container.AttachOptions{Stream: true, Stdin: true})
	if err != nil {
		return startError(ctx, r, stepCreate, spec, err)
	}
	defer att.Close()
	if err := r.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		if ok, serr := r.executable(ctx, id, InitProgram); cerrdefs.IsInvalidArgument(err) && serr == nil && !ok {
			// The volume was removed by hand since it was filled,
			// and the engine mounted a new, empty one.
			r.forgetInit()
			return newError(ErrNoInit, "the envvault-init volume lost its program (removed by hand?); it is filled again at the next start", nil)
		}
		return startError(ctx, r, stepStart, spec, err)
	}
	if err := r.checkProgram(ctx, id, spec, img, program); err != nil {
		return err
	}
	_ = att.Conn.SetWriteDeadline(time.Now().Add(DeliveryTimeout))
	if _, err := att.Conn.Write(block); err != nil {
		why := class(err)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			why = fmt.Sprintf("the container read none of it within %s", DeliveryTimeout)
		}
		return newError(ErrRefused, "deliver the env over the container's stdin: "+why, nil)
	}
	if err := att.CloseWrite(); err != nil {
		return newError(ErrRefused, "close the container's stdin after its env: "+class(err), nil)
	}
	return nil
}

// defaultPath is the PATH the engine gives a container whose env and
// image set none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// checkProgram makes, in a container whose init waits for its block, the
// check the runtime makes at the start of a container whose entrypoint is
// its program: that name (looked up in the PATH the process will have, if
// it holds no '/') is an executable file. With stdin delivery the runtime
// starts the init instead, so without it a missing command would only end
// the container, after the init's exec. Returns badCommand(spec) if the
// program is not found.
func (r *Runner) checkProgram(ctx context.Context, id string, spec *Spec, img imageConfig, name string) error {
	candidates := []string{name}
	if !strings.Contains(name, "/") {
		search, ok := spec.Env["PATH"]
		for _, kv := range img.Env {
			if v, found := strings.CutPrefix(kv, "PATH="); found && !ok {
				search, ok = v, true
			}
		}
		if !ok {
			search = defaultPath
		}
		candidates = candidates[:0]
		for _, dir := range strings.Split(search, ":") {
			if dir == "" {
				dir = "."
			}
			candidates = append(candidates, path.Join("/", dir, name))
		}
	}
	for _, c := range candidates {
		ok, err := r.executable(ctx, id, c)
		if err != nil || ok {
			return err
		}
	}
	return badCommand(spec)
}

// executable reports whether p, in the container's filesystem, is (a
// symbolic link to) a regular file that someone may execute.
func (r *Runner) executable(ctx context.Context, id, p string) (bool, error) {
	for range 8 { // symbolic links followed at most
		st, err := r.cli.ContainerStatPath(ctx, id, p)
		switch {
		case cerrdefs.IsNotFound(err):
			return false, nil
		case err != nil:
			// The engine's message may quote the path, which may hold a
			// value (quoteSafe): only its class goes in the error.
			return false, newError(ErrRefused, "look for the command in container "+id+": "+class(err), nil)
		case st.Mode&os.ModeSymlink != 0 && st.LinkTarget != "":
			// The engine resolves the link in the container's root;
			// a relative target is taken from the link's directory.
			if path.IsAbs(st.LinkTarget) {
				p = st.LinkTarget
			} else {
				p = path.Join(path.Dir(p), st.LinkTarget)
			}
			continue
		}
		return st.Mode.IsRegular() && st.Mode&0o111 != 0, nil
	}
	return false, nil
}

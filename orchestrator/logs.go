package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/envvault/envvault/mask"
	"github.com/envvault/envvault/vault"
)

// maskable returns the values to mask in a task's logs: every secret and
// baseline value, the platform's keys included.
func maskable(secrets []vault.ReleasedSecret, baseline map[string]string) []string {
	values := make([]string, 0, len(secrets)+len(baseline))
	for _, s := range secrets {
		values = append(values, s.Value)
	}
	return append(values, slices.Collect(maps.Values(baseline))...)
}

// reattachMasks returns the values to mask in the logs of a container
// found after a restart of envvault (maskValues). Its error, but for a
// context's, is why the task fails, safe to show its owner: the
// backend's, or an internal error (logged) of the vault.
func (o *Orchestrator) reattachMasks(ctx context.Context, t *Task, containerID string, log *slog.Logger) ([]string, error) {
	env, err := o.runner.Env(ctx, containerID)
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.Is(err, ErrContainerNotFound):
		return nil, errors.New("its container was gone when envvault restarted")
	case err != nil:
		return nil, fmt.Errorf("reattach after restart: %w", err)
	}
	values, err := o.maskValues(ctx, t, env)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		log.Error("reattach", "err", err)
		return nil, errors.New("reattach after restart: internal error")
	}
	// The attempt's task credential, made again from its recorded start
	// (the engine holds it only with env delivery).
	if t.StartedAt != nil {
		if token := o.issueCredential(t, *t.StartedAt); token != "" {
			values = append(values, token)
		}
	}
	return values, nil
}

// maskValues rebuilds, after a restart of envvault, the values to mask in
// the logs of a container started before it: the values the container was
// given (env, as the engine recorded it) of every name not recorded as
// coming from the profile or the task — all of them if the start was never
// recorded —, the values of the secret versions its env sources name (a
// secret rotated since the container started: with stdin delivery the
// engine holds no value, and the vault keeps the last versions), and the
// profile's current secret and baseline values.
func (o *Orchestrator) maskValues(ctx context.Context, t *Task, env []string) ([]string, error) {
	plain := map[string]bool{}
	for _, s := range t.EnvSources {
		if s.Source == SourceProfile || s.Source == SourceTask {
			plain[s.Name] = true
		}
	}
	var values []string
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		if !plain[name] {
			values = append(values, value)
		}
	}
	// With stdin delivery the engine holds none of the values: the vault
	// gives those of the versions the container was given.
	var given []vault.EnvSecret
	for _, s := range t.EnvSources {
		if s.Source == SourceSecret {
			given = append(given, vault.EnvSecret{Name: s.Name, SecretID: s.SecretID, Version: s.Version})
		}
	}
	old, err := o.vault.ValuesAtVersions(ctx, t.UserID, given)
	if err != nil && !errors.Is(err, vault.ErrDecrypt) {
		return nil, err
	}
	values = append(values, old...)
	secrets, err := o.vault.GetDecryptedForProfileWithSources(ctx, t.UserID, t.ProfileID)
	if err != nil && vault.ErrorCode(err) != vault.ENOTFOUND && !errors.Is(err, vault.ErrDecrypt) {
		return nil, err
	}
	return append(values, maskable(secrets, o.baseline.Env)...), nil
}

// storeLogs copies the container's output, masked, into the store until
// the container exits (or ctx ends), then stores what is left. exited is
// closed once the container has exited.
func (o *Orchestrator) storeLogs(ctx context.Context, taskID, containerID string, masked []string, exited <-chan struct{}) error {
	rc, err := o.runner.Logs(ctx, containerID, true)
	if err != nil {
		return err
	}
	defer rc.Close()
	w := &logWriter{ctx: context.WithoutCancel(ctx), o: o, taskID: taskID, limit: o.maxLogBytes}
	m := mask.NewWriter(w, masked)
	// Past the limit the stream is read no further.
	read := &countingReader{r: rc, stop: w.isFull}
	_, copyErr := io.Copy(timedWriter{w: m, obs: o.observe}, read)
	if copyErr == nil && !w.isFull() {
		copyErr = o.catchUpLogs(ctx, containerID, read.n, m, exited)
	}
	// The masker hands the writer what it held back, the writer stores
	// what it has batched.
	err = errors.Join(m.Close(), w.Close())
	if copyErr != nil && ctx.Err() == nil {
		return fmt.Errorf("copy logs: %w", errors.Join(copyErr, err))
	}
	return err
}

// logCatchUpMax bounds catchUpLogs: a log longer than this is not read
// again, which would double the engine's work for every large log.
const logCatchUpMax = 16 << 20

// catchUpLogs copies what a followed log stream that ended left unread:
// the Docker Engine (20.10, json-file) has ended a follow at the
// container's exit before the last of a chatty program's output
// (TestChattyTaskLogs: 179,667 of 208,894 bytes). Once the container has
// exited, its whole log is read again, without follow, and what follows
// the first n bytes goes on to w, if n is at most logCatchUpMax. A
// container already gone is no error.
func (o *Orchestrator) catchUpLogs(ctx context.Context, containerID string, n int64, w io.Writer, exited <-chan struct{}) error {
	if n > logCatchUpMax {
		return nil
	}
	select {
	case <-exited:
	case <-ctx.Done():
		return nil
	}
	rc, err := o.runner.Logs(ctx, containerID, false)
	if err != nil {
		return nil
	}
	defer rc.Close()
	if _, err := io.CopyN(io.Discard, rc, n); err != nil {
		return nil // no more than was read: nothing was missed
	}
	_, err = io.Copy(w, rc)
	return err
}

// countingReader counts the bytes read through it, and ends (io.EOF) once
// stop says so.
type countingReader struct {
	r    io.Reader
	n    int64
	stop func() bool
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.stop() {
		return 0, io.EOF
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Log chunks are batched: Docker delivers a program's output a line at a
// time, and a row per line would make a chatty program wait on the
// store (20,000 lines took 18 s unbatched). A chunk is stored once it holds
// logBatchSize bytes, or logBatchDelay after its first byte, so a follower
// sees output at most that late.
const (
	logBatchSize  = 64 << 10
	logBatchDelay = 50 * time.Millisecond
)

// DefaultMaxLogBytes is how much of one container's output is stored
// unless the operator says otherwise (--max-task-log-mib): a task's code
// is not the platform's, and could print until the database is full.
const DefaultMaxLogBytes = 64 << 20

// logWriter stores a task's masked output in batches; see logBatchSize.
// It stores at most limit bytes of output, then a line saying the rest is
// not stored, and discards the rest. Close stores what it holds. It is
// safe for the concurrent use of its Write and its own timer.
type logWriter struct {
	ctx    context.Context
	o      *Orchestrator
	taskID string
	limit  int64

	mu     sync.Mutex
	buf    []byte
	stored int64       // output taken, up to limit
	full   bool        // limit reached: the rest is discarded
	timer  *time.Timer // pending flush of buf, nil if none
	err    error       // the first failed store write; every later call returns it
}

// sizeText is n bytes in MiB where it is a whole number of them.
func sizeText(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// isFull reports whether the writer took all the output it may store.
func (w *logWriter) isFull() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.full
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	if w.full {
		return len(p), nil
	}
	take := p
	if w.stored+int64(len(p)) > w.limit {
		take = p[:w.limit-w.stored]
		w.full = true
	}
	w.stored += int64(len(take))
	w.buf = append(w.buf, take...)
	if w.full {
		w.buf = fmt.Appendf(w.buf, "\n--- envvault: the output passed the log limit of %s (--max-task-log-mib); the rest is not stored ---\n", sizeText(w.limit))
	}
	switch {
	case len(w.buf) >= logBatchSize:
		w.flushLocked()
	case w.timer == nil && len(w.buf) > 0:
		w.timer = time.AfterFunc(logBatchDelay, func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.flushLocked()
		})
	}
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// Close stores what the writer holds.
func (w *logWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flushLocked()
	return w.err
}

func (w *logWriter) flushLocked() {
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	if len(w.buf) == 0 || w.err != nil {
		return
	}
	data := w.buf
	w.buf = nil
	if err := w.o.store.AppendTaskLog(w.ctx, w.taskID, data); err != nil {
		w.err = err
		return
	}
	w.o.notify()
}

// Logs streams a task's stored, masked output to emit from the start. With
// follow it goes on until the task is finished and every chunk is out, or
// ctx ends. Returns ENOTFOUND if the task does not exist.
func (o *Orchestrator) Logs(ctx context.Context, userID, id string, follow bool, emit func([]byte) error) error {
	if _, err := o.store.Task(ctx, userID, id); err != nil {
		return fmt.Errorf("read logs of task %s: %w", id, err)
	}
	var seq int64
	for {
		changed := o.Changes()
		n, err := o.emitLogs(ctx, id, &seq, emit)
		if err != nil || !follow {
			return err
		}
		if n > 0 {
			continue
		}
		t, err := o.store.Task(ctx, userID, id)
		if err != nil {
			return fmt.Errorf("read task %s: %w", id, err)
		}
		if t.Status.Done() {
			// Chunks written before the status changed are read above;
			// one last read catches those that raced with it.
			_, err := o.emitLogs(ctx, id, &seq, emit)
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-time.After(o.poll):
		}
	}
}

// emitLogs emits the task's stored chunks after *seq, moves *seq to the
// last, and returns how many it emitted.
func (o *Orchestrator) emitLogs(ctx context.Context, id string, seq *int64, emit func([]byte) error) (int, error) {
	chunks, err := o.store.TaskLogs(ctx, id, *seq)
	if err != nil {
		return 0, fmt.Errorf("read logs of task %s: %w", id, err)
	}
	for _, c := range chunks {
		if err := emit(c.Data); err != nil {
			return 0, err
		}
		*seq = c.Seq
	}
	return len(chunks), nil
}

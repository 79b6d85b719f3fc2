package swarmbackend

import (
	"context"
	"io"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/pkg/stdcopy"
)

// Logs returns the output of the service's task, stdout and stderr
// merged, raw (mask it before storing it). Swarm's service logs, once
// followed, go on after the task has ended (until the service is
// removed), so with follow the backend reads them until the task has
// ended, then reads them again without follow and passes on what it had
// not: the reader ends with the task, as a container's does. The caller
// closes it.
func (b *Backend) Logs(ctx context.Context, id string, follow bool) (io.ReadCloser, error) {
	if _, _, err := b.cli.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{}); err != nil {
		return nil, b.opError(ctx, "read the logs of service "+id, err)
	}
	lctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(b.copyLogs(lctx, id, follow, pw)) }()
	return &logs{PipeReader: pr, cancel: cancel}, nil
}

type logs struct {
	*io.PipeReader
	cancel context.CancelFunc
}

func (l *logs) Close() error {
	l.cancel()
	return l.PipeReader.Close()
}

// copyLogs writes the service's logs to w: see Logs.
func (b *Backend) copyLogs(ctx context.Context, id string, follow bool, w io.Writer) error {
	var sent int64
	if follow {
		n, err := b.followLogs(ctx, id, w)
		if err != nil {
			return err
		}
		sent = n
	}
	raw, err := b.cli.ServiceLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return b.opError(ctx, "read the logs of service "+id, err)
	}
	defer raw.Close()
	rest := &skipWriter{w: w, skip: sent}
	_, err = stdcopy.StdCopy(rest, rest, raw)
	return err
}

// followLogs follows the logs into w until the task has ended, and
// returns how many bytes it wrote.
func (b *Backend) followLogs(ctx context.Context, id string, w io.Writer) (int64, error) {
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	raw, err := b.cli.ServiceLogs(fctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: true})
	if err != nil {
		return 0, b.opError(ctx, "follow the logs of service "+id, err)
	}
	ended := make(chan error, 1)
	go func() {
		_, err := b.Wait(fctx, id)
		ended <- err
	}()
	cw := &countWriter{w: w}
	copied := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(cw, cw, raw)
		copied <- err
	}()
	select {
	case <-copied:
		// The stream ended first: the service was removed, or ctx ended.
	case <-ended:
		stop()
		_ = raw.Close()
		<-copied
	}
	_ = raw.Close()
	if ctx.Err() != nil {
		return cw.n, ctx.Err()
	}
	// Whatever ended the follow (the task's end, even one without a
	// container, or the service's removal), the read without follow
	// gives the rest, or says why it cannot.
	return cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// skipWriter drops the first skip bytes written to it.
type skipWriter struct {
	w    io.Writer
	skip int64
}

func (s *skipWriter) Write(p []byte) (int, error) {
	n := len(p)
	if s.skip >= int64(n) {
		s.skip -= int64(n)
		return n, nil
	}
	if _, err := s.w.Write(p[s.skip:]); err != nil {
		return 0, err
	}
	s.skip = 0
	return n, nil
}

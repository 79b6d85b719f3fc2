package orchestrator

import "time"

// Observer is told what the worker measures (Config.Observer): the
// metrics package implements it. Its methods must be cheap and must not
// block: they run on the worker's paths.
type Observer interface {
	// TaskStarted: a task's container runs, waited after the task was
	// created (first attempts only: a restart's wait is not known).
	TaskStarted(waited time.Duration)
	// TaskFinished: a task ended in state (succeeded, failed, stopped),
	// or a waiting task's secret request expired (failed) or was
	// cancelled (cancelled).
	TaskFinished(state string)
	// LogsMasked: n bytes of a task's output went through the masker
	// and on to be stored, in took.
	LogsMasked(n int, took time.Duration)
}

// noObserver is the Observer of an orchestrator told of none.
type noObserver struct{}

func (noObserver) TaskStarted(time.Duration)     {}
func (noObserver) TaskFinished(string)           {}
func (noObserver) LogsMasked(int, time.Duration) {}

// observerOr returns obs, or an Observer that does nothing if it is nil.
func observerOr(obs Observer) Observer {
	if obs == nil {
		return noObserver{}
	}
	return obs
}

// timedWriter tells obs how many bytes each Write handed to w (the
// masker) and how long w took with them.
type timedWriter struct {
	w   interface{ Write([]byte) (int, error) }
	obs Observer
}

func (t timedWriter) Write(p []byte) (int, error) {
	start := time.Now()
	n, err := t.w.Write(p)
	t.obs.LogsMasked(n, time.Since(start))
	return n, err
}

package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Task states as the labels name them: the orchestrator's statuses.
var (
	liveStates     = []string{"queued", "awaiting_secrets", "starting", "running"}
	finishedStates = set("succeeded", "failed", "stopped", "cancelled")
)

func (m *Metrics) taskMetrics() {
	m.taskStart = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Subsystem: "task", Name: "start_latency_seconds",
		Help: "Time from a task's queueing (its creation, or its restart) to its container running, for the tasks this process's worker started.",
		// 50 ms to about 14 minutes: a busy queue waits for free slots.
		Buckets: prometheus.ExponentialBuckets(0.05, 2, 15),
	})
	m.tasksFinished = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "tasks", Name: "finished_total",
		Help: "Tasks this process saw end, by final state: its worker's (succeeded, failed, stopped) and waiting tasks whose secret request expired (failed) or was cancelled (cancelled).",
	}, []string{"state"})
	for s := range finishedStates {
		m.tasksFinished.WithLabelValues(s)
	}
	m.maskedBytes = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "logs", Name: "masked_bytes_total",
		Help: "Bytes of task output this process's worker passed through the masker.",
	})
	m.maskSeconds = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "logs", Name: "mask_seconds_total",
		Help: "Time this process's worker spent masking task output and handing it on to be stored.",
	})
	m.reg.MustRegister(m.taskStart, m.tasksFinished, m.maskedBytes, m.maskSeconds)
}

// TaskStarted records that a task's container runs, waited after the task
// was queued.
func (m *Metrics) TaskStarted(waited time.Duration) {
	if m == nil {
		return
	}
	m.taskStart.Observe(max(waited, 0).Seconds())
}

// TaskFinished records that a task ended in state (succeeded, failed,
// stopped or cancelled; anything else is not counted).
func (m *Metrics) TaskFinished(state string) {
	if m == nil || !finishedStates[state] {
		return
	}
	m.tasksFinished.WithLabelValues(state).Inc()
}

// LogsMasked records that n bytes of task output went through the masker
// in took.
func (m *Metrics) LogsMasked(n int, took time.Duration) {
	if m == nil {
		return
	}
	m.maskedBytes.Add(float64(n))
	m.maskSeconds.Add(took.Seconds())
}

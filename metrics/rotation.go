package metrics

import "github.com/prometheus/client_golang/prometheus"

// rotation is the progress of a key rotation this process runs
// (envvault keys rotate --metrics-addr).
type rotation struct {
	done, total prometheus.Gauge
}

func (m *Metrics) rotationMetrics() {
	m.rotation.done = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Subsystem: "key_rotation", Name: "done",
		Help: "Data keys this process's key rotation has dealt with so far (envvault keys rotate).",
	})
	m.rotation.total = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Subsystem: "key_rotation", Name: "total",
		Help: "Data keys under other master keys when this process's key rotation began.",
	})
	m.reg.MustRegister(m.rotation.done, m.rotation.total)
}

// RotationProgress records that a key rotation has dealt with done of
// total data keys (vault.RotateOptions.Progress).
func (m *Metrics) RotationProgress(done, total int) {
	if m == nil {
		return
	}
	m.rotation.done.Set(float64(done))
	m.rotation.total.Set(float64(total))
}

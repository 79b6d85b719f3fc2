package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// StoreStats is what a scrape reads from the store, across every user and
// every process sharing the database.
type StoreStats interface {
	// LiveTaskCounts counts the tasks queued, awaiting secrets, starting
	// and running, by status.
	LiveTaskCounts(ctx context.Context) (map[string]int, error)
	// MasterKeyCounts counts the data keys sealed under each master key.
	MasterKeyCounts(ctx context.Context) (map[string]int, error)
}

// storeReadTimeout bounds the store reads of one scrape.
const storeReadTimeout = 5 * time.Second

// WatchStore makes every scrape read the task counts and the data keys'
// master keys from st, so that they are the database's, whichever process
// is scraped. currentKeyID is the current master key's id. A failed read
// is logged to log, leaves its families out and sets
// envvault_store_reachable to 0. Nothing on a nil *Metrics.
func (m *Metrics) WatchStore(st StoreStats, currentKeyID string, log *slog.Logger) {
	if m == nil {
		return
	}
	m.reg.MustRegister(&storeCollector{st: st, current: currentKeyID, log: log})
}

var (
	tasksDesc = prometheus.NewDesc(namespace+"_tasks", "Tasks in the database now queued, awaiting secrets, starting or running, by state (every user, every worker).",
		[]string{"state"}, nil)
	queueDesc = prometheus.NewDesc(namespace+"_task_queue_depth", "Tasks in the database waiting for a worker (every user): envvault_tasks{state=\"queued\"}.",
		nil, nil)
	dataKeysDesc = prometheus.NewDesc(namespace+"_data_keys", "Data keys (of secrets and their kept versions) sealed under the current master key and under others: key rotation is done when other is 0.",
		[]string{"master_key"}, nil)
	reachableDesc = prometheus.NewDesc(namespace+"_store_reachable", "1 if this scrape's reads of the database succeeded, 0 if not.",
		nil, nil)
)

// storeCollector reads StoreStats at each scrape.
type storeCollector struct {
	st      StoreStats
	current string
	log     *slog.Logger
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- tasksDesc
	ch <- queueDesc
	ch <- dataKeysDesc
	ch <- reachableDesc
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), storeReadTimeout)
	defer cancel()
	ok := 1.0
	if tasks, err := c.st.LiveTaskCounts(ctx); err != nil {
		ok = 0
		c.log.Warn("metrics: cannot count tasks", "error", err.Error())
	} else {
		for _, s := range liveStates {
			ch <- prometheus.MustNewConstMetric(tasksDesc, prometheus.GaugeValue, float64(tasks[s]), s)
		}
		ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(tasks["queued"]))
	}
	if keys, err := c.st.MasterKeyCounts(ctx); err != nil {
		ok = 0
		c.log.Warn("metrics: cannot count data keys", "error", err.Error())
	} else {
		current, other := 0, 0
		for id, n := range keys {
			if id == c.current {
				current += n
			} else {
				other += n
			}
		}
		ch <- prometheus.MustNewConstMetric(dataKeysDesc, prometheus.GaugeValue, float64(current), "current")
		ch <- prometheus.MustNewConstMetric(dataKeysDesc, prometheus.GaugeValue, float64(other), "other")
	}
	ch <- prometheus.MustNewConstMetric(reachableDesc, prometheus.GaugeValue, ok)
}

// GroupCounts are a process's group commits since its store opened (on
// PostgreSQL: postgres.DB.GroupStats).
type GroupCounts struct {
	Groups int64 // transactions the group commit ran
	Writes int64 // writes taken into them
	Alone  int64 // of those, writes that ran again alone: their group rolled back, or their lock was held elsewhere
}

// WatchGroupCommits makes every scrape read this process's group commit
// counts from read. Nothing on a nil *Metrics.
func (m *Metrics) WatchGroupCommits(read func() GroupCounts) {
	if m == nil {
		return
	}
	for _, c := range []struct {
		name, help string
		of         func(GroupCounts) int64
	}{
		{"store_groups_total", "Transactions the group commit ran in this process: one commit for every write in it.", func(c GroupCounts) int64 { return c.Groups }},
		{"store_group_writes_total", "Writes this process took into a group commit.", func(c GroupCounts) int64 { return c.Writes }},
		{"store_group_writes_alone_total", "Writes of a group that ran again alone, in a transaction of their own: their group rolled back, or their secret's lock was held elsewhere.", func(c GroupCounts) int64 { return c.Alone }},
	} {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Name: c.name, Help: c.help},
			func() float64 { return float64(c.of(read())) }))
	}
}

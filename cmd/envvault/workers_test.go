package main

// Several workers, one database, under load (issue 12 item 3): the real
// binary as 2 API processes and 3 runners on one PostgreSQL database, 300
// short tasks on the real Docker Engine, one runner killed with SIGKILL
// while it runs tasks and started again with its --worker-id.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	dockerclient "github.com/docker/docker/client"
	"github.com/jackc/pgx/v5"

	"github.com/envvault/envvault/runner"
)

// The load: loadTasks tasks on loadRunners runners of loadMaxRunning slots
// each, posted through loadAPIs API processes.
const (
	loadTasks      = 300
	loadRunners    = 3
	loadAPIs       = 2
	loadMaxRunning = 4
	loadPosters    = 6                // concurrent POST /v1/tasks
	loadMargin     = 30 * time.Second // before go test's -timeout: time to dump the logs
	loadCanaryName = "LOAD_CANARY"
)

// proc is one envvault process the test started.
type proc struct {
	name string
	cmd  *exec.Cmd
	logs *lineWatcher // stderr: the JSON log
	out  *bytes.Buffer
}

// startProc starts the binary with args and env; it is stopped (SIGTERM,
// then SIGKILL) when the test ends, and its logs are printed if the test
// failed. awaitMsg, if not "", is the log message it waits for.
func startProc(t *testing.T, bin string, env []string, name, awaitMsg string, args ...string) (*proc, string) {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(bin, args...), out: &bytes.Buffer{}}
	p.cmd.Env = env
	p.cmd.Stdout = p.out
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p.logs = watchLines(stderr)
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = p.cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				_ = p.cmd.Process.Kill()
				<-done
			}
		}
		if t.Failed() {
			t.Logf("logs of %s (%s):\n%s", p.name, strings.Join(args, " "), p.logs)
		}
	})
	var line string
	if awaitMsg != "" {
		line = p.logs.await(t, fmt.Sprintf("%s to log %q", name, awaitMsg), func(l string) bool { return jsonField(l, "msg") == awaitMsg })
	}
	return p, line
}

// loadTask is what the test reads back of a task.
type loadTask struct {
	ID         string  `json:"id"`
	Status     string  `json:"status"`
	Attempt    int     `json:"attempt"`
	ExitCode   *int    `json:"exit_code"`
	Error      *string `json:"error"`
	CreatedAt  string  `json:"created_at"`
	StartedAt  *string `json:"started_at"`
	FinishedAt *string `json:"finished_at"`
}

// httpDo sends a request with token and returns the status and body; it
// is safe to call from any goroutine.
func httpDo(ctx context.Context, method, url, token string, body any) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err
}

// postTasks creates n tasks on profileID, alternating between the API
// processes at bases, from loadPosters goroutines, and returns their ids
// in the order of their index.
func postTasks(t *testing.T, bases []string, token, profileID string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	errs := make(chan error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range loadPosters {
		wg.Go(func() {
			for i := range next {
				url := bases[i%len(bases)] + "/v1/tasks"
				status, raw, err := httpDo(t.Context(), "POST", url, token, map[string]any{"profile_id": profileID, "prompt": fmt.Sprint(i)})
				var task loadTask
				if err == nil && status == http.StatusAccepted {
					err = json.Unmarshal(raw, &task)
				} else if err == nil {
					err = fmt.Errorf("status %d: %s", status, raw)
				}
				if err != nil {
					errs <- fmt.Errorf("POST %s (task %d): %w", url, i, err)
					continue
				}
				ids[i] = task.ID
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return ids
}

// containerEvents counts the Docker Engine's container events per task
// (by the runner's task label) for the containers of one profile.
type containerEvents struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced at every event
	counts  map[string]map[events.Action]int
	err     error
}

// watchContainers subscribes to the engine's events for the containers
// of profileID until the test ends.
func watchContainers(t *testing.T, cli dockerclient.APIClient, profileID string) *containerEvents {
	t.Helper()
	ce := &containerEvents{changed: make(chan struct{}), counts: map[string]map[events.Action]int{}}
	// Since a second ago: the engine replays what it sent before the
	// stream was set up (its buffer holds the last 256 events), so no
	// container of the profile is missed.
	since := strconv.FormatFloat(float64(time.Now().Add(-time.Second).UnixNano())/1e9, 'f', 9, 64)
	msgs, errs := cli.Events(t.Context(), events.ListOptions{Since: since, Filters: filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("label", runner.LabelProfile+"="+profileID),
	)})
	go func() {
		for {
			select {
			case m := <-msgs:
				ce.mu.Lock()
				task := m.Actor.Attributes[runner.LabelTask]
				if ce.counts[task] == nil {
					ce.counts[task] = map[events.Action]int{}
				}
				ce.counts[task][m.Action]++
				if m.Action == events.ActionDie {
					// The exit codes of a task's containers, as a count per code.
					if ce.counts[task+" exits"] == nil {
						ce.counts[task+" exits"] = map[events.Action]int{}
					}
					ce.counts[task+" exits"][events.Action(m.Actor.Attributes["exitCode"])]++
				}
				close(ce.changed)
				ce.changed = make(chan struct{})
				ce.mu.Unlock()
			case err := <-errs:
				ce.mu.Lock()
				ce.err = err
				close(ce.changed)
				ce.changed = make(chan struct{})
				ce.mu.Unlock()
				return
			}
		}
	}()
	return ce
}

// awaitRemoved waits until every container made for ids was destroyed
// (as many destroy events as create events, at least one), so that every
// event of theirs has been counted, and returns the counts.
func (ce *containerEvents) awaitRemoved(t *testing.T, ids []string, deadline time.Time) map[string]map[events.Action]int {
	t.Helper()
	for {
		ce.mu.Lock()
		var waiting []string
		for _, id := range ids {
			c := ce.counts[id]
			if c[events.ActionCreate] == 0 || c[events.ActionDestroy] != c[events.ActionCreate] {
				waiting = append(waiting, id)
			}
		}
		changed, err := ce.changed, ce.err
		ce.mu.Unlock()
		if len(waiting) == 0 {
			return ce.counts
		}
		if err != nil {
			t.Fatalf("docker events: %v", err)
		}
		select {
		case <-changed:
		case <-time.After(time.Until(deadline)):
			t.Fatalf("%d tasks' containers were not all created and removed: %v", len(waiting), waiting[:min(len(waiting), 10)])
		}
	}
}

// pollDB waits until query (one integer) on conn returns at least want,
// reading it again every 20 ms (PostgreSQL tells nobody of these changes);
// it returns the last value.
func pollDB(t *testing.T, conn *pgx.Conn, what string, want int, deadline time.Time, query string, args ...any) int {
	t.Helper()
	for {
		var n int
		if err := conn.QueryRow(t.Context(), query, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if n >= want {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %d, want %d", what, n, want)
		}
		time.Sleep(20 * time.Millisecond) // a poll interval, not a guess
	}
}

// loadAvg is /proc/loadavg's first three fields.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// percentile is the p-th percentile (0-100) of sorted d, nearest rank.
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(float64(len(d))*p/100+0.5) - 1
	return d[max(0, min(i, len(d)-1))]
}

// TestSeveralWorkersUnderLoad: 2 `serve --no-worker` and 3 `runner`
// processes of the real binary on one PostgreSQL database (as the service
// role, under row-level security) take loadTasks short tasks posted
// through both APIs. One runner is killed with SIGKILL while it runs
// tasks and started again with the same --worker-id, as the README's
// recovery says. Every task succeeds exactly once: attempt 1, one
// container created and started per task (the engine's own events), one
// marker line in its logs; no container is left, and the canary value is
// in no process's output. It logs tasks/s and start latency p50/p99 (the
// README's "Several workers under load").
func TestSeveralWorkersUnderLoad(t *testing.T) {
	t.Parallel()
	cli, _, shellImage := dockerImages(t)
	bin := staticBinary(t)
	ms := migratedPostgres(t)
	token := createUser(t, ms.env, "load")
	env := append(os.Environ(), "ENCRYPTION_KEY="+ms.key, "DATABASE_URL="+ms.roles.Service)
	load0 := loadAvg()

	var profileID string // set once the profile exists
	removeProfileContainersAtEnd(t, cli, &profileID)
	var bases []string
	var all []*proc
	for i := range loadAPIs {
		p, line := startProc(t, bin, env, fmt.Sprintf("api-%d", i+1), "listening",
			"serve", "--addr", "127.0.0.1:0", "--no-worker", "--write-rate", "0", "--max-queued-per-user", fmt.Sprint(loadTasks))
		bases = append(bases, "http://"+jsonField(line, "addr"))
		all = append(all, p)
	}
	runnerArgs := func(i int) []string {
		return []string{"runner", "--worker-id", fmt.Sprintf("load-w%d", i), "--max-running", fmt.Sprint(loadMaxRunning), "--user-share", "100"}
	}
	procs := map[string]*proc{}
	for i := 1; i <= loadRunners; i++ {
		p, _ := startProc(t, bin, env, fmt.Sprintf("runner-%d", i), "task worker started", runnerArgs(i)...)
		procs[fmt.Sprintf("load-w%d", i)] = p
		all = append(all, p)
	}

	c := &client{t: t, base: bases[0], token: token}
	c.expect(http.StatusCreated, "POST", "/v1/secrets", map[string]any{"name": loadCanaryName, "value": canary}, nil)
	var prof struct {
		ID string `json:"id"`
	}
	runs := countRuns(t, cli)
	c.expect(http.StatusCreated, "POST", "/v1/profiles", map[string]any{
		"name": "load", "image": shellImage, "sandbox": map[string]any{"network": "bridge"},
		"command": []string{"/bin/sh", "-c", "wget -q -O /dev/null " + runs.url + "/$TASK_ID && echo ran $TASK_ID $" + loadCanaryName},
	}, &prof)
	profileID = prof.ID
	watch := watchContainers(t, cli, prof.ID)
	db, err := pgx.Connect(t.Context(), ms.roles.Super)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(context.Background()) })

	began := time.Now()
	// As long as go test allows (-timeout; at load ~30 on 2 cores the run
	// takes 7-8 minutes), less the time to print what went wrong.
	deadline := began.Add(10 * time.Minute)
	if d, ok := t.Deadline(); ok {
		deadline = d.Add(-loadMargin)
	}
	ids := postTasks(t, bases, token, prof.ID, loadTasks)
	posted := time.Since(began)

	// SIGKILL load-w2 once a sixth of the tasks are done and it has a task
	// running and another starting or running; then start it again.
	const terminal = `status IN ('succeeded', 'failed', 'stopped', 'cancelled')`
	pollDB(t, db, "a sixth of the tasks done", loadTasks/6, deadline, `SELECT count(*) FROM tasks WHERE `+terminal)
	victim := "load-w2"
	pollDB(t, db, victim+" running a task with another active", 1, deadline, `SELECT
		(count(*) FILTER (WHERE status = 'running') >= 1 AND count(*) >= 2)::int
		FROM tasks WHERE worker = $1 AND status IN ('starting', 'running')`, victim)
	killed := procs[victim]
	if err := killed.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = killed.cmd.Wait()
	orphans := activeTasks(t, db, victim)
	if len(orphans) == 0 {
		t.Fatalf("%s had no task active once killed", victim)
	}
	procs[victim], _ = startProc(t, bin, env, "runner-2-again", "task worker started", runnerArgs(2)...)
	all = append(all, procs[victim])

	pollDB(t, db, "every task ended", loadTasks, deadline, `SELECT count(*) FROM tasks WHERE `+terminal)
	counts := watch.awaitRemoved(t, ids, deadline)
	elapsed := time.Since(began)

	tasks := readTasks(t, bases, token, ids)
	checkExactlyOnce(t, bases, token, tasks, counts, runs.counts())
	checkRecovered(t, procs[victim], orphans, tasks)
	left, err := cli.ContainerList(t.Context(), container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", runner.LabelProfile+"="+prof.ID))})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("%d task containers left behind, the first %s (%s)", len(left), left[0].Names, left[0].State)
	}
	for _, p := range all {
		if strings.Contains(p.logs.String(), canary) || strings.Contains(p.out.String(), canary) {
			t.Errorf("the canary value is in the output of %s", p.name)
		}
	}
	logFigures(t, tasks, elapsed, posted, load0, perWorker(t, db, prof.ID))
}

// removeProfileContainersAtEnd force-removes, when the test ends, the
// containers of *profileID that envvault left (only if the test failed
// before envvault removed them).
func removeProfileContainersAtEnd(t *testing.T, cli dockerclient.APIClient, profileID *string) {
	t.Cleanup(func() {
		if *profileID == "" {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		list, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", runner.LabelProfile+"="+*profileID))})
		if err != nil {
			t.Errorf("list the test's containers: %v", err)
			return
		}
		for _, c := range list {
			_ = cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
		}
	})
}

// activeTask is a task a worker had claimed and not finished.
type activeTask struct{ id, status string }

// activeTasks reads worker's starting and running tasks.
func activeTasks(t *testing.T, db *pgx.Conn, worker string) []activeTask {
	t.Helper()
	rows, err := db.Query(t.Context(), `SELECT id, status FROM tasks WHERE worker = $1 AND status IN ('starting', 'running') ORDER BY id`, worker)
	if err != nil {
		t.Fatal(err)
	}
	var out []activeTask
	for rows.Next() {
		var a activeTask
		if err := rows.Scan(&a.id, &a.status); err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// readTasks reads every task through the APIs, alternating.
func readTasks(t *testing.T, bases []string, token string, ids []string) map[string]loadTask {
	t.Helper()
	tasks := map[string]loadTask{}
	for i, id := range ids {
		status, raw, err := httpDo(t.Context(), "GET", bases[i%len(bases)]+"/v1/tasks/"+id, token, nil)
		var task loadTask
		if err == nil && status == http.StatusOK {
			err = json.Unmarshal(raw, &task)
		} else if err == nil {
			err = fmt.Errorf("status %d: %s", status, raw)
		}
		if err != nil {
			t.Fatalf("GET task %s: %v", id, err)
		}
		tasks[id] = task
	}
	return tasks
}

// checkExactlyOnce: every task succeeded at its first attempt, its command
// ran once (runs: the command's own call home), and its logs are the one
// line its command printed, with the canary masked. The engine may have
// started a second container of a task: a killed worker's start request
// that the engine carried out after the worker died, whose init never got
// the env block and so never ran the command (runs proves it); those are
// logged with the exit codes the engine reported.
func checkExactlyOnce(t *testing.T, bases []string, token string, tasks map[string]loadTask, counts map[string]map[events.Action]int, runs map[string]int) {
	t.Helper()
	bad := 0
	for id, task := range tasks {
		if task.Status != "succeeded" || task.Attempt != 1 || task.ExitCode == nil || *task.ExitCode != 0 {
			bad++
			t.Errorf("task %s: %s, attempt %d, exit %v, error %v; want succeeded at attempt 1 with exit 0", id, task.Status, task.Attempt, deref(task.ExitCode), deref(task.Error))
		}
		if runs[id] != 1 {
			bad++
			t.Errorf("task %s: its command ran %d times, want 1", id, runs[id])
		}
		if c := counts[id]; c[events.ActionStart] != 1 || c[events.ActionCreate] != 1 {
			t.Logf("task %s: the engine created %d and started %d containers for it, whose processes exited %v; its command ran %d times",
				id, c[events.ActionCreate], c[events.ActionStart], counts[id+" exits"], runs[id])
		}
		status, logs, err := httpDo(t.Context(), "GET", bases[0]+"/v1/tasks/"+id+"/logs", token, nil)
		if want := "ran " + id + " ***\n"; err != nil || status != http.StatusOK || string(logs) != want {
			bad++
			t.Errorf("task %s: logs %q (status %d, %v), want %q", id, logs, status, err, want)
		}
		if bad > 20 {
			t.Fatal("more than 20 failures: giving up")
		}
	}
	if len(tasks) != loadTasks {
		t.Errorf("read %d tasks, want %d", len(tasks), loadTasks)
	}
}

// checkRecovered: the runner started again logged how it reconciled each
// task its killed self had left active.
func checkRecovered(t *testing.T, again *proc, orphans []activeTask, tasks map[string]loadTask) {
	t.Helper()
	for _, o := range orphans {
		line := again.logs.await(t, "the recovery of "+o.id, func(l string) bool { return jsonField(l, "task") == o.id })
		t.Logf("killed while %s: %s: recovered as %q, ended %s", o.status, o.id, jsonField(line, "msg"), tasks[o.id].Status)
	}
}

// perWorker says how many of profileID's tasks each worker ran.
func perWorker(t *testing.T, db *pgx.Conn, profileID string) string {
	t.Helper()
	rows, err := db.Query(t.Context(), `SELECT worker, count(*) FROM tasks WHERE profile_id = $1 GROUP BY worker ORDER BY worker`, profileID)
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for rows.Next() {
		var w string
		var n int
		if err := rows.Scan(&w, &n); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, fmt.Sprintf("%s %d", w, n))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(parts, ", ")
}

// logFigures logs the load's figures: tasks/s from the first creation to
// the last end, and start latency (created to started) p50/p99/max.
func logFigures(t *testing.T, tasks map[string]loadTask, elapsed, posted time.Duration, load0, workers string) {
	t.Helper()
	var first, last time.Time
	var lat []time.Duration
	for id, task := range tasks {
		created, err1 := time.Parse(time.RFC3339Nano, task.CreatedAt)
		started, err2 := time.Parse(time.RFC3339Nano, deref(task.StartedAt))
		finished, err3 := time.Parse(time.RFC3339Nano, deref(task.FinishedAt))
		if err1 != nil || err2 != nil || err3 != nil {
			t.Errorf("task %s: times %q %v %v", id, task.CreatedAt, deref(task.StartedAt), deref(task.FinishedAt))
			continue
		}
		if first.IsZero() || created.Before(first) {
			first = created
		}
		if finished.After(last) {
			last = finished
		}
		lat = append(lat, started.Sub(created))
	}
	slices.Sort(lat)
	span := last.Sub(first)
	t.Logf("%d tasks, %d runners x --max-running %d, %d API processes: %.1f tasks/s (%s from the first created to the last finished; posted in %s; all removed after %s)",
		len(tasks), loadRunners, loadMaxRunning, loadAPIs, float64(len(tasks))/span.Seconds(), span.Round(time.Millisecond), posted.Round(time.Millisecond), elapsed.Round(time.Millisecond))
	t.Logf("start latency (created to started): p50 %s, p99 %s, max %s", percentile(lat, 50).Round(time.Millisecond), percentile(lat, 99).Round(time.Millisecond), percentile(lat, 100).Round(time.Millisecond))
	t.Logf("tasks per worker: %s; load average before %s, after %s", workers, load0, loadAvg())
}

// deref is *p, or the zero value for nil.
func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// runCounter counts the runs of each task's command: the command calls
// url/TASK_ID before it prints its line. It listens on the Docker bridge's
// gateway address, which containers on the default bridge reach.
type runCounter struct {
	url string
	mu  sync.Mutex
	n   map[string]int
}

func countRuns(t *testing.T, cli dockerclient.APIClient) *runCounter {
	t.Helper()
	gw := bridgeGateway(t, cli)
	l, err := net.Listen("tcp", net.JoinHostPort(gw, "0"))
	if err != nil {
		t.Fatalf("listen on the bridge's gateway %s: %v", gw, err)
	}
	rc := &runCounter{url: "http://" + l.Addr().String() + "/ran", n: map[string]int{}}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := strings.CutPrefix(r.URL.Path, "/ran/")
		if !ok || id == "" {
			http.NotFound(w, r)
			return
		}
		rc.mu.Lock()
		rc.n[id]++
		rc.mu.Unlock()
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return rc
}

func (rc *runCounter) counts() map[string]int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return maps.Clone(rc.n)
}

// bridgeGateway is the address of the host on Docker's default bridge:
// the network's gateway, else the docker0 interface's IPv4 address.
func bridgeGateway(t *testing.T, cli dockerclient.APIClient) string {
	t.Helper()
	nw, err := cli.NetworkInspect(t.Context(), "bridge", network.InspectOptions{})
	if err != nil {
		t.Fatalf("inspect the bridge network: %v", err)
	}
	for _, c := range nw.IPAM.Config {
		if ip := net.ParseIP(c.Gateway); ip != nil && ip.To4() != nil {
			return c.Gateway
		}
	}
	iface, err := net.InterfaceByName("docker0")
	if err != nil {
		t.Fatalf("the bridge network names no gateway and there is no docker0 interface: %v", err)
	}
	addrs, err := iface.Addrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
	}
	t.Fatal("docker0 has no IPv4 address")
	return ""
}

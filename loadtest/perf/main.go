// Command perf measures the engine beside the bare floor in one invocation:
// it alternates runs of the project's loadtest (`loadtest/`) and of the
// floor's end-to-end benchmark (../shared/floor, a pipeline of the same
// shape with no business logic), at full speed and at 1,000 orders/s, and
// prints the ratios engine/floor for throughput and latency, the CPU each
// process spent per order (read from /proc over the measuring window) and
// the engine's RSS. Absolute figures on a shared 2-core machine drift from
// run to run; ratios taken in the same invocation drift much less.
//
//	go run ./loadtest/perf --rounds 3          # or: make perf (finds ../shared/floor)
//
// Both pipelines run as subprocesses and their output is parsed; perf
// changes neither. The floor gets a private PostgreSQL cluster (fsync on)
// of its own, the loadtest starts its own as usual.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/promoengine/promoengine/internal/pgcluster"
	"github.com/promoengine/promoengine/loadtest/procstat"
)

type options struct {
	rounds      int
	maxDur      time.Duration
	rateDur     time.Duration
	rate        int
	floorDir    string
	floorMaxN   int
	floorBatch  int
	floorWork   int
	engineEnv   string
	workDir     string
	skipFloor   bool
	skipEngine  bool
	keepWorkDir bool
}

func main() {
	var o options
	flag.IntVar(&o.rounds, "rounds", 3, "how many rounds (each: engine max, floor max, engine at --rate, floor at --rate)")
	flag.DurationVar(&o.maxDur, "max-duration", 20*time.Second, "how long the engine's full-speed run publishes")
	flag.DurationVar(&o.rateDur, "rate-duration", 15*time.Second, "how long the runs at --rate publish")
	flag.IntVar(&o.rate, "rate", 1000, "the low, fixed rate of the latency runs (orders/s)")
	flag.StringVar(&o.floorDir, "floor", "", "the floor's source folder, built in place, read only (default: shared/floor in the nearest parent folder that has one)")
	flag.IntVar(&o.floorMaxN, "floor-n", 100000, "orders of the floor's full-speed run")
	flag.IntVar(&o.floorBatch, "floor-batch", 200, "the floor's batch size")
	flag.IntVar(&o.floorWork, "floor-workers", 4, "the floor's worker goroutines")
	flag.StringVar(&o.engineEnv, "engine-env", "", "passed to the loadtest's --engine-env")
	flag.StringVar(&o.workDir, "work-dir", "", "scratch folder (default: a temp dir, removed after)")
	flag.BoolVar(&o.skipFloor, "engine-only", false, "run only the engine")
	flag.BoolVar(&o.skipEngine, "floor-only", false, "run only the floor")
	flag.BoolVar(&o.keepWorkDir, "keep", false, "keep the scratch folder (logs, engine.log)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "perf:", err)
		os.Exit(1)
	}
}

// result is one run of either pipeline.
type result struct {
	who, kind  string // engine|floor, max|rate
	orders     int64
	perSec     float64
	p50, p99   float64 // ms
	p999       float64 // ms
	cpu        map[string]float64
	rssMB      float64
	machineCPU float64 // % busy, both cores, over the window
	note       string
}

func run(ctx context.Context, o options) error {
	dir := o.workDir
	if dir == "" {
		d, err := os.MkdirTemp("", "promoengine-perf-")
		if err != nil {
			return err
		}
		dir = d
		if !o.keepWorkDir {
			defer os.RemoveAll(dir)
		}
	}
	floorDir, err := findFloor(o.floorDir)
	if err != nil && !o.skipFloor {
		return err
	}
	fmt.Fprintf(os.Stderr, "perf: building into %s\n", dir)
	builds := [][]string{
		{"go", "build", "-o", filepath.Join(dir, "promoengine"), "./cmd/promoengine"},
		{"go", "build", "-o", filepath.Join(dir, "loadtest"), "./loadtest"},
	}
	if !o.skipFloor {
		builds = append(builds, []string{"go", "build", "-C", floorDir, "-o", filepath.Join(dir, "floor"), "."})
	}
	for _, b := range builds {
		cmd := exec.CommandContext(ctx, b[0], b[1:]...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w", strings.Join(b, " "), err)
		}
	}

	var floorDSN string
	if !o.skipFloor {
		cl, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(dir, "floor-pg"), NoSync: true})
		if err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = cl.Stop(sctx)
		}()
		floorDSN = cl.URL("postgres")
	}

	fmt.Fprintf(os.Stderr, "perf: machine before the runs: %s\n", loadSummary())
	var results []result
	for r := 1; r <= o.rounds && ctx.Err() == nil; r++ {
		steps := []func() (result, error){}
		if !o.skipEngine {
			steps = append(steps, func() (result, error) { return runEngine(ctx, o, dir, 0, o.maxDur) })
		}
		if !o.skipFloor {
			steps = append(steps, func() (result, error) { return runFloor(ctx, o, dir, floorDSN, 0, o.floorMaxN) })
		}
		if !o.skipEngine {
			steps = append(steps, func() (result, error) { return runEngine(ctx, o, dir, o.rate, o.rateDur) })
		}
		if !o.skipFloor {
			steps = append(steps, func() (result, error) {
				return runFloor(ctx, o, dir, floorDSN, o.rate, o.rate*int(o.rateDur.Seconds()))
			})
		}
		for _, step := range steps {
			// A run that fails to start (a port another program took, a
			// server not ready in time on the loaded machine) is tried again.
			res, err := step()
			for try := 2; err != nil && try <= 3 && ctx.Err() == nil; try++ {
				fmt.Fprintf(os.Stderr, "perf: round %d: run failed, try %d of 3: %v\n", r, try, err)
				time.Sleep(5 * time.Second)
				res, err = step()
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "perf: round %d: %s\n", r, res.line())
			results = append(results, res)
		}
		fmt.Fprintf(os.Stderr, "perf: machine after round %d: %s\n", r, loadSummary())
	}
	report(os.Stdout, o, results)
	return nil
}

// findFloor is dir, or shared/floor in the nearest parent of the working
// directory that has one (the repository sits beside shared/ or deeper).
func findFloor(dir string) (string, error) {
	if dir != "" {
		return filepath.Abs(dir)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := filepath.Dir(wd); ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "shared", "floor", "e2e.go")); err == nil {
			return filepath.Join(d, "shared", "floor"), nil
		}
		if d == filepath.Dir(d) {
			return "", errors.New("no shared/floor above the working directory: pass --floor")
		}
	}
}

func (r result) line() string {
	return fmt.Sprintf("%s %s: %d orders, %.0f/s, p50 %.1f ms p99 %.1f ms p99.9 %.1f ms, cpu µs/order %s, RSS %.1f MB, machine %.0f%% busy %s",
		r.who, r.kind, r.orders, r.perSec, r.p50, r.p99, r.p999, fmtCPU(r.cpu), r.rssMB, r.machineCPU, r.note)
}

func fmtCPU(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%.0f", k, m[k]))
	}
	return strings.Join(parts, " ")
}

var (
	enginePIDRe = regexp.MustCompile(`engine pid (\d+)`)
	tableHeadRe = regexp.MustCompile(`^\|\s*target rate\s*\|`)
)

// runEngine runs the loadtest once and measures the CPU of its processes:
// the engine (pid announced on stderr), the loadtest itself (load
// generator, collector and the embedded NATS server) and its private
// PostgreSQL (every process of the cluster under its data dir).
func runEngine(ctx context.Context, o options, dir string, rate int, dur time.Duration) (result, error) {
	kind := "max"
	if rate > 0 {
		kind = "rate"
	}
	data := filepath.Join(dir, "engine-"+kind)
	_ = os.RemoveAll(data)
	args := []string{"--rate", strconv.Itoa(rate), "--duration", dur.String(),
		"--engine", filepath.Join(dir, "promoengine"), "--data-dir", data}
	// The loadtest turns the engine's profiler on at its default port,
	// which another engine on a shared machine may hold: any free port.
	env := "PROMO_PPROF_ADDR=127.0.0.1:0"
	if o.engineEnv != "" {
		env += "," + o.engineEnv
	}
	args = append(args, "--engine-env", env)
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "loadtest"), args...)
	cmd.Env = append(os.Environ(), "PROMO_COUPON_SECRET=loadtest-coupon-secret")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return result{}, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return result{}, err
	}
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	res := result{who: "engine", kind: kind}
	var (
		mu         sync.Mutex
		meter      *cpuWindow
		enginePIDs []int
		rss        rssMax
		errOut     strings.Builder
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if m := enginePIDRe.FindStringSubmatch(line); m != nil {
				// Every engine announced is measured (their CPU summed, the
				// first one's RSS); all are announced before the load starts.
				pid, _ := strconv.Atoi(m[1])
				mu.Lock()
				enginePIDs = append(enginePIDs, pid)
				if meter == nil {
					groups := map[string]func() []int{
						"engine": func() []int {
							mu.Lock()
							defer mu.Unlock()
							return slices.Clone(enginePIDs)
						},
						"loadtest": func() []int { return []int{cmd.Process.Pid} },
						"postgres": func() []int { return clusterPIDs(filepath.Join(data, "pg")) },
					}
					mu.Unlock()
					w := startCPUWindow(groups)
					mu.Lock()
					meter = w
					rss.start(pid)
				}
				mu.Unlock()
			}
			if errOut.Len() < 1<<16 {
				errOut.WriteString(line + "\n")
			}
		}
	}()
	var header []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "promoengine loadtest") {
			mu.Lock()
			w := meter
			mu.Unlock()
			if w != nil { // not under mu: sampling takes it
				w.stop()
			}
		}
		switch {
		case tableHeadRe.MatchString(line):
			header = cells(line)
		case strings.HasPrefix(line, "statuses:"):
			res.note = line
		case !strings.HasPrefix(line, "|"):
			header = nil // the results table ended; the loadtest's other tables are not its rows
		case header != nil && !strings.HasPrefix(line, "|---"):
			row := cells(line)
			for i, h := range header {
				if i < len(row) {
					parseEngineCell(&res, strings.TrimSpace(h), strings.TrimSpace(row[i]))
				}
			}
		}
	}
	<-done
	if err := cmd.Wait(); err != nil {
		return res, fmt.Errorf("loadtest %v: %w\n%s", args, err, errOut.String())
	}
	if meter == nil {
		return res, fmt.Errorf("loadtest announced no engine pid:\n%s", errOut.String())
	}
	meter.stop()
	res.machineCPU = meter.busyPct()
	res.cpu = meter.perOrder(res.orders)
	res.rssMB = float64(rss.stop()) / 1e6
	return res, nil
}

func parseEngineCell(r *result, head, v string) {
	switch head {
	case "results":
		r.orders, _ = strconv.ParseInt(v, 10, 64)
	case "result rate":
		r.perSec, _ = strconv.ParseFloat(strings.TrimSuffix(v, "/s"), 64)
	case "p50":
		r.p50 = parseMS(v)
	case "p99":
		r.p99 = parseMS(v)
	case "p99.9":
		r.p999 = parseMS(v)
	}
}

// parseMS reads the loadtest's durations ("5.7 ms", "1.03s") in ms.
func parseMS(v string) float64 {
	v = strings.ReplaceAll(v, " ", "")
	d, err := time.ParseDuration(v)
	if err != nil {
		return -1
	}
	return float64(d.Microseconds()) / 1000
}

func cells(line string) []string {
	line = strings.Trim(strings.TrimSpace(line), "|")
	return strings.Split(line, "|")
}

// runFloor runs the floor's e2e once. It reports its own throughput and
// latency (a JSON line on stdout); CPU is measured here, the same way as for
// the engine: the driver (publisher, collector and embedded NATS), the worker
// and the floor's own PostgreSQL cluster.
func runFloor(ctx context.Context, o options, dir, dsn string, rate, n int) (result, error) {
	kind := "max"
	if rate > 0 {
		kind = "rate"
	}
	fdir := filepath.Join(dir, "floor-run")
	if err := os.MkdirAll(fdir, 0o755); err != nil {
		return result{}, err
	}
	args := []string{"e2e", "-label", "perf-" + kind, "-batch", strconv.Itoa(o.floorBatch),
		"-workers", strconv.Itoa(o.floorWork), "-n", strconv.Itoa(n), "-dsn", dsn}
	if rate > 0 {
		args = append(args, "-rate", strconv.Itoa(rate))
	}
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "floor"), args...)
	cmd.Dir = fdir
	cmd.Env = append(os.Environ(), "FLOOR_DIR="+fdir)
	var errOut strings.Builder
	cmd.Stderr = &limitedWriter{w: &errOut, n: 1 << 16}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return result{}, err
	}
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	res := result{who: "floor", kind: kind}
	// The measuring window opens when the driver has spawned its worker.
	var (
		meter *cpuWindow
		rss   rssMax
	)
	watchDone := make(chan struct{})
	stopWatch := make(chan struct{})
	go func() {
		defer close(watchDone)
		for {
			if kids := procstat.Children(cmd.Process.Pid); len(kids) > 0 {
				worker := kids[0]
				meter = startCPUWindow(map[string]func() []int{
					"worker":   func() []int { return []int{worker} },
					"driver":   func() []int { return []int{cmd.Process.Pid} },
					"postgres": func() []int { return clusterPIDs(filepath.Join(dir, "floor-pg")) },
				})
				rss.start(worker)
				return
			}
			select {
			case <-stopWatch:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	var rec map[string]any
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &rec) == nil {
			<-watchDone
			if meter != nil {
				meter.stop()
			}
		}
	}
	close(stopWatch)
	<-watchDone
	if err := cmd.Wait(); err != nil {
		return res, fmt.Errorf("floor %v: %w\n%s", args, err, errOut.String())
	}
	if rec == nil || meter == nil {
		return res, fmt.Errorf("floor %v printed no result:\n%s", args, errOut.String())
	}
	meter.stop()
	res.orders = int64(num(rec["results_unique"]))
	res.perSec = num(rec["orders_per_s"])
	if l, ok := rec["e2e_latency"].(map[string]any); ok {
		res.p50, res.p99, res.p999 = num(l["p50_ms"]), num(l["p99_ms"]), num(l["p999_ms"])
	}
	res.machineCPU = meter.busyPct()
	res.cpu = meter.perOrder(res.orders)
	res.rssMB = float64(rss.stop()) / 1e6
	if rec["timed_out"] == true {
		res.note = "TIMED OUT"
	}
	return res, nil
}

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}

type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		l.n -= k
		_, _ = l.w.Write(p[:k])
	}
	return len(p), nil
}

// cpuWindow accumulates the CPU time of groups of processes between start
// and stop. Groups are re-resolved at every sample (PostgreSQL backends come
// and go), and a process's last seen time is kept when it exits, so short
// lived processes are counted up to their last sample.
type cpuWindow struct {
	mu      sync.Mutex
	groups  map[string]func() []int
	first   map[int]float64 // pid → CPU seconds when first seen
	last    map[int]float64
	groupOf map[int]string
	m0      [2]float64
	m1      [2]float64
	quit    chan struct{}
	done    chan struct{}
	stopped bool
}

func startCPUWindow(groups map[string]func() []int) *cpuWindow {
	w := &cpuWindow{groups: groups, first: map[int]float64{}, last: map[int]float64{}, groupOf: map[int]string{},
		quit: make(chan struct{}), done: make(chan struct{})}
	w.m0[0], w.m0[1] = machineCPU()
	w.sample(true)
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.quit:
				return
			case <-time.After(100 * time.Millisecond):
				w.sample(false)
			}
		}
	}()
	return w
}

func (w *cpuWindow) sample(initial bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for g, pids := range w.groups {
		for _, pid := range pids() {
			c := procCPU(pid)
			if c < 0 {
				continue
			}
			if _, ok := w.first[pid]; !ok {
				// A process born inside the window counts from zero.
				if initial {
					w.first[pid] = c
				} else {
					w.first[pid] = 0
				}
				w.groupOf[pid] = g
			}
			w.last[pid] = c
		}
	}
}

func (w *cpuWindow) stop() {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	w.stopped = true
	w.mu.Unlock()
	close(w.quit)
	<-w.done
	w.sample(false)
	w.m1[0], w.m1[1] = machineCPU()
}

func (w *cpuWindow) busyPct() float64 {
	if w.m1[1] == w.m0[1] {
		return 0
	}
	return 100 * (w.m1[0] - w.m0[0]) / (w.m1[1] - w.m0[1])
}

// perOrder is µs of CPU per order per group, plus "total".
func (w *cpuWindow) perOrder(orders int64) map[string]float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]float64{}
	if orders <= 0 {
		return out
	}
	var total float64
	for pid, g := range w.groupOf {
		s := w.last[pid] - w.first[pid]
		out[g] += s * 1e6 / float64(orders)
		total += s
	}
	out["total"] = total * 1e6 / float64(orders)
	return out
}

// procCPU is pid's CPU time in seconds, -1 when it is gone.
func procCPU(pid int) float64 {
	d, ok := procstat.CPU(pid)
	if !ok {
		return -1
	}
	return d.Seconds()
}

// clusterPIDs is the postmaster of the data dir and its children.
func clusterPIDs(dataDir string) []int {
	pm, ok := procstat.Postmaster(dataDir)
	if !ok {
		return nil
	}
	return append([]int{pm}, procstat.Children(pm)...)
}

// machineCPU is (busy, total) jiffies of all cores; iowait counts as idle.
func machineCPU() (float64, float64) {
	b, _ := os.ReadFile("/proc/stat")
	f := strings.Fields(strings.SplitN(string(b), "\n", 2)[0])
	var tot, idle float64
	for i, s := range f[1:] {
		v, _ := strconv.ParseFloat(s, 64)
		tot += v
		if i == 3 || i == 4 {
			idle += v
		}
	}
	return tot - idle, tot
}

// rssMax samples VmRSS of one process every 100 ms.
type rssMax struct {
	max  int64
	quit chan struct{}
	done chan struct{}
}

func (r *rssMax) start(pid int) {
	r.quit, r.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(r.done)
		for {
			if v := procstat.RSS(pid); v > r.max {
				r.max = v
			}
			select {
			case <-r.quit:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
}

func (r *rssMax) stop() int64 {
	if r.quit == nil {
		return 0
	}
	select {
	case <-r.quit:
	default:
		close(r.quit)
	}
	<-r.done
	return r.max
}

// loadSummary is the load average and the busiest processes, to say how
// loaded the shared machine was.
func loadSummary() string {
	la, _ := os.ReadFile("/proc/loadavg")
	out, err := exec.Command("sh", "-c", "top -bn1 -w 200 | sed -n '3p;8,12p'").Output()
	if err != nil {
		return "load " + strings.TrimSpace(string(la))
	}
	return "load " + strings.TrimSpace(string(la)) + "\n" + strings.TrimRight(string(out), "\n")
}

// report prints every run, then the medians and ratios.
func report(w io.Writer, o options, rs []result) {
	fmt.Fprintf(w, "\n## perf — %s, %d round(s); engine loadtest vs floor e2e (batch %d, %d workers)\n\n",
		time.Now().Format(time.RFC3339), o.rounds, o.floorBatch, o.floorWork)
	fmt.Fprintf(w, "| run | orders | orders/s | p50 ms | p99 ms | p99.9 ms | CPU µs/order | RSS MB | machine busy |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		fmt.Fprintf(w, "| %s %s | %d | %.0f | %.1f | %.1f | %.1f | %s | %.1f | %.0f%% |\n",
			r.who, r.kind, r.orders, r.perSec, r.p50, r.p99, r.p999, fmtCPU(r.cpu), r.rssMB, r.machineCPU)
	}
	pick := func(who, kind string, f func(result) float64) []float64 {
		var v []float64
		for _, r := range rs {
			if r.who == who && r.kind == kind {
				v = append(v, f(r))
			}
		}
		return v
	}
	med := func(v []float64) float64 {
		if len(v) == 0 {
			return 0
		}
		s := slices.Clone(v)
		slices.Sort(s)
		return s[len(s)/2]
	}
	ratio := func(a, b float64) string {
		if a == 0 || b == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", a/b)
	}
	fmt.Fprintf(w, "\n| median over rounds | engine | floor | engine/floor |\n|---|---|---|---|\n")
	row := func(name, kind string, f func(result) float64, format string) {
		e, fl := med(pick("engine", kind, f)), med(pick("floor", kind, f))
		fmt.Fprintf(w, "| %s | "+format+" | "+format+" | %s |\n", name, e, fl, ratio(e, fl))
	}
	row("max throughput, orders/s", "max", func(r result) float64 { return r.perSec }, "%.0f")
	row(fmt.Sprintf("p50 at %d/s, ms", o.rate), "rate", func(r result) float64 { return r.p50 }, "%.1f")
	row(fmt.Sprintf("p99 at %d/s, ms", o.rate), "rate", func(r result) float64 { return r.p99 }, "%.1f")
	row(fmt.Sprintf("p99.9 at %d/s, ms", o.rate), "rate", func(r result) float64 { return r.p999 }, "%.1f")
	row("CPU µs/order at max, all processes", "max", func(r result) float64 { return r.cpu["total"] }, "%.0f")
	row(fmt.Sprintf("CPU µs/order at %d/s, all processes", o.rate), "rate", func(r result) float64 { return r.cpu["total"] }, "%.0f")
	row("CPU µs/order at max, engine / floor worker", "max", func(r result) float64 { return r.cpu["engine"] + r.cpu["worker"] }, "%.0f")
	row("CPU µs/order at max, postgres", "max", func(r result) float64 { return r.cpu["postgres"] }, "%.0f")
	row("CPU µs/order at max, NATS + generator (loadtest / floor driver)", "max", func(r result) float64 { return r.cpu["loadtest"] + r.cpu["driver"] }, "%.0f")
	row("RSS max MB at max, engine / floor worker", "max", func(r result) float64 { return r.rssMB }, "%.1f")
	// Per-round ratios show how much of the spread is the machine.
	em, fm := pick("engine", "max", func(r result) float64 { return r.perSec }), pick("floor", "max", func(r result) float64 { return r.perSec })
	var per []string
	for i := range min(len(em), len(fm)) {
		per = append(per, ratio(em[i], fm[i]))
	}
	if len(per) > 0 {
		fmt.Fprintf(w, "\nthroughput ratio per round: %s\n", strings.Join(per, ", "))
	}
}

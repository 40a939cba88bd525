// Command loadtest measures promoengine end to end: it publishes
// pos.order.paid events at a given rate for a given duration over N
// customers (on their keyed subjects, pos.orders.paid.<token>, as the
// engine's own ingestion publishes them), reads their results from
// PROMO_RESULTS, and prints throughput, end-to-end latency (publish →
// result received) percentiles, and the CPU time and resident memory of
// each engine process. It measures; it asserts nothing.
//
// Only events JetStream acknowledged count: a publish whose ack does not
// come is retried with the same Nats-Msg-Id and reported as failed if it
// never gets stored. Results are read with an ordered JetStream consumer
// from the stream's next sequence, which resumes where it stopped across
// a reconnect, so a NATS restart during the run loses no result from the
// count; results seen twice are reported as duplicated.
//
// By default it sets up everything itself, the way SPEC §10 states the
// targets: a NATS JetStream server with file storage (in this process, so
// the engine's memory is the engine's alone), a private PostgreSQL cluster
// with fsync on, the example catalog, and `promoengine run --workers
// orders,outbox` as a separate process. Point it at existing servers with
// --nats-url/--database-url, or at running engines with --engine-pid
// (repeatable, or comma separated: one line of CPU and memory each).
//
//	go run ./loadtest --rate 1000 --duration 30s
//	go run ./loadtest --rate 0 --duration 30s          # as fast as it goes
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/promoengine/promoengine/internal/natsembed"
	"github.com/promoengine/promoengine/internal/pgcluster"
	"github.com/promoengine/promoengine/loadtest/procstat"
	"github.com/promoengine/promoengine/pkg/events"
)

type options struct {
	rate        int
	duration    time.Duration
	customers   int
	anonymous   float64
	natsURL     string
	databaseURL string
	enginePIDs  pidList
	engines     int
	engineBin   string
	engineEnv   string
	catalog     string
	dataDir     string
	drain       time.Duration
	keep        bool
}

func main() {
	var o options
	flag.IntVar(&o.rate, "rate", 1000, "orders per second to publish (0: as fast as the engine absorbs, with a bounded window)")
	flag.DurationVar(&o.duration, "duration", 30*time.Second, "how long to publish")
	flag.IntVar(&o.customers, "customers", 10000, "distinct customers")
	flag.Float64Var(&o.anonymous, "anonymous", 0.3, "share of anonymous orders")
	flag.StringVar(&o.natsURL, "nats-url", "", "use this NATS server instead of an embedded one")
	flag.StringVar(&o.databaseURL, "database-url", "", "use this PostgreSQL instead of a private cluster")
	flag.Var(&o.enginePIDs, "engine-pid", "measure engines already running with these pids (repeat the flag or list them comma separated; no engine is started)")
	flag.IntVar(&o.engines, "engines", 1, "engine processes to start (each its own node, sharing the partitions)")
	flag.StringVar(&o.engineBin, "engine", "", "promoengine binary (default: go build ./cmd/promoengine)")
	flag.StringVar(&o.engineEnv, "engine-env", "", "extra PROMO_* settings for the engine, comma separated (e.g. PROMO_LANES=16,PROMO_BATCH_SIZE=512)")
	flag.StringVar(&o.catalog, "catalog", "examples/catalog.yaml", "catalog applied before the run")
	flag.StringVar(&o.dataDir, "data-dir", "", "where the embedded servers keep data (default: a temp dir, removed after)")
	flag.DurationVar(&o.drain, "drain", 60*time.Second, "how long to wait for the last results after publishing stops")
	flag.BoolVar(&o.keep, "keep", false, "keep the data dir")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	dir := o.dataDir
	if dir == "" {
		d, err := os.MkdirTemp("", "promoengine-loadtest-")
		if err != nil {
			return err
		}
		dir = d
		if !o.keep {
			defer os.RemoveAll(dir)
		}
	}
	if o.natsURL == "" {
		ns, err := natsembed.Start(natsembed.Options{StoreDir: filepath.Join(dir, "nats")})
		if err != nil {
			return err
		}
		defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
		o.natsURL = ns.ClientURL()
	}
	if o.databaseURL == "" && len(o.enginePIDs) == 0 {
		cl, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(dir, "pg")})
		if err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = cl.Stop(sctx)
		}()
		o.databaseURL = cl.URL("postgres")
	}
	pids := []int(o.enginePIDs)
	var addrs []string // the engines' HTTP servers, when this run started them
	if len(pids) == 0 {
		procs, err := startEngines(ctx, o, dir)
		defer func() {
			for _, p := range procs {
				p.stop()
			}
		}()
		if err != nil {
			return err
		}
		for _, p := range procs {
			pids = append(pids, p.cmd.Process.Pid)
			addrs = append(addrs, p.addr)
		}
	}

	nc, err := nats.Connect(o.natsURL, nats.Name("promoengine-loadtest"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8192), jetstream.WithPublishAsyncTimeout(10*time.Second))
	if err != nil {
		return err
	}
	groups := []*groupCPU{newGroupCPU("load generator (with the embedded NATS server unless --nats-url)", selfCPU)}
	if read := postgresCPU(filepath.Join(dir, "pg")); read != nil { // the cluster this run started
		groups = append(groups, newGroupCPU("PostgreSQL (postmaster and backends)", read))
	}
	return measure(ctx, o, js, pids, addrs, groups)
}

// pidList is the repeatable, comma-separated --engine-pid.
type pidList []int

func (l *pidList) String() string {
	var parts []string
	for _, p := range *l {
		parts = append(parts, strconv.Itoa(p))
	}
	return strings.Join(parts, ",")
}

func (l *pidList) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		pid, err := strconv.Atoi(part)
		if err != nil || pid <= 0 {
			return fmt.Errorf("%q is not a process id", part)
		}
		*l = append(*l, pid)
	}
	return nil
}

// engineProc is the engine started for the run.
type engineProc struct {
	cmd  *exec.Cmd
	addr string // its HTTP server (/metrics)
	done chan struct{}
}

func (p *engineProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// startEngines builds the engine, applies the catalog and starts
// o.engines processes, each a node of its own, and waits until each is
// ready and the partitions are shared.
func startEngines(ctx context.Context, o options, dir string) ([]*engineProc, error) {
	bin := o.engineBin
	if bin == "" {
		bin = filepath.Join(dir, "promoengine")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/promoengine")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return nil, fmt.Errorf("build the engine (run from the repository root): %w", err)
		}
	}
	env := append(os.Environ(), "PROMO_NATS_URL="+o.natsURL, "PROMO_DATABASE_URL="+o.databaseURL,
		"PROMO_LOG_LEVEL=warn", "PROMO_LOG_FORMAT=json", "PROMO_PPROF=true")
	for _, kv := range strings.Split(o.engineEnv, ",") {
		if kv = strings.TrimSpace(kv); kv != "" {
			env = append(env, kv)
		}
	}
	apply := exec.CommandContext(ctx, bin, "catalog", "apply", "-f", o.catalog)
	apply.Env = env
	if out, err := apply.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("catalog apply: %v\n%s", err, out)
	}
	var procs []*engineProc
	for i := 1; i <= max(o.engines, 1); i++ {
		p, err := startEngine(bin, env, dir, i)
		if err != nil {
			return procs, err
		}
		procs = append(procs, p)
	}
	if len(procs) > 1 {
		time.Sleep(3 * time.Second) // the nodes see each other and hand partitions over
	}
	return procs, nil
}

// startEngine starts engine process i and waits until it is ready.
func startEngine(bin string, env []string, dir string, i int) (*engineProc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	pprof, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run", "--workers", "orders,outbox")
	cmd.Env = append(slices.Clone(env), "PROMO_HTTP_ADDR="+addr, "PROMO_PPROF_ADDR="+pprof,
		fmt.Sprintf("PROMO_NODE_ID=loadtest-%d", i))
	logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("engine-%d.log", i)))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &engineProc{cmd: cmd, addr: addr, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(p.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == 200 {
				time.Sleep(time.Second) // let the order worker see the catalog and start pulling
				fmt.Fprintf(os.Stderr, "engine pid %d ready on http://%s, pprof on http://%s (log: %s)\n", cmd.Process.Pid, addr, pprof, logf.Name())
				return p, nil
			}
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("engine exited; see %s", logf.Name())
		case <-time.After(100 * time.Millisecond):
		}
	}
	p.stop()
	return nil, errors.New("engine not ready within 60s")
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// product is one line template of the generated orders.
type product struct {
	id, category, tag, price string
}

var products = []product{
	{"501", "minuman-dingin", "drink", "5500"}, {"502", "minuman-dingin", "drink", "3500"},
	{"601", "roti", "bakery", "16500"}, {"701", "mie", "mie-instan", "3100"},
	{"801", "minyak-goreng", "", "38900"}, {"901", "sembako", "", "72000"},
	{"902", "sembako", "", "17500"}, {"1001", "perawatan", "", "4500"},
}

// orderJSON is order i of the run and the subject it is published on: the
// keyed subject (pos.orders.paid.<token>) the engine's own ingestion uses,
// keyed by the customer or, for an anonymous order, by the order.
func orderJSON(subjects events.Subjects, run string, i int, rng *rand.Rand, o options, at time.Time) (string, string, []byte) {
	id := fmt.Sprintf("lt-%s-%d", run, i)
	customer := ""
	var b strings.Builder
	fmt.Fprintf(&b, `{"event_id":%q,"type":"pos.order.paid","occurred_at":%q,"company_id":"1","pos_config_id":"%d","order":{"id":%q,"currency":"IDR",`,
		id, at.Format(time.RFC3339Nano), 1+rng.IntN(20), id)
	if rng.Float64() >= o.anonymous {
		customer = fmt.Sprintf("c%d", rng.IntN(o.customers))
		fmt.Fprintf(&b, `"customer_id":%q,`, customer)
	}
	b.WriteString(`"lines":[`)
	n := 1 + rng.IntN(5)
	for l := 0; l < n; l++ {
		p := products[rng.IntN(len(products))]
		if l > 0 {
			b.WriteByte(',')
		}
		tags := "[]"
		if p.tag != "" {
			tags = `["` + p.tag + `"]`
		}
		fmt.Fprintf(&b, `{"id":"%d","product_id":%q,"category_ids":[%q],"tag_ids":%s,"qty":"%d","unit_price":%q}`,
			l+1, p.id, p.category, tags, 1+rng.IntN(4), p.price)
	}
	b.WriteString(`]}}`)
	subject := subjects.KeyedOrderSubject(events.TypeOrderPaid, events.SaleKey(events.ID(customer), events.ID(id)))
	return id, subject, []byte(b.String())
}

// pending is one publish whose acknowledgement the collector awaits: the
// future of PublishMsgAsync, or the error that refused it at once.
type pending struct {
	msg *nats.Msg
	id  string
	fut jetstream.PubAckFuture
	err error
}

// tally is what the run counted, under mu.
type tally struct {
	mu        sync.Mutex
	sentAt    map[string]time.Time // first publish attempt, until the result arrives
	acked     map[string]bool
	seen      map[string]bool
	latencies []time.Duration
	firstRes  time.Time
	lastRes   time.Time
	statuses  map[string]int
	dups      int
	failed    int
	retried   int
	received  atomic.Int64
}

func measure(ctx context.Context, o options, js jetstream.JetStream, pids []int, addrs []string, groups []*groupCPU) error {
	subjects := events.NewSubjects("")
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	maxEvents := 1 << 16
	if o.rate > 0 {
		maxEvents = max(maxEvents, int(float64(o.rate)*o.duration.Seconds()))
	}
	tl := &tally{sentAt: make(map[string]time.Time, maxEvents), acked: make(map[string]bool, maxEvents),
		seen: make(map[string]bool, maxEvents), latencies: make([]time.Duration, 0, maxEvents), statuses: map[string]int{}}

	// Results are read with an ordered JetStream consumer from the
	// stream's next sequence: it resumes where it stopped after a
	// reconnect (a NATS restart), so no result is missed, unlike a plain
	// subscription.
	stream, err := js.Stream(ctx, subjects.StreamResults())
	if err != nil {
		return fmt.Errorf("results stream (is the engine running?): %w", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return err
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subjects.ResultsOrder()},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    info.State.LastSeq + 1,
	})
	if err != nil {
		return err
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		now := time.Now()
		var r struct {
			CausationID string `json:"causation_id"`
			Status      string `json:"status"`
		}
		if json.Unmarshal(m.Data(), &r) != nil || !strings.HasPrefix(r.CausationID, "lt-"+run+"-") {
			return
		}
		tl.mu.Lock()
		defer tl.mu.Unlock()
		if tl.seen[r.CausationID] {
			tl.dups++
			return
		}
		tl.seen[r.CausationID] = true
		if t, ok := tl.sentAt[r.CausationID]; ok {
			tl.latencies = append(tl.latencies, now.Sub(t))
			delete(tl.sentAt, r.CausationID)
		}
		if tl.firstRes.IsZero() {
			tl.firstRes = now
		}
		tl.lastRes = now
		tl.statuses[r.Status]++
		tl.received.Add(1)
	})
	if err != nil {
		return err
	}
	defer cc.Stop()

	procs := make([]*procStats, len(pids))
	for i, pid := range pids {
		procs[i] = newProcStats(pid)
	}
	sampleCtx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	var sampled sync.WaitGroup
	for _, p := range procs {
		sampled.Add(1)
		go func() { defer sampled.Done(); p.sample(sampleCtx) }()
	}

	// Every publish's acknowledgement is awaited by the collector: an
	// event counts only once JetStream stored it. A failed publish is
	// retried with the same Nats-Msg-Id (harmless: the stream
	// deduplicates), and counted as failed if it never gets stored.
	acks := make(chan pending, 16384)
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for p := range acks {
			err := p.err
			if err == nil {
				select {
				case <-p.fut.Ok():
				case err = <-p.fut.Err():
				}
			}
			if err != nil {
				err = publishSync(ctx, js, p.msg, tl)
			}
			tl.mu.Lock()
			if err != nil {
				tl.failed++
				delete(tl.sentAt, p.id)
			} else {
				tl.acked[p.id] = true
			}
			tl.mu.Unlock()
		}
	}()

	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Now()
	published := 0
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	window := 4096 // unbounded rate: at most this many events without a result
	for time.Since(start) < o.duration && ctx.Err() == nil {
		due := published + 1
		if o.rate > 0 {
			due = int(time.Since(start).Seconds() * float64(o.rate))
		} else if published-int(tl.received.Load()) > window {
			<-tick.C
			continue
		}
		for published < due {
			now := time.Now()
			id, subject, data := orderJSON(subjects, run, published, rng, o, now)
			tl.mu.Lock()
			tl.sentAt[id] = now
			tl.mu.Unlock()
			msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
			msg.Header.Set(jetstream.MsgIDHeader, id)
			fut, err := js.PublishMsgAsync(msg)
			acks <- pending{msg: msg, id: id, fut: fut, err: err}
			published++
		}
		if o.rate > 0 {
			<-tick.C
		}
	}
	pubElapsed := time.Since(start)
	close(acks)
	<-collected
	tl.mu.Lock()
	acked := len(tl.acked)
	tl.mu.Unlock()
	deadline := time.Now().Add(o.drain)
	for tl.received.Load() < int64(acked) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	stopSampling()
	sampled.Wait()

	tl.mu.Lock()
	defer tl.mu.Unlock()
	lat := slices.Clone(tl.latencies)
	slices.Sort(lat)
	got, missing := 0, 0
	for id := range tl.acked {
		if tl.seen[id] {
			got++
		} else {
			missing++
		}
	}
	resElapsed := tl.lastRes.Sub(start)
	fmt.Printf("\npromoengine loadtest — %s, %d customers (%.0f%% anonymous), NATS file storage, PostgreSQL fsync on\n",
		time.Now().Format(time.RFC3339), o.customers, o.anonymous*100)
	fmt.Printf("| target rate | published | acked | failed | publish rate | results | result rate | missing | duplicated | p50 | p99 | p99.9 | max |\n")
	fmt.Printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	target := "max"
	if o.rate > 0 {
		target = fmt.Sprintf("%d/s", o.rate)
	}
	fmt.Printf("| %s | %d | %d | %d | %.0f/s | %d | %.0f/s | %d | %d | %s | %s | %s | %s |\n",
		target, published, acked, tl.failed, float64(published)/pubElapsed.Seconds(), got, float64(got)/resElapsed.Seconds(),
		missing, tl.dups, pct(lat, 0.50), pct(lat, 0.99), pct(lat, 0.999), pct(lat, 1))
	fmt.Printf("\n| engine pid | CPU | CPU per result | RSS max |\n|---|---|---|---|\n")
	for _, p := range procs {
		cpu := p.cpu()
		perResult := "-"
		if got > 0 {
			perResult = fmt.Sprintf("%.0f µs", cpu.Seconds()*1e6/float64(got))
		}
		fmt.Printf("| %d | %.2f s | %s | %.1f MB |\n", p.pid, cpu.Seconds(), perResult, float64(p.rssMax.Load())/1e6)
	}
	var used []time.Duration // read before the engines stop
	for _, g := range groups {
		used = append(used, g.used())
	}
	fmt.Printf("\n| process | CPU | CPU per result |\n|---|---|---|\n")
	for i, g := range groups {
		perResult := "-"
		if got > 0 {
			perResult = fmt.Sprintf("%.0f µs", used[i].Seconds()*1e6/float64(got))
		}
		fmt.Printf("| %s | %.2f s | %s |\n", g.name, used[i].Seconds(), perResult)
	}
	fmt.Printf("statuses: %v; publishes retried: %d; results counted for acknowledged events only; result rate is results over first publish → last result (%s)\n",
		tl.statuses, tl.retried, resElapsed.Round(time.Millisecond))
	printShare(addrs)
	return nil
}

// publishSync publishes msg again until JetStream acknowledges it, five
// attempts at most.
func publishSync(ctx context.Context, js jetstream.JetStream, msg *nats.Msg, tl *tally) error {
	var err error
	for attempt := 0; attempt < 5 && ctx.Err() == nil; attempt++ {
		tl.mu.Lock()
		tl.retried++
		tl.mu.Unlock()
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = js.PublishMsg(pctx, msg)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		}
	}
	if err == nil {
		err = ctx.Err()
	}
	return err
}

func pct(sorted []time.Duration, p float64) string {
	if len(sorted) == 0 {
		return "-"
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	i = min(max(i, 0), len(sorted)-1)
	d := sorted[i]
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000)
	case d < time.Second:
		return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
	}
	return d.Round(10 * time.Millisecond).String()
}

// procStats follows one engine process: CPU time (user + system) over the
// run and the largest resident set seen.
type procStats struct {
	pid      int
	cpuStart time.Duration
	rssMax   atomic.Int64
	cpuEnd   atomic.Int64
}

func newProcStats(pid int) *procStats {
	return &procStats{pid: pid, cpuStart: cpuOf(pid)}
}

// sample keeps the largest VmRSS seen every 200 ms and the CPU time last
// seen (a process that dies keeps what it used until then).
func (p *procStats) sample(ctx context.Context) {
	for {
		if rss := procstat.RSS(p.pid); rss > p.rssMax.Load() {
			p.rssMax.Store(rss)
		}
		if cpu := cpuOf(p.pid); cpu > 0 {
			p.cpuEnd.Store(int64(cpu))
		}
		select {
		case <-ctx.Done():
			if cpu := cpuOf(p.pid); cpu > 0 {
				p.cpuEnd.Store(int64(cpu))
			}
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// cpu is the CPU time the process used during the run.
func (p *procStats) cpu() time.Duration {
	return max(0, time.Duration(p.cpuEnd.Load())-p.cpuStart)
}

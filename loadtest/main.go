// Command loadtest measures promoengine end to end: it publishes
// pos.order.paid events at a given rate for a given duration over N
// customers, listens for their results on promo.results.order, and prints
// throughput, end-to-end latency (publish → result received) percentiles and
// the engine's resident memory. It measures; it asserts nothing.
//
// By default it sets up everything itself, the way SPEC §10 states the
// targets: a NATS JetStream server with file storage (in this process, so
// the engine's memory is the engine's alone), a private PostgreSQL cluster
// with fsync on, the example catalog, and `promoengine run --workers
// orders,outbox` as a separate process. Point it at existing servers with
// --nats-url/--database-url, or at a running engine with --engine-pid.
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
	"io"
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
	"github.com/promoengine/promoengine/pkg/events"
)

type options struct {
	rate        int
	duration    time.Duration
	customers   int
	anonymous   float64
	natsURL     string
	databaseURL string
	enginePID   int
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
	flag.IntVar(&o.enginePID, "engine-pid", 0, "measure an engine already running with this pid (no engine is started)")
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
	if o.databaseURL == "" && o.enginePID == 0 {
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
	pid := o.enginePID
	if pid == 0 {
		p, err := startEngine(ctx, o, dir)
		if err != nil {
			return err
		}
		defer p.stop()
		pid = p.cmd.Process.Pid
	}

	nc, err := nats.Connect(o.natsURL, nats.Name("promoengine-loadtest"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8192))
	if err != nil {
		return err
	}
	return measure(ctx, o, nc, js, pid)
}

// engineProc is the engine started for the run.
type engineProc struct {
	cmd  *exec.Cmd
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

func startEngine(ctx context.Context, o options, dir string) (*engineProc, error) {
	bin := o.engineBin
	if bin == "" {
		bin = filepath.Join(dir, "promoengine")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/promoengine")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return nil, fmt.Errorf("build the engine (run from the repository root): %w", err)
		}
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	env := append(os.Environ(), "PROMO_NATS_URL="+o.natsURL, "PROMO_DATABASE_URL="+o.databaseURL,
		"PROMO_HTTP_ADDR="+addr, "PROMO_LOG_LEVEL=warn", "PROMO_LOG_FORMAT=json", "PROMO_PPROF=true")
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
	cmd := exec.Command(bin, "run", "--workers", "orders,outbox")
	cmd.Env = env
	logf, err := os.Create(filepath.Join(dir, "engine.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &engineProc{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(p.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == 200 {
				time.Sleep(time.Second) // let the order worker see the catalog and start pulling
				fmt.Fprintf(os.Stderr, "engine pid %d ready on http://%s (log: %s)\n", cmd.Process.Pid, addr, logf.Name())
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

func orderJSON(run string, i int, rng *rand.Rand, o options, at time.Time) (string, []byte) {
	id := fmt.Sprintf("lt-%s-%d", run, i)
	var b strings.Builder
	fmt.Fprintf(&b, `{"event_id":%q,"type":"pos.order.paid","occurred_at":%q,"company_id":"1","pos_config_id":"%d","order":{"id":%q,"currency":"IDR",`,
		id, at.Format(time.RFC3339Nano), 1+rng.IntN(20), id)
	if rng.Float64() >= o.anonymous {
		fmt.Fprintf(&b, `"customer_id":"c%d",`, rng.IntN(o.customers))
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
	return id, []byte(b.String())
}

func measure(ctx context.Context, o options, nc *nats.Conn, js jetstream.JetStream, pid int) error {
	subjects := events.NewSubjects("")
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	maxEvents := 0
	if o.rate > 0 {
		maxEvents = int(float64(o.rate) * o.duration.Seconds())
	}
	var (
		mu        sync.Mutex
		sentAt    = make(map[string]time.Time, max(maxEvents, 1<<16))
		latencies = make([]time.Duration, 0, max(maxEvents, 1<<16))
		firstRes  time.Time
		lastRes   time.Time
		received  atomic.Int64
		statuses  = map[string]int{}
	)
	sub, err := nc.Subscribe(subjects.ResultsOrder(), func(m *nats.Msg) {
		now := time.Now()
		var r struct {
			CausationID string `json:"causation_id"`
			Status      string `json:"status"`
		}
		if json.Unmarshal(m.Data, &r) != nil || !strings.HasPrefix(r.CausationID, "lt-"+run+"-") {
			return
		}
		mu.Lock()
		if t, ok := sentAt[r.CausationID]; ok {
			latencies = append(latencies, now.Sub(t))
			delete(sentAt, r.CausationID)
			if firstRes.IsZero() {
				firstRes = now
			}
			lastRes = now
			statuses[r.Status]++
		}
		mu.Unlock()
		received.Add(1)
	})
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	_ = sub.SetPendingLimits(-1, -1)

	var rssMax atomic.Int64
	rssCtx, stopRSS := context.WithCancel(ctx)
	defer stopRSS()
	go sampleRSS(rssCtx, pid, &rssMax)

	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Now()
	published := 0
	var pubErrs int
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	window := 4096 // unbounded rate: at most this many events without a result
	for time.Since(start) < o.duration && ctx.Err() == nil {
		due := published + 1
		if o.rate > 0 {
			due = int(time.Since(start).Seconds() * float64(o.rate))
		} else if published-int(received.Load()) > window {
			<-tick.C
			continue
		}
		for published < due {
			now := time.Now()
			id, data := orderJSON(run, published, rng, o, now)
			mu.Lock()
			sentAt[id] = now
			mu.Unlock()
			if _, err := js.PublishMsgAsync(&nats.Msg{Subject: subjects.OrdersPaid(), Data: data},
				jetstream.WithMsgID(id)); err != nil {
				pubErrs++
			}
			published++
		}
		if o.rate > 0 {
			<-tick.C
		}
	}
	pubElapsed := time.Since(start)
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
	}
	deadline := time.Now().Add(o.drain)
	for received.Load() < int64(published) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	stopRSS()

	mu.Lock()
	defer mu.Unlock()
	lat := slices.Clone(latencies)
	slices.Sort(lat)
	got := len(lat)
	resElapsed := lastRes.Sub(start)
	fmt.Printf("\npromoengine loadtest — %s, %d customers (%.0f%% anonymous), NATS file storage, PostgreSQL fsync on\n",
		time.Now().Format(time.RFC3339), o.customers, o.anonymous*100)
	fmt.Printf("| target rate | published | publish rate | results | result rate | missing | p50 | p99 | p99.9 | max | engine RSS max |\n")
	fmt.Printf("|---|---|---|---|---|---|---|---|---|---|---|\n")
	target := "max"
	if o.rate > 0 {
		target = fmt.Sprintf("%d/s", o.rate)
	}
	fmt.Printf("| %s | %d | %.0f/s | %d | %.0f/s | %d | %s | %s | %s | %s | %.1f MB |\n",
		target, published, float64(published)/pubElapsed.Seconds(), got, float64(got)/resElapsed.Seconds(),
		published-got, pct(lat, 0.50), pct(lat, 0.99), pct(lat, 0.999), pct(lat, 1), float64(rssMax.Load())/1e6)
	fmt.Printf("statuses: %v; publish errors: %d; result rate is results over first publish → last result (%s)\n",
		statuses, pubErrs, resElapsed.Round(time.Millisecond))
	return nil
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

// sampleRSS keeps the largest VmRSS of pid seen every 200 ms.
func sampleRSS(ctx context.Context, pid int, maxRSS *atomic.Int64) {
	for {
		if rss := readRSS(pid); rss > maxRSS.Load() {
			maxRSS.Store(rss)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func readRSS(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/rs/zerolog"

	"github.com/promoengine/promoengine/internal/consume"
	"github.com/promoengine/promoengine/internal/metrics"
	"github.com/promoengine/promoengine/internal/partition"
	"github.com/promoengine/promoengine/internal/streams"
	"github.com/promoengine/promoengine/pkg/events"
)

// PartitionsConfig tunes this process's share of the order consumers.
type PartitionsConfig struct {
	// Partitions is the number of partitions of POS_ORDERS.
	Partitions int
	// Timing is the consumers' delivery timing.
	Timing streams.Timing
	// MaxAckPending is each consumer's (OrdersConfig.MaxAckPending).
	MaxAckPending int
	// NodeID identifies this process among the live ones ("" picks
	// host-pid-random).
	NodeID string
	// Replicas of the membership bucket.
	Replicas int
	// MemberBeat and MemberTTL tune membership (0: 1 s and 5 s).
	MemberBeat, MemberTTL time.Duration
}

// Partitions runs this process's share of the order consumers: it joins
// the membership of live processes, computes the units it owns (the
// partitions, and the keyer) by rendezvous hashing, and pulls each with a
// consume.Puller in the consumers' pinned priority group, feeding Orders
// (partitions) or Keyer (the keyer). See internal/partition for the whole
// mechanism.
//
// Giving a unit up (another process joined, or this one stops): stop
// pulling, hand back what is queued, let what is committing commit, and —
// once nothing of the unit is held — unpin its consumer so that the next
// owner starts at once; otherwise the pin expires after PinnedTTL and the
// next owner's gate holds what it receives until whatever was left has
// expired into the redelivery queue (workers/gate.go).
type Partitions struct {
	cfg      PartitionsConfig
	js       jetstream.JetStream
	subjects events.Subjects
	orders   *Orders
	keyer    *Keyer
	metrics  *metrics.Metrics
	log      zerolog.Logger

	members  *partition.Members
	units    []string
	held     *consume.Held // what the gates of newly acquired units hold
	ctx      context.Context
	cancel   context.CancelFunc
	loopDone chan struct{}

	mu       sync.Mutex
	running  map[string]*unitRun
	releases sync.WaitGroup
	stopOnce sync.Once
}

// unitRun is one unit this process pulls.
type unitRun struct {
	name   string
	src    *consume.Source
	puller *consume.Puller
	cancel context.CancelFunc
	done   chan struct{}
}

// NewPartitions assembles the share; call Start.
func NewPartitions(cfg PartitionsConfig, js jetstream.JetStream, subjects events.Subjects, orders *Orders, keyer *Keyer,
	m *metrics.Metrics, log zerolog.Logger) *Partitions {
	if cfg.NodeID == "" {
		cfg.NodeID = DefaultNodeID()
	}
	units := []string{streams.KeyerConsumer}
	for p := range cfg.Partitions {
		units = append(units, streams.PartitionConsumer(p))
	}
	return &Partitions{cfg: cfg, js: js, subjects: subjects, orders: orders, keyer: keyer, metrics: m,
		log: log.With().Str("node", cfg.NodeID).Logger(), units: units, running: map[string]*unitRun{}}
}

// DefaultNodeID is host-pid-random: unique among live processes, new at
// each start (a restarted process is a new member; the old one's key
// expires).
func DefaultNodeID() string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r == '.' || r == '*' || r == '>' || r == ' ' {
			return '-'
		}
		return r
	}, host)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), nuid.Next()[:6])
}

// NodeID is this process's id among the members.
func (p *Partitions) NodeID() string { return p.cfg.NodeID }

// Start joins the membership and starts pulling the units this process
// owns (at once for the units it owns alone).
func (p *Partitions) Start(ctx context.Context) error {
	started := time.Now().UTC()
	host, _ := os.Hostname()
	members, err := partition.Join(ctx, p.js, partition.MembersConfig{
		Bucket: MembersBucket(p.subjects), Self: p.cfg.NodeID, Beat: p.cfg.MemberBeat, TTL: p.cfg.MemberTTL,
		Replicas: p.cfg.Replicas,
		Describe: func() []byte {
			b, _ := json.Marshal(NodeInfo{Host: host, PID: os.Getpid(), Started: started, Beat: time.Now().UTC(), Owned: p.Owned()})
			return b
		},
	}, p.log)
	if err != nil {
		return err
	}
	p.members = members
	p.ctx, p.cancel = context.WithCancel(context.WithoutCancel(ctx))
	p.held = consume.NewHeld(p.cfg.Timing.Heartbeat())
	p.loopDone = make(chan struct{})
	go func() {
		defer close(p.loopDone)
		go p.held.Run(p.ctx)
		members.Run(p.ctx, p.reassign)
	}()
	return nil
}

// NodeInfo is what a process says of itself in the membership bucket.
type NodeInfo struct {
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	Beat    time.Time `json:"beat"`
	Owned   []string  `json:"owned"`
}

// MembersBucket names the membership bucket.
func MembersBucket(s events.Subjects) string {
	return strings.TrimSuffix(s.StreamOrders(), "POS_ORDERS") + "PROMO_NODES"
}

// reassign starts pulling the units this process now owns and gives up the
// others.
func (p *Partitions) reassign(live []string) {
	owned := partition.Owned(p.units, live, p.cfg.NodeID)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx.Err() != nil {
		return
	}
	var acquired, released []string
	for name, run := range p.running {
		if !slices.Contains(owned, name) {
			delete(p.running, name)
			released = append(released, name)
			p.releases.Add(1)
			go func() { defer p.releases.Done(); p.release(run) }()
		}
	}
	for _, name := range owned {
		if _, ok := p.running[name]; !ok {
			p.running[name] = p.acquire(name)
			acquired = append(acquired, name)
		}
	}
	p.metrics.PartitionsOwned.Set(float64(len(p.running)))
	if len(acquired) > 0 || len(released) > 0 {
		sort.Strings(acquired)
		sort.Strings(released)
		p.log.Info().Strs("nodes", live).Strs("acquired", acquired).Strs("released", released).
			Int("owned", len(p.running)).Msg("partitions reassigned")
	}
}

// acquire starts pulling a unit.
func (p *Partitions) acquire(name string) *unitRun {
	src := consume.NewSource(name)
	handle := func(msg jetstream.Msg) { p.orders.Handle(src, msg) }
	filter := p.subjects.OrdersUnkeyed()
	if name == streams.KeyerConsumer {
		handle = func(msg jetstream.Msg) { p.keyer.Handle(src, msg) }
	} else {
		var part int
		_, _ = fmt.Sscanf(strings.TrimPrefix(name, "promo-orders-"), "%d", &part)
		filter = p.subjects.Partition(part)
	}
	cfg := streams.OrderConsumerConfig(name, filter, p.cfg.Timing, p.cfg.MaxAckPending)
	stream := p.subjects.StreamOrders()
	ctx, cancel := context.WithCancel(p.ctx)
	g := newGate(src, p.held, handle)
	var mu sync.Mutex
	var cons jetstream.Consumer
	puller := &consume.Puller{
		Name: name,
		Open: func(ctx context.Context) (jetstream.Consumer, error) {
			c, err := streams.EnsureConsumer(ctx, p.js, stream, cfg)
			if err == nil {
				mu.Lock()
				cons = c
				mu.Unlock()
			}
			return c, err
		},
		Opts: []jetstream.PullMessagesOpt{
			jetstream.PullPriorityGroup(streams.OrdersGroup),
			jetstream.PullMaxMessages(min(p.cfg.MaxAckPending, 256)),
			jetstream.PullExpiry(p.cfg.Timing.PullExpiry()),
		},
		Handle: g.handle,
		Log:    p.log,
	}
	run := &unitRun{name: name, src: src, puller: puller, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(run.done); puller.Run(ctx) }()
	go func() {
		// The wait converges (what others hold is acknowledged, or expires
		// and is redelivered here); the limit only guards against a count
		// that never comes right, and is generous because giving up early
		// can reorder a customer's events (a consumer leader election or a
		// loaded machine can hold the count for several AckWaits).
		limit := 3*p.cfg.Timing.AckWait + 30*time.Second
		waited, timedOut := g.watch(ctx, func() jetstream.Consumer { mu.Lock(); defer mu.Unlock(); return cons }, 200*time.Millisecond, limit)
		switch {
		case timedOut:
			p.log.Error().Str("consumer", name).Dur("waited", waited).Msg("unit acquired: messages held elsewhere did not come back in time; going on (their customers' events may be applied out of order)")
		case waited > time.Second:
			p.log.Info().Str("consumer", name).Dur("waited", waited).Msg("unit acquired once the messages its previous owner held came back")
		}
	}()
	return run
}

// release gives a unit up while the process goes on.
func (p *Partitions) release(run *unitRun) {
	run.cancel()
	<-run.done
	run.src.Release()
	p.unpinWhenSettled(run, p.cfg.Timing.AckWait/2+time.Second)
}

// unpinWhenSettled unpins run's consumer once nothing of it is held, if
// that happens within wait and the server still has this process pinned.
func (p *Partitions) unpinWhenSettled(run *unitRun, wait time.Duration) {
	deadline := time.Now().Add(wait)
	for run.src.Holding() > 0 {
		if time.Now().After(deadline) {
			p.log.Info().Str("consumer", run.name).Int64("held", run.src.Holding()).
				Msg("unit given up with messages still held; the next owner takes it when its pin expires")
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	pin := run.src.Pin()
	if pin == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cons, err := p.js.Consumer(ctx, p.subjects.StreamOrders(), run.name)
	if err != nil {
		return
	}
	for _, g := range cons.CachedInfo().PriorityGroups {
		if g.Group == streams.OrdersGroup && g.PinnedClientID == pin {
			if s, err := p.js.Stream(ctx, p.subjects.StreamOrders()); err == nil {
				if err := s.UnpinConsumer(ctx, run.name, streams.OrdersGroup); err != nil {
					p.log.Debug().Err(err).Str("consumer", run.name).Msg("unpin")
				}
			}
		}
	}
}

// Stop stops pulling every unit, lets the order workers and the keyer
// finish what they hold (Orders.Stop, Keyer.Stop), unpins the units whose
// messages were all settled, and leaves the membership so that the others
// take over at once.
func (p *Partitions) Stop() {
	if p.cancel == nil {
		p.orders.Stop()
		p.keyer.Stop()
		return
	}
	p.stopOnce.Do(func() {
		p.mu.Lock()
		runs := make([]*unitRun, 0, len(p.running))
		for _, r := range p.running {
			runs = append(runs, r)
		}
		p.running = map[string]*unitRun{}
		p.cancel() // membership loop and every puller
		p.mu.Unlock()
		<-p.loopDone
		for _, r := range runs {
			<-r.done
		}
		p.releases.Wait()
		p.orders.Stop()
		p.keyer.Stop()
		var wg sync.WaitGroup
		for _, r := range runs {
			wg.Add(1)
			go func() { defer wg.Done(); p.unpinWhenSettled(r, 0) }()
		}
		wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := p.members.Leave(ctx); err != nil {
			p.log.Debug().Err(err).Msg("leave the membership; the key expires by itself")
		}
		p.metrics.PartitionsOwned.Set(0)
	})
}

// Owned lists the units this process pulls now.
func (p *Partitions) Owned() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.running))
	for name := range p.running {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// notConsumingGrace is how long a unit may go without a working pull
// before /readyz reports it.
const notConsumingGrace = 10 * time.Second

// Ready reports a unit this process owns but has not been able to pull for
// a while (its consumer deleted and not recreatable, NATS refusing…).
func (p *Partitions) Ready() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for name, r := range p.running {
		errs = append(errs, r.puller.Status().NotConsumingFor(name, notConsumingGrace))
	}
	return errors.Join(errs...)
}

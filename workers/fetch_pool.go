package workers

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/promoengine/promoengine/internal/consume"
)

// fetchPool handles each message of a consumer in a goroutine of its own,
// at most slots at once (backpressure: it fetches only for a free slot),
// with the two contexts of a river worker: stopping ends the fetching at
// once, and the work in flight gets softStop to finish before its context
// is cancelled. Messages held by the pool are beaten (InProgress) until
// they are settled. The Odoo read-back and the shadow comparison use it:
// each message is a few JSON-RPC calls, independent of the others.
type fetchPool struct {
	fetcher   *consume.Fetcher
	softStop  time.Duration
	log       zerolog.Logger
	what      string
	stopFetch context.CancelFunc
	stopWork  context.CancelFunc
	fetchDone chan struct{}
	inFlight  sync.WaitGroup
	stopOnce  sync.Once
}

// fetchPoolConfig is what a fetchPool needs besides its consumer.
type fetchPoolConfig struct {
	// Reopen recreates the consumer after it vanished (nil: do not).
	Reopen   func(context.Context) (jetstream.Consumer, error)
	Slots    int
	AckWait  time.Duration // held messages are beaten every third of it
	SoftStop time.Duration
	What     string // names the pool in its log and readiness
}

// startFetchPool starts fetching from cons; ctx bounds everything, Stop
// ends it gracefully.
func startFetchPool(ctx context.Context, cons jetstream.Consumer, cfg fetchPoolConfig, log zerolog.Logger,
	handle func(ctx context.Context, msg jetstream.Msg)) *fetchPool {
	p := &fetchPool{
		fetcher:  consume.NewFetcher(cons, cfg.Reopen, cfg.Slots, cfg.AckWait/3, log, jetstream.PullMaxMessages(cfg.Slots)),
		softStop: cfg.SoftStop, log: log, what: cfg.What, fetchDone: make(chan struct{}),
	}
	fetchCtx, stopFetch := context.WithCancel(ctx)
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	p.stopFetch, p.stopWork = stopFetch, stopWork
	go func() {
		defer close(p.fetchDone)
		p.fetcher.Run(fetchCtx, workCtx, func(msg jetstream.Msg) {
			p.inFlight.Add(1)
			go func() {
				defer p.inFlight.Done()
				defer p.fetcher.Release(msg)
				handle(workCtx, msg)
			}()
		})
	}()
	return p
}

// Ready reports a pull that has not worked for a while (/readyz).
func (p *fetchPool) Ready() error {
	if p == nil {
		return nil
	}
	return p.fetcher.Status().NotConsumingFor(p.what, notConsumingGrace)
}

// Stop stops fetching, lets the work in flight finish for softStop, then
// cancels it. Safe to call more than once, and on a nil pool.
func (p *fetchPool) Stop() {
	if p == nil {
		return
	}
	p.stopOnce.Do(func() {
		p.stopFetch()
		<-p.fetchDone
		done := make(chan struct{})
		go func() { p.inFlight.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(p.softStop):
			p.log.Warn().Msg(p.what + ": work in flight did not finish in time; cancelling it")
			p.stopWork()
			<-done
		}
		p.stopWork()
	})
}

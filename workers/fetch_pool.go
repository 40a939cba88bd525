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
// is cancelled. The shadow comparison uses it: each message is a few
// JSON-RPC calls, independent of the others (the Odoo read-back has the same
// shape and can move to it).
type fetchPool struct {
	fetcher   *consume.Fetcher
	softStop  time.Duration
	log       zerolog.Logger
	stopFetch context.CancelFunc
	stopWork  context.CancelFunc
	fetchDone chan struct{}
	inFlight  sync.WaitGroup
	stopOnce  sync.Once
}

// startFetchPool starts fetching from cons; ctx bounds everything, Stop
// ends it gracefully. what names the pool in its log.
func startFetchPool(ctx context.Context, cons jetstream.Consumer, slots int, softStop time.Duration, log zerolog.Logger,
	what string, handle func(ctx context.Context, msg jetstream.Msg)) *fetchPool {
	p := &fetchPool{fetcher: consume.NewFetcher(cons, slots, log, jetstream.PullMaxMessages(slots)), softStop: softStop,
		log: log, fetchDone: make(chan struct{})}
	fetchCtx, stopFetch := context.WithCancel(ctx)
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	p.stopFetch, p.stopWork = stopFetch, stopWork
	go func() {
		defer close(p.fetchDone)
		err := p.fetcher.Run(fetchCtx, func(msg jetstream.Msg) {
			p.inFlight.Add(1)
			go func() {
				defer p.inFlight.Done()
				defer p.fetcher.Release()
				handle(workCtx, msg)
			}()
		})
		if err != nil {
			p.log.Error().Err(err).Msg(what + " stopped")
		}
	}()
	return p
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
			p.log.Warn().Msg("work in flight did not finish in time; cancelling it")
			p.stopWork()
			<-done
		}
		p.stopWork()
	})
}

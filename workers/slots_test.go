package workers

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A second transaction starts only for a lane with ConcurrentAt events
// waiting; otherwise the lane waits for the running one to end.
func TestSecondTransactionOnlyForABacklog(t *testing.T) {
	t.Parallel()
	o := &Orders{cfg: OrdersConfig{InFlight: 2, ConcurrentAt: 3}.Resolved(), first: make(chan struct{}, 1), extra: extraSlots(2)}
	busy, short := newLane(), newLane()
	require.Equal(t, o.first, o.acquire(busy), "the first slot is free")

	short.push(&item{})
	got := make(chan chan struct{}, 1)
	go func() { got <- o.acquire(short) }()
	select {
	case <-got:
		t.Fatal("a lane with one event waiting started a second transaction")
	case <-time.After(50 * time.Millisecond):
	}
	short.push(&item{})
	short.push(&item{})
	select {
	case slot := <-got:
		require.Equal(t, o.extra, slot, "three waiting: a second transaction")
		<-slot
	case <-time.After(5 * time.Second):
		t.Fatal("a lane with a backlog waited for the running transaction")
	}

	// A transaction that runs long stops holding the others back.
	<-o.first
	require.Equal(t, o.first, o.acquire(busy), "a new transaction")
	quiet := newLane()
	quiet.push(&item{})
	start := time.Now()
	go func() { got <- o.acquire(quiet) }()
	select {
	case <-got:
		t.Fatal("started alongside a transaction just begun")
	case <-time.After(slowTransaction / 2):
	}
	select {
	case slot := <-got:
		require.Equal(t, o.extra, slot)
		require.GreaterOrEqual(t, time.Since(start), slowTransaction/2)
		<-slot
	case <-time.After(5 * time.Second):
		t.Fatal("the lane still waits on a slow transaction")
	}

	// The first slot coming free is taken at once.
	<-o.first
	require.Equal(t, o.first, o.acquire(quiet))
}

// With one transaction in flight there is no second slot at all.
func TestOneTransactionInFlight(t *testing.T) {
	t.Parallel()
	o := &Orders{cfg: OrdersConfig{InFlight: 1, ConcurrentAt: 1}.Resolved(), first: make(chan struct{}, 1), extra: extraSlots(1)}
	l := newLane()
	for range 10 {
		l.push(&item{})
	}
	require.Equal(t, o.first, o.acquire(l))
	got := make(chan chan struct{}, 1)
	go func() { got <- o.acquire(l) }()
	select {
	case <-got:
		t.Fatal("two transactions with InFlight 1")
	case <-time.After(50 * time.Millisecond):
	}
	<-o.first
	require.Equal(t, o.first, <-got)
}

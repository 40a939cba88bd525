// Package testnats gives a test its own NATS JetStream server.
//
// Each call to New starts a fresh in-process nats-server (internal/natsembed,
// the same code `promoengine dev` runs) on a random port with JetStream file
// storage in t.TempDir(). Tests therefore exercise real acks, redeliveries,
// Nats-Msg-Id deduplication and stream limits, never a fake, and never see
// each other's streams, so they can run with t.Parallel(). A server starts
// in milliseconds, cheaper than isolating tests inside one shared server.
//
// Everything New, Conn and JetStream create is closed in t.Cleanup:
// connections first, then the server. The server stops completely (no
// goroutine left behind), so packages using testnats can keep the goleak
// check in TestMain.
package testnats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/natsembed"
)

// Server is a running test server.
type Server struct {
	srv *server.Server
	url string
}

// New starts a JetStream server for the test and shuts it down at cleanup.
func New(t testing.TB) *Server {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return &Server{srv: srv, url: srv.ClientURL()}
}

// URL is the client URL, e.g. for PROMO_NATS_URL of a subprocess.
func (s *Server) URL() string { return s.url }

// Conn opens a new connection, closed at cleanup of t. Each call returns a
// new connection so that a test can give each worker its own, as production
// processes have.
func (s *Server) Conn(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.url, nats.Name(t.Name()))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

// JetStream returns a JetStream context on a new connection (see Conn).
func (s *Server) JetStream(t testing.TB) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(s.Conn(t))
	require.NoError(t, err)
	return js
}

// StreamMessages returns every message stored in a stream, in sequence
// order (deleted ones skipped), for tests that check what was published.
func StreamMessages(t testing.TB, js jetstream.JetStream, stream string) []jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, stream)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	var out []jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // deleted
		}
		require.NoError(t, err)
		out = append(out, *m)
	}
	return out
}

// ResultsByCausation decodes every message of a results stream and maps
// each causation_id to the results published for it, in stream order.
func ResultsByCausation(t testing.TB, js jetstream.JetStream, stream string) map[string][]map[string]any {
	t.Helper()
	out := map[string][]map[string]any{}
	for _, m := range StreamMessages(t, js, stream) {
		var r map[string]any
		require.NoError(t, json.Unmarshal(m.Data, &r), "%s seq %d", stream, m.Sequence)
		if id, ok := r["causation_id"].(string); ok {
			out[id] = append(out[id], r)
		}
	}
	return out
}

// ConsumersSettled reports whether every consumer of stream has delivered
// and seen acknowledged everything it should: nothing pending, nothing
// awaiting an ack, and the stream's last message delivered to one of them
// (each message of POS_ORDERS belongs to exactly one order consumer, and
// consumer counts follow a publish asynchronously).
func ConsumersSettled(ctx context.Context, js jetstream.JetStream, stream string) (bool, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return false, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return false, err
	}
	lister := s.ListConsumers(ctx)
	settled, lastDelivered := true, info.State.Msgs == 0
	for ci := range lister.Info() { // read to the end: the lister's goroutine ends then
		settled = settled && ci.NumPending == 0 && ci.NumAckPending == 0
		lastDelivered = lastDelivered || ci.Delivered.Stream >= info.State.LastSeq
	}
	if err := lister.Err(); err != nil {
		return false, err
	}
	return settled && lastDelivered, nil
}

// Cluster is a JetStream cluster of in-process servers on loopback.
type Cluster struct {
	Servers []*server.Server
	opts    []natsembed.Options
	t       testing.TB
}

// NewCluster starts n clustered servers and waits until JetStream has a
// meta leader. Every server stops at cleanup.
func NewCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t}
	routePorts := make([]int, n)
	var routes []string
	for i := range routePorts {
		routePorts[i] = freePort(t)
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", routePorts[i]))
	}
	for i := range n {
		c.opts = append(c.opts, natsembed.Options{StoreDir: t.TempDir(), Port: freePort(t), Name: fmt.Sprintf("n%d", i+1),
			Cluster: &natsembed.ClusterOptions{Name: "promo-test", Port: routePorts[i], Routes: routes}})
	}
	c.Servers = make([]*server.Server, n)
	errs := make(chan error, n)
	for i := range n {
		go func() {
			var err error
			c.Servers[i], err = natsembed.Start(c.opts[i])
			errs <- err
		}()
	}
	for range n {
		require.NoError(t, <-errs)
	}
	t.Cleanup(func() {
		for _, s := range c.Servers {
			if s != nil {
				s.Shutdown()
				s.WaitForShutdown()
			}
		}
	})
	c.WaitReady()
	return c
}

// URLs is every member's client URL, comma-separated (PROMO_NATS_URL).
func (c *Cluster) URLs() string {
	var urls []string
	for _, o := range c.opts {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", o.Port))
	}
	return strings.Join(urls, ",")
}

// WaitReady waits until every running member sees a JetStream meta leader.
func (c *Cluster) WaitReady() {
	c.t.Helper()
	require.Eventually(c.t, func() bool {
		for _, s := range c.Servers {
			if s == nil || !s.Running() {
				continue
			}
			if !s.JetStreamIsCurrent() {
				return false
			}
		}
		for _, s := range c.Servers {
			if s != nil && s.Running() && s.JetStreamIsLeader() {
				return true
			}
		}
		return false
	}, time.Minute, 100*time.Millisecond, "JetStream cluster has a meta leader")
}

// Kill stops member i at once.
func (c *Cluster) Kill(i int) {
	c.Servers[i].Shutdown()
	c.Servers[i].WaitForShutdown()
	c.Servers[i] = nil
}

// Restart starts member i again on its ports and store.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	s, err := natsembed.Start(c.opts[i])
	require.NoError(c.t, err)
	c.Servers[i] = s
	c.WaitReady()
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

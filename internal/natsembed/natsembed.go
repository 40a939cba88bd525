// Package natsembed runs a NATS JetStream server inside the current process.
//
// `promoengine dev` uses it so that a developer needs no NATS installation,
// and internal/testnats uses it so that tests talk to a real server, not a
// fake: the same nats-server code production runs, over real TCP, with
// JetStream file storage, so acks, redeliveries, deduplication windows and
// stream limits behave as they will in production.
//
// The server is deliberately minimal: one node, no auth, no cluster, no
// monitoring port. It does not install signal handlers (the host process
// owns its signals) and logs nothing unless given a Logger.
package natsembed

import (
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// readyTimeout bounds the wait for the server to accept clients. JetStream
// recovers its streams from StoreDir before it is ready, which on a large
// dev store takes a few seconds.
const readyTimeout = 30 * time.Second

// Options configures Start.
type Options struct {
	// StoreDir is where JetStream keeps streams and consumers. Required:
	// file storage is what production uses, and memory-only streams would
	// hide the costs and limits of the real thing.
	StoreDir string
	// Host is the address to listen on; empty means 127.0.0.1, because a
	// server without auth must not be reachable from the network by default.
	Host string
	// Port is the client port; zero picks a free one (read it back from
	// Server.ClientURL), as tests need. `promoengine dev` passes 4222.
	Port int
	// Logger receives the server's log; nil means silence. Fatal errors
	// arrive as Errorf and make Start fail instead of exiting the process.
	Logger server.Logger
	// Debug and Trace turn on the server's debug and protocol trace logs.
	// They only matter with a Logger.
	Debug, Trace bool
	// Name is the server's name, unique in a cluster ("" for the default).
	Name string
	// Cluster, when set, makes the server a member of a JetStream cluster
	// (tests of several servers on loopback).
	Cluster *ClusterOptions
}

// ClusterOptions join a server to a cluster.
type ClusterOptions struct {
	Name   string   // the cluster's name, the same on every member
	Port   int      // the route port of this server
	Routes []string // nats-route://127.0.0.1:<port> of every member
}

// Start starts the server and waits until it accepts clients. The caller
// stops it with Shutdown followed by WaitForShutdown.
func Start(opts Options) (*server.Server, error) {
	if opts.StoreDir == "" {
		return nil, errors.New("natsembed: Options.StoreDir is required")
	}
	host := opts.Host
	if host == "" {
		host = "127.0.0.1"
	}
	port := opts.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	name := opts.Name
	if name == "" {
		name = "promoengine-embedded"
	}
	serverOpts := &server.Options{
		ServerName: name,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   opts.StoreDir,
		NoSigs:     true,
		Debug:      opts.Debug && opts.Logger != nil,
		Trace:      opts.Trace && opts.Logger != nil,
	}
	if c := opts.Cluster; c != nil {
		serverOpts.Cluster = server.ClusterOpts{Name: c.Name, Host: host, Port: c.Port}
		for _, r := range c.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("natsembed: route %q: %w", r, err)
			}
			serverOpts.Routes = append(serverOpts.Routes, u)
		}
	}
	srv, err := server.NewServer(serverOpts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: %w", err)
	}
	logger := &fatalCatcher{next: opts.Logger}
	srv.SetLogger(logger, serverOpts.Debug, serverOpts.Trace)

	// Start listens and enables JetStream before it returns; a failure of
	// either is only reported through Fatalf, after which the server would
	// never become ready.
	srv.Start()
	deadline := time.Now().Add(readyTimeout)
	for !srv.ReadyForConnections(50 * time.Millisecond) {
		if fatal := logger.fatalMessage(); fatal != "" || time.Now().After(deadline) {
			srv.Shutdown()
			srv.WaitForShutdown()
			if fatal == "" {
				fatal = fmt.Sprintf("not ready for connections after %s", readyTimeout)
			}
			return nil, fmt.Errorf("natsembed: start server on %s:%d with store %s: %s", host, opts.Port, opts.StoreDir, fatal)
		}
	}
	if !srv.JetStreamEnabled() {
		fatal := logger.fatalMessage()
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("natsembed: JetStream did not start with store %s: %s", opts.StoreDir, fatal)
	}
	return srv, nil
}

// fatalCatcher records the server's fatal errors so that Start can report
// them, and passes everything on to the caller's logger, if any. A fatal
// error reaches that logger as an error: nats-server's own loggers exit the
// process on Fatalf, which an embedded server must never do to its host.
type fatalCatcher struct {
	next  server.Logger
	mu    sync.Mutex
	fatal string
}

func (l *fatalCatcher) fatalMessage() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fatal
}

func (l *fatalCatcher) Fatalf(format string, v ...any) {
	l.mu.Lock()
	if l.fatal == "" {
		l.fatal = fmt.Sprintf(format, v...)
	}
	l.mu.Unlock()
	if l.next != nil {
		l.next.Errorf(format, v...)
	}
}

func (l *fatalCatcher) Noticef(format string, v ...any) {
	if l.next != nil {
		l.next.Noticef(format, v...)
	}
}

func (l *fatalCatcher) Warnf(format string, v ...any) {
	if l.next != nil {
		l.next.Warnf(format, v...)
	}
}

func (l *fatalCatcher) Errorf(format string, v ...any) {
	if l.next != nil {
		l.next.Errorf(format, v...)
	}
}

func (l *fatalCatcher) Debugf(format string, v ...any) {
	if l.next != nil {
		l.next.Debugf(format, v...)
	}
}

func (l *fatalCatcher) Tracef(format string, v ...any) {
	if l.next != nil {
		l.next.Tracef(format, v...)
	}
}

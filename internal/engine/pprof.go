package engine

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// startPProf serves Go's profiler (PROMO_PPROF=true) on its own listener,
// PROMO_PPROF_ADDR (default 127.0.0.1:6060), never on the API's address:
// a profile shows the process's memory (keys included) and a CPU profile or
// trace costs the process for as long as it runs, so it must not be one
// unauthenticated request away for whoever reaches the API. Binding to the
// loopback means an operator reaches it from the host or through a
// port-forward (kubectl port-forward, ssh -L).
func (e *Engine) startPProf() error {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", e.cfg.PProfAddr)
	if err != nil {
		return fmt.Errorf("listen on PROMO_PPROF_ADDR %s: %w", e.cfg.PProfAddr, err)
	}
	if host, _, err := net.SplitHostPort(ln.Addr().String()); err == nil {
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			e.log.Warn().Str("addr", ln.Addr().String()).
				Msg("PROMO_PPROF_ADDR is not a loopback address: the profiler has no authentication, keep it off networks others reach")
		}
	}
	e.pprofLn = ln
	// No write timeout: /debug/pprof/profile?seconds=30 answers after 30 s.
	e.pprof = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	go func() {
		if err := e.pprof.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.log.Error().Err(err).Msg("pprof server")
		}
	}()
	e.log.Info().Str("addr", ln.Addr().String()).Msg("profiler listening (PROMO_PPROF)")
	return nil
}

// PProfAddr is the address the profiler listens on ("" when PROMO_PPROF is
// off).
func (e *Engine) PProfAddr() string {
	if e.pprofLn == nil {
		return ""
	}
	return e.pprofLn.Addr().String()
}

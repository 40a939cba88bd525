package api

import (
	"fmt"
	"net/http"

	"github.com/promoengine/promoengine/internal/audit"
	"github.com/promoengine/promoengine/internal/identity"
	"github.com/promoengine/promoengine/pkg/rules"
)

// auditEntry is the who and where of a request for the audit trail. The
// source is the peer address as the server sees it: behind a proxy, the
// proxy's (X-Forwarded-For is whatever the client chose to send, so it is
// not trusted).
func auditEntry(r *http.Request) audit.Entry {
	who := "unauthenticated"
	if p, ok := identity.FromContext(r.Context()); ok {
		who = p.Who()
	}
	return audit.Entry{Actor: who, Source: "http " + r.RemoteAddr}
}

// applyCatalog applies a catalog with its audit entry, in one transaction.
func (s *Server) applyCatalog(r *http.Request, cat *rules.Catalog) (int64, error) {
	e := auditEntry(r)
	version, change, id, err := audit.ApplyCatalog(r.Context(), s.d.Pool, cat, e)
	if err != nil {
		return 0, err
	}
	e.Action, e.Target = audit.ActionCatalogApply, fmt.Sprintf("catalog version %d", version)
	audit.Log(s.log, id, e, change)
	return version, nil
}

// auditRefusedCatalog records a catalog refused as invalid.
func (s *Server) auditRefusedCatalog(r *http.Request, violations int) {
	if s.d.Pool == nil { // an API without a database (tests of parsing only)
		return
	}
	e := auditEntry(r)
	e.Action, e.Target, e.Outcome = audit.ActionCatalogApply, "refused catalog", audit.OutcomeFailed
	details := map[string]any{"error": "invalid catalog", "violations": violations}
	id, err := audit.Record(r.Context(), s.d.Pool, e, details)
	if err != nil {
		s.log.Error().Err(err).Msg("recording a refused catalog in the audit trail failed")
		return
	}
	audit.Log(s.log, id, e, details)
}

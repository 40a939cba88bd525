package api

import (
	"context"
	"fmt"

	"github.com/promoengine/promoengine/internal/audit"
	"github.com/promoengine/promoengine/pkg/rules"
)

// The audit entry's source is the peer address as the server sees it:
// behind a proxy, the proxy's (X-Forwarded-For is whatever the client chose
// to send, so it is not trusted).

// applyCatalog applies a catalog with its audit entry, in one transaction.
func (s *Server) applyCatalog(ctx context.Context, e audit.Entry, cat *rules.Catalog) (int64, error) {
	version, change, id, err := audit.ApplyCatalog(ctx, s.d.Pool, cat, e)
	if err != nil {
		return 0, err
	}
	e.Action, e.Target = audit.ActionCatalogApply, fmt.Sprintf("catalog version %d", version)
	audit.Log(s.log, id, e, change)
	return version, nil
}

// auditRefusedCatalog records a catalog refused as invalid.
func (s *Server) auditRefusedCatalog(ctx context.Context, e audit.Entry, violations int) {
	if s.d.Pool == nil { // an API without a database (tests of parsing only)
		return
	}
	e.Action, e.Target, e.Outcome = audit.ActionCatalogApply, "refused catalog", audit.OutcomeFailed
	details := map[string]any{"error": "invalid catalog", "violations": violations}
	id, err := audit.Record(ctx, s.d.Pool, e, details)
	if err != nil {
		s.log.Error().Err(err).Msg("recording a refused catalog in the audit trail failed")
		return
	}
	audit.Log(s.log, id, e, details)
}

package api

import (
	"net/http"
)

// quote is POST /v1/quote (Server.Quote).
func (s *Server) quote(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(w, r, maxEventBody)
	if err != nil {
		return err
	}
	res, err := s.Quote(r.Context(), body)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// ingest is POST /v1/events (Server.PublishEvent).
func (s *Server) ingest(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(w, r, maxEventBody)
	if err != nil {
		return err
	}
	p, err := s.PublishEvent(r.Context(), body)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, p)
	return nil
}

// customer is GET /v1/customers/{id} (Server.Customer).
func (s *Server) customer(w http.ResponseWriter, r *http.Request) error {
	v, err := s.Customer(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// putCatalog is PUT /v1/catalog (Server.ApplyCatalog).
func (s *Server) putCatalog(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(w, r, maxCatalogBody)
	if err != nil {
		return err
	}
	version, err := s.ApplyCatalog(r.Context(), body, "http "+r.RemoteAddr)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]int64{"version": version})
	return nil
}

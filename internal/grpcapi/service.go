package grpcapi

import (
	"context"
	"fmt"
	"math"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/promoengine/promoengine/internal/api"
	promov1 "github.com/promoengine/promoengine/pkg/promov1"
	"github.com/promoengine/promoengine/pkg/promov1/promov1connect"
)

// service implements promov1connect.PromoServiceHandler on the HTTP API's
// operations: each request is rendered as the JSON body of its HTTP route
// and handed to the same function, whose answer is read back into the
// message that mirrors it.
type service struct {
	promov1connect.UnimplementedPromoServiceHandler
	api   *api.Server
	watch *hub
}

// bodyOf renders a request as its route's JSON body, refusing it before
// rendering when it is over limit already as protobuf.
func bodyOf(m proto.Message, limit int64) ([]byte, error) {
	if int64(proto.Size(m)) > limit {
		return nil, apiError(api.CodeBodyTooLarge, fmt.Sprintf("the body is over the limit of %d bytes", limit))
	}
	return requestJSON(m)
}

func (s *service) Quote(ctx context.Context, req *connect.Request[promov1.QuoteRequest]) (*connect.Response[promov1.OrderResult], error) {
	body, err := bodyOf(req.Msg, api.MaxEventBody)
	if err != nil {
		return nil, err
	}
	res, err := s.api.Quote(ctx, body)
	if err != nil {
		return nil, err
	}
	out := &promov1.OrderResult{}
	if err := fromJSON(res, out); err != nil {
		return nil, err
	}
	return connect.NewResponse(out), nil
}

func (s *service) PublishEvent(ctx context.Context, req *connect.Request[promov1.InputEvent]) (*connect.Response[promov1.PublishEventResponse], error) {
	body, err := bodyOf(req.Msg, api.MaxEventBody)
	if err != nil {
		return nil, err
	}
	p, err := s.api.PublishEvent(ctx, body)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&promov1.PublishEventResponse{
		EventId: p.EventID, Type: p.Type, Subject: p.Subject, StreamSeq: p.StreamSeq, Duplicate: p.Duplicate,
	}), nil
}

func (s *service) GetCustomer(ctx context.Context, req *connect.Request[promov1.GetCustomerRequest]) (*connect.Response[promov1.Customer], error) {
	if req.Msg.GetCustomerId() == "" {
		return nil, &api.Error{Code: api.CodeInvalidRequest, Message: "invalid request: /customer_id: is required",
			Details: violation("/customer_id", "is required")}
	}
	v, err := s.api.Customer(ctx, req.Msg.GetCustomerId())
	if err != nil {
		return nil, err
	}
	out := &promov1.Customer{}
	if err := fromJSON(v, out); err != nil {
		return nil, err
	}
	return connect.NewResponse(out), nil
}

func (s *service) ApplyCatalog(ctx context.Context, req *connect.Request[promov1.ApplyCatalogRequest]) (*connect.Response[promov1.ApplyCatalogResponse], error) {
	version, err := s.api.ApplyCatalog(ctx, []byte(req.Msg.GetDocument()), "grpc "+req.Peer().Addr)
	if err != nil {
		return nil, err
	}
	if version > math.MaxInt32 {
		return nil, fmt.Errorf("grpcapi: catalog version %d does not fit the contract's int32", version)
	}
	return connect.NewResponse(&promov1.ApplyCatalogResponse{Version: int32(version)}), nil
}

func (s *service) WatchResults(ctx context.Context, req *connect.Request[promov1.WatchResultsRequest], stream *connect.ServerStream[promov1.OrderResult]) error {
	company, pos := req.Msg.GetCompanyId(), req.Msg.GetPosConfigId()
	if company == "" {
		return &api.Error{Code: api.CodeInvalidRequest, Message: "invalid request: /company_id: is required",
			Details: violation("/company_id", "is required")}
	}
	if err := api.AuthorizeStore(ctx, company, pos); err != nil {
		return err
	}
	// A header of the handler's own makes gRPC-Web end the stream in its
	// body rather than in headers, which flushHeaders sends early.
	stream.ResponseHeader().Set("Promo-Watch", "company="+company+";pos_config="+pos)
	return s.watch.serve(ctx, store{company: company, pos: pos}, func() { flushHeaders(ctx) }, stream.Send)
}

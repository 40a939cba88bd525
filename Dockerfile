# The promoengine image: one static binary on a small base.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/promoengine ./cmd/promoengine

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/promoengine /usr/local/bin/promoengine
COPY examples/catalog.yaml /etc/promoengine/catalog.yaml
USER nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/promoengine"]
CMD ["run"]

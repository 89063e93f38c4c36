# syntax=docker/dockerfile:1
# One image for every llmo service: a static binary on distroless, non-root.
# Build:  docker build -t llmo .
# Run:    docker run -p 8000:8000 -v $PWD/models:/models llmo serve model --host 0.0.0.0 --port 8000 --model /models/x.gguf
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/llmo/llmo/internal/buildinfo.Version=${VERSION}" \
      -o /out/llmo ./cmd/llmo

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/llmo /usr/local/bin/llmo
USER nonroot:nonroot
ENV LLMO_HOST=0.0.0.0 LOG_FORMAT=json
EXPOSE 8000 8001 8002 8003 8080
# distroless has no curl: the binary probes itself. Compose overrides the URL
# per service.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["/usr/local/bin/llmo", "healthcheck", "http://127.0.0.1:8000/ready"]
ENTRYPOINT ["/usr/local/bin/llmo"]
CMD ["serve", "gateway"]

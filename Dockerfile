# eventrelay consumer image: a static binary on a distroless base, numeric
# non-root user, no shell. `make image` builds the same image without a
# Docker engine (tools/mkimage) as an OCI tarball.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
ARG DATE=unknown
RUN CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT} -X main.buildDate=${DATE}" \
    -o /out/consumer ./cmd/consumer

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG COMMIT=unknown
ARG DATE=unknown
LABEL org.opencontainers.image.title="eventrelay" \
      org.opencontainers.image.description="Moves vendor event exports into Kafka" \
      org.opencontainers.image.source="https://github.com/eventrelay/eventrelay" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.created="${DATE}"
COPY --from=build /out/consumer /consumer
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/consumer"]

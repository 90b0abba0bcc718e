# syntax=docker/dockerfile:1
#
# oauthd container image: a static binary on distroless, running as nonroot.
#
#   docker build -t oauthd .
#   docker run -p 8080:8080 -p 127.0.0.1:8081:8081 -v oauthd-data:/var/lib/oauthd/data oauthd
#
# The data directory must be writable by nonroot (uid 65532): mount a named
# volume at /var/lib/oauthd/data (it inherits the ownership set below), or a
# host directory owned by 65532. See docs/operations.md.

# go.mod's go line is 1.26.x; the golang:1.26 image is the newest 1.26 patch.
ARG GO_IMAGE=golang:1.26

FROM ${GO_IMAGE} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/oauthd ./cmd/oauthd
# The data directory, created here because the final image has no shell.
RUN mkdir -p /out/var/lib/oauthd/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/oauthd /oauthd
COPY --from=build --chown=65532:65532 /out/var/lib/oauthd /var/lib/oauthd
WORKDIR /var/lib/oauthd
ENV OAUTHD_DATA_DIR=/var/lib/oauthd/data \
    OAUTHD_DSN=sqlite:///var/lib/oauthd/data/oauthd.db \
    OAUTHD_ADDR=:8080 \
    OAUTHD_ADMIN_ADDR=:8081
# The generated secret, admin token and SQLite database live here.
VOLUME ["/var/lib/oauthd/data"]
# 8080: public listener. 8081: admin API and /metrics; publish it on a
# loopback or private address only (e.g. -p 127.0.0.1:8081:8081).
EXPOSE 8080 8081
USER nonroot
ENTRYPOINT ["/oauthd"]
CMD ["serve"]

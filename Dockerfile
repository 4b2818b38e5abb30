# syntax=docker/dockerfile:1
# The qbo-sync image: built with cargo alone (protoc is vendored), run as a non-root user
# from a slim runtime holding the binary and nothing else of ours. TLS roots are compiled in
# (webpki roots through rustls), so the runtime needs no CA bundle.
#
#   docker build -t qbo-sync:0.1.0 .
#
# RUNTIME_IMAGE may name a distroless image with glibc (the "cc" flavour, Debian 13) instead;
# the binary needs only glibc and libgcc_s.

ARG RUST_IMAGE=rust:1.95-slim-trixie
ARG RUNTIME_IMAGE=debian:trixie-slim

FROM ${RUST_IMAGE} AS builder
WORKDIR /src
COPY . .
# Caches keep downloaded crates and compiled dependencies between builds. No default
# features: dev mode (and the QBO simulator it embeds) stays out of the production binary.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --no-default-features --bin qbo-sync \
    && install -D -m 0755 target/release/qbo-sync /out/qbo-sync

FROM ${RUNTIME_IMAGE}
COPY --from=builder /out/qbo-sync /usr/local/bin/qbo-sync
# The chart runs it with the same ids (runAsUser/runAsGroup 65532) and a read-only root.
USER 65532:65532
# gRPC, then HTTP (metrics, probes, webhooks).
EXPOSE 50051 9090
ENTRYPOINT ["/usr/local/bin/qbo-sync"]
CMD ["serve"]

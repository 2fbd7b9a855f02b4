# The Sprijin relay as a container image.
#
#   docker build -t sprijin-relay .
#   docker run -d --name sprijin-relay -p 7420:7420/udp \
#     -v sprijin-relay:/var/lib/sprijin-relay sprijin-relay
#   docker logs sprijin-relay     # first line: listening on ... fingerprint sha256:...
#
# Settings: SPRIJIN_RELAY_* variables (LISTEN, DATA_DIR, METRICS, CONFIG),
# flags after the image name, or a config file mounted and named with
# SPRIJIN_RELAY_CONFIG. The volume holds the relay's identity: keep it, or
# every agent's pinned fingerprint stops matching.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p sprijin-relay --bin sprijin-relay \
 && mkdir -p /out/data \
 && cp target/release/sprijin-relay /out/

# glibc and nothing else: no shell, no package manager; runs as uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/sprijin-relay /usr/bin/sprijin-relay
COPY --from=build --chown=65532:65532 /out/data /var/lib/sprijin-relay
USER 65532:65532
ENV SPRIJIN_RELAY_LISTEN=0.0.0.0:7420 \
    SPRIJIN_RELAY_DATA_DIR=/var/lib/sprijin-relay \
    RUST_LOG=info
VOLUME ["/var/lib/sprijin-relay"]
# QUIC; add 9420/tcp when SPRIJIN_RELAY_METRICS=0.0.0.0:9420 is set.
EXPOSE 7420/udp
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/sprijin-relay"]

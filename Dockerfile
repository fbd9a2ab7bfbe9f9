# collab-server in a container: built from this checkout by the Rust image,
# run on Debian slim as a user without privileges. The flags are the ones
# .ci/run's demos use (plus --host 0.0.0.0, as a container must listen
# beyond its loopback); server/tests/cli.rs parses them with the server's
# own command line, so they cannot name a flag it does not take.
#
#   docker build -t collab-server .
#   docker run --rm -p 8000:8000 collab-server
#
# Settings: any flag after the image name, or its environment variable
# (README.md, "Server settings"), e.g. -e REDIS_URL=redis://host:6379/0.

FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p collab-server \
 && cp target/release/collab-server /collab-server

FROM debian:bookworm-slim
# curl only for the health check.
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin collab
COPY --from=build /collab-server /usr/local/bin/collab-server
USER collab
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8000/health"]
ENTRYPOINT ["collab-server"]
CMD ["--host", "0.0.0.0", "--port", "8000"]

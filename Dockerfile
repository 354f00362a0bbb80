# mining-exporter container: build with cargo, run as a non-root user on a slim base.
#   docker build -t mining-exporter .
#   docker run -v $PWD/config.toml:/etc/mining-exporter/config.toml:ro \
#     -v $PWD/up_api_key:/run/secrets/up_api_key:ro -p 9898:9898 mining-exporter
# The config must listen on 0.0.0.0 to be reachable from outside the container, and names
# its tokens with token_file (mounted secrets) or token_env.

FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
# The demo compiles the example config in (include_str!), and Cargo.toml declares the
# benchmark target, so both must be present to build. tests/integration/deploy.rs checks
# that every file the build reads is copied here.
COPY config.example.toml ./
COPY benches ./benches
# The context has no .git: build.rs stamps this revision on build_info and --version.
#   docker build --build-arg MINING_EXPORTER_REVISION=$(git rev-parse --short=12 HEAD) .
ARG MINING_EXPORTER_REVISION=unknown
ENV MINING_EXPORTER_REVISION=${MINING_EXPORTER_REVISION}
# The profile what ships is built with: fat LTO, one codegen unit (Cargo.toml).
RUN cargo build --profile dist --locked --bin mining-exporter

FROM debian:bookworm-slim
# The pools are reached over HTTPS and verified against the system's CA roots.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin mining-exporter \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/mining-exporter
COPY --from=build /src/target/dist/mining-exporter /usr/local/bin/mining-exporter
USER 10001:10001
EXPOSE 9898
ENTRYPOINT ["/usr/local/bin/mining-exporter"]
# Budgets and learned poll costs survive a restart here; mount a volume on it to keep them
# across containers.
VOLUME /var/lib/mining-exporter
CMD ["run", "--config", "/etc/mining-exporter/config.toml", "--state-dir", "/var/lib/mining-exporter"]

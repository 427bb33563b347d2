# Both binaries, built fully static, shipped alone in an empty image: no shell, no package
# manager, no libc, no CA store (the tool carries its TLS roots; --ca-cert adds a private CA).
#   /infisical-materializer          the per-pod tool (the ENTRYPOINT)
#   /infisical-materializer-webhook  the admission webhook (deploy/webhook/ runs it as command)
# tests/static_image.rs runs exactly what the final stage contains, in a chroot.
#
# Builds for the builder's own architecture (amd64 or arm64); .github/workflows/release.yml
# builds both with buildx.

FROM rust:1.95.0-slim-bookworm AS build
# Set by BuildKit; the fallback is the build machine's own architecture.
ARG TARGETARCH
# The release build: the same flags as `make static` and CI.
ENV RUSTFLAGS="-C target-feature=+crt-static"
WORKDIR /src
RUN arch="${TARGETARCH:-$(dpkg --print-architecture)}"; \
    case "$arch" in \
      amd64) echo x86_64-unknown-linux-gnu > /rust-target ;; \
      arm64) echo aarch64-unknown-linux-gnu > /rust-target ;; \
      *) echo "unsupported architecture: $arch (amd64 or arm64)" >&2; exit 1 ;; \
    esac

# Dependency cache: the manifests and the lock file with empty sources, so that a change of
# the sources rebuilds only the workspace's own crates.
COPY Cargo.toml Cargo.lock ./
COPY webhook/Cargo.toml webhook/
COPY tests/fake-infisical/Cargo.toml tests/fake-infisical/
RUN mkdir -p src webhook/src tests/fake-infisical/src/bin \
    && touch src/lib.rs webhook/src/lib.rs tests/fake-infisical/src/lib.rs \
    && echo 'fn main() {}' > src/main.rs \
    && echo 'fn main() {}' > webhook/src/main.rs \
    && echo 'fn main() {}' > tests/fake-infisical/src/bin/fake-infisical.rs \
    && cargo build --locked --release --target "$(cat /rust-target)" \
      -p infisical-materializer -p infisical-materializer-webhook \
    && rm -rf src webhook/src tests/fake-infisical/src

COPY . .
# COPY keeps the files' own times, which may be older than the empty sources built above:
# touch them so cargo rebuilds the workspace's crates.
RUN touch src/lib.rs src/main.rs webhook/src/lib.rs webhook/src/main.rs \
    && cargo build --locked --release --target "$(cat /rust-target)" \
      -p infisical-materializer -p infisical-materializer-webhook \
    && mkdir /out \
    && cp "target/$(cat /rust-target)/release/infisical-materializer" \
      "target/$(cat /rust-target)/release/infisical-materializer-webhook" /out/

FROM scratch
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="infisical-materializer" \
      org.opencontainers.image.description="Materializes Infisical secrets inside a Kubernetes pod (init, sidecar, exec), and the admission webhook that injects it" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/infisical-materializer /infisical-materializer
COPY --from=build /out/infisical-materializer-webhook /infisical-materializer-webhook
# The distroless "nonroot" user; the injected containers run as the same ids.
USER 65532:65532
ENTRYPOINT ["/infisical-materializer"]
CMD ["--help"]

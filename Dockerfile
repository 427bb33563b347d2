# syntax=docker/dockerfile:1
# Build a fully static binary, then ship it alone in an empty image: no shell, no package
# manager, no libc, no CA store (the binary carries its TLS roots; --ca-cert adds a private CA).
# tests/static_image.rs runs exactly what the final stage contains, in a chroot.

FROM rust:1.95.0-slim-bookworm AS build
WORKDIR /src
COPY . .
# The release build: the same command as `make static` and CI.
RUN RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --target x86_64-unknown-linux-gnu

FROM scratch
COPY --from=build /src/target/x86_64-unknown-linux-gnu/release/infisical-materializer /infisical-materializer
# The distroless "nonroot" user; the examples' securityContext runs as the same ids.
USER 65532:65532
ENTRYPOINT ["/infisical-materializer"]
CMD ["--help"]

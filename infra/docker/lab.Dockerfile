# The lab's images for an engine that can pull (the book's chapter 5 pattern): build in one
# stage, run in a small one, and order every stage so that what changes least comes first: a
# code-only change reuses the dependency layers and rebuilds only the last ones.
#
#   docker build -f infra/docker/lab.Dockerfile --target lab        -t lab/lab:0.1.0 .
#   docker build -f infra/docker/lab.Dockerfile --target recipe-api -t lab/recipe-api:0.1.0 .
#   docker build -f infra/docker/lab.Dockerfile --target web-api    -t lab/web-api:0.1.0 .
#
# HAProxy needs no Dockerfile where images can be pulled: `haproxy:2.6` runs the haproxy.cfg
# lab renders. On a machine without a registry (this project's CI), `lab images build` makes
# the same images from the host's binary instead; the `prebuilt` stage is that path as a
# Dockerfile: a context holding `rootfs/lab` and `rootfs/<its libraries>` (what `ldd` lists).
#
#   docker build -f infra/docker/lab.Dockerfile --target prebuilt -t lab/lab:0.1.0 CONTEXT

# --- from a binary built on the host (no pull): first, so `--target prebuilt` builds nothing else
FROM scratch AS prebuilt
COPY rootfs/ /
ENTRYPOINT ["/lab"]

# --- dependencies: their layer changes only when a manifest or Cargo.lock does
FROM rust:1.95-bookworm AS skeleton
WORKDIR /src
COPY . .
RUN sh infra/docker/skeleton.sh /skeleton

FROM rust:1.95-bookworm AS deps
WORKDIR /src
COPY --from=skeleton /skeleton ./
RUN cargo build --release --locked --bin lab

# --- the code: the only layers a code change rebuilds
FROM deps AS build
COPY . .
# The stubs were built after these files were written: make cargo see them as newer.
RUN find . -path ./target -prune -o -name '*.rs' -exec touch {} + \
    && cargo build --release --locked --bin lab \
    && strip target/release/lab

# --- what runs: glibc and libgcc from distroless, the binary on top
FROM gcr.io/distroless/cc-debian12 AS lab
COPY --from=build /src/target/release/lab /lab
ENTRYPOINT ["/lab"]

FROM lab AS recipe-api
ENV HOST=0.0.0.0 PORT=4000
EXPOSE 4000
ENTRYPOINT ["/lab", "serve", "recipe-api"]

FROM lab AS web-api
ENV HOST=0.0.0.0 PORT=3000
EXPOSE 3000
ENTRYPOINT ["/lab", "serve", "web-api"]

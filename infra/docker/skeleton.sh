#!/bin/sh
# Copy the workspace's skeleton from the current folder to $1: every manifest, the lock file,
# build scripts and the contract files they compile, and an empty stub for every other Rust
# source (`fn main() {}` where cargo expects a main). Building the skeleton compiles every
# dependency; its layer changes only when the manifests do (what cargo-chef does).
set -eu
out="$1"
mkdir -p "$out"
find . -path ./target -prune -o \( -name Cargo.toml -o -name Cargo.lock -o -name build.rs -o -path '*/contracts/*' \) -type f -print |
    while read -r f; do mkdir -p "$out/$(dirname "$f")"; cp "$f" "$out/$f"; done
find . -path ./target -prune -o -name '*.rs' ! -name build.rs -type f -print |
    while read -r f; do
        mkdir -p "$out/$(dirname "$f")"
        case "$f" in
            */main.rs | ./tests/* | */tests/* | */examples/* | */benches/*) echo 'fn main() {}' > "$out/$f" ;;
            *) : > "$out/$f" ;;
        esac
    done

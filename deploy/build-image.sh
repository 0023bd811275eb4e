#!/usr/bin/env bash
# Builds the acemux container image: a static x86_64-unknown-linux-musl
# binary (the target is listed in rust-toolchain.toml) copied into
# deploy/image/, then `podman build` (or `docker build`, with
# ACEMUX_IMAGE_TOOL=docker) of deploy/Containerfile on that context.
#
# usage: deploy/build-image.sh [TAG]        (default tag: acemux:latest)
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-acemux:latest}
tool=${ACEMUX_IMAGE_TOOL:-podman}
target=x86_64-unknown-linux-musl
# `cargo install` (what an operator would run), into a scratch root; the
# target directory is kept so a rebuild is incremental.
# wasmtime compiles a little C: with musl's gcc wrapper (Debian: musl-tools).
command -v musl-gcc >/dev/null || { echo "needs musl-gcc: apt-get install musl-tools" >&2; exit 1; }
export CC_x86_64_unknown_linux_musl=${CC_x86_64_unknown_linux_musl:-musl-gcc}
# rust-toolchain.toml lists the target, but rustup adds listed targets only
# when it installs the toolchain itself; a linked or preinstalled one has
# none.
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$target"; then
    echo "the $target target is not installed: rustup target add $target" >&2
    rustup target add "$target"
fi
root=$(mktemp -d)
trap 'rm -rf "$root" deploy/image/acemux' EXIT
CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target} cargo install --path host --locked --target "$target" --root "$root"
binary="$root/bin/acemux"
if readelf -l "$binary" | grep -q "program interpreter"; then
    echo "$binary is dynamically linked; the image has no libc" >&2
    exit 1
fi
"$binary" --version
# The release profile keeps line tables for backtraces; the image needs none.
strip "$binary"
cp "$binary" deploy/image/acemux
# Docker format: OCI images drop HEALTHCHECK.
format=(); [ "$tool" = podman ] && format=(--format docker)
"$tool" build "${format[@]}" -f deploy/Containerfile -t "$tag" deploy/image
"$tool" image inspect "$tag" --format '{{.Size}}' | awk -v tag="$tag" '{printf "%s: %.1f MB\n", tag, $1 / 1e6}'

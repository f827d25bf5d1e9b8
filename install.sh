#!/bin/sh
# Installs a prebuilt labrun from the project's releases:
#
#   curl -fsSL "$LABRUN_REPO/raw/main/install.sh" | sh      (LABRUN_REPO as set below)
#
# Environment:
#   LABRUN_VERSION       version to install (0.1.0 or v0.1.0); default: the latest release
#   LABRUN_INSTALL_DIR   where the binary goes; default: ~/.local/bin
#   LABRUN_TARGET        Rust target triple of the archive; default: detected from uname
#   LABRUN_REPO          where the releases are (below); file:// works, for a local mirror
#
# It downloads labrun-VERSION-TARGET.tar.gz (.zip on Windows) and its .sha256, refuses an
# archive whose checksum differs, and installs the binary. POSIX sh: the project's CI checks it
# with `sh -n` and ShellCheck.

# The one place that names the repository (a placeholder until the project has a public home).
LABRUN_REPO="${LABRUN_REPO:-https://example.invalid/labrun}"

set -eu

say() {
    printf 'labrun-install: %s\n' "$*" >&2
}

die() {
    say "error: $*"
    exit 1
}

need() {
    command -v "$1" >/dev/null 2>&1 || die "this installer needs \`$1\`"
}

# download URL FILE
download() {
    if command -v curl >/dev/null 2>&1; then
        curl --proto '=https,file' --tlsv1.2 -fsSL "$1" -o "$2" || die "cannot download $1"
    elif command -v wget >/dev/null 2>&1; then
        wget -q -O "$2" "$1" || die "cannot download $1"
    else
        die "this installer needs curl or wget"
    fi
}

# The version a `releases/latest` page redirects to (GitHub answers with .../tag/vX.Y.Z).
latest_version() {
    if command -v curl >/dev/null 2>&1; then
        url=$(curl --proto '=https' --tlsv1.2 -fsSLI -o /dev/null -w '%{url_effective}' "$LABRUN_REPO/releases/latest") ||
            die "cannot find the latest release at $LABRUN_REPO/releases/latest (set LABRUN_VERSION)"
    else
        url=$(wget -q -S --spider "$LABRUN_REPO/releases/latest" 2>&1 | sed -n 's/^ *[Ll]ocation: *//p' | tail -n 1 | tr -d '\r') ||
            die "cannot find the latest release (set LABRUN_VERSION)"
    fi
    tag=${url##*/}
    case "$tag" in
        v[0-9]*) printf '%s\n' "${tag#v}" ;;
        *) die "cannot tell the latest version from $url (set LABRUN_VERSION)" ;;
    esac
}

detect_target() {
    os=$(uname -s)
    arch=$(uname -m)
    case "$os" in
        Linux)
            case "$arch" in
                x86_64 | amd64)
                    # musl systems (Alpine) get the static build; glibc ones the gnu build.
                    if ldd --version 2>&1 | grep -qi musl || ls /lib/ld-musl-* >/dev/null 2>&1; then
                        echo x86_64-unknown-linux-musl
                    else
                        echo x86_64-unknown-linux-gnu
                    fi
                    ;;
                aarch64 | arm64) echo aarch64-unknown-linux-gnu ;;
                *) die "no prebuilt labrun for Linux on $arch (try: cargo install labrun)" ;;
            esac
            ;;
        Darwin)
            # A shell under Rosetta reports x86_64 on Apple silicon: take the native build.
            if [ "$arch" = x86_64 ] && [ "$(sysctl -n sysctl.proc_translated 2>/dev/null || echo 0)" = 1 ]; then
                arch=arm64
            fi
            case "$arch" in
                x86_64) echo x86_64-apple-darwin ;;
                arm64 | aarch64) echo aarch64-apple-darwin ;;
                *) die "no prebuilt labrun for macOS on $arch" ;;
            esac
            ;;
        MINGW* | MSYS* | CYGWIN* | Windows_NT)
            case "$arch" in
                x86_64 | amd64) echo x86_64-pc-windows-msvc ;;
                *) die "no prebuilt labrun for Windows on $arch" ;;
            esac
            ;;
        *) die "no prebuilt labrun for $os (try: cargo install labrun)" ;;
    esac
}

# sha256 FILE: prints the hex digest.
sha256() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d ' ' -f 1
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 "$1" | cut -d ' ' -f 1
    elif command -v openssl >/dev/null 2>&1; then
        openssl dgst -sha256 "$1" | sed 's/^.*= *//'
    else
        die "this installer needs sha256sum, shasum or openssl to verify the download"
    fi
}

main() {
    need uname
    need mkdir
    need tar
    target="${LABRUN_TARGET:-$(detect_target)}"
    version="${LABRUN_VERSION:-}"
    if [ -z "$version" ] || [ "$version" = latest ]; then
        version=$(latest_version)
    fi
    version=${version#v}
    install_dir="${LABRUN_INSTALL_DIR:-$HOME/.local/bin}"

    case "$target" in
        *windows*) ext=zip exe=.exe ;;
        *) ext=tar.gz exe= ;;
    esac
    name="labrun-$version-$target"
    url="$LABRUN_REPO/releases/download/v$version/$name.$ext"

    tmp=$(mktemp -d 2>/dev/null || mktemp -d -t labrun)
    trap 'rm -rf "$tmp"' EXIT INT TERM

    say "downloading $url"
    download "$url" "$tmp/$name.$ext"
    download "$url.sha256" "$tmp/$name.$ext.sha256"

    expected=$(cut -d ' ' -f 1 <"$tmp/$name.$ext.sha256" | tr -d '\r\n' | tr 'A-F' 'a-f')
    actual=$(sha256 "$tmp/$name.$ext")
    if [ -z "$expected" ] || [ "$expected" != "$actual" ]; then
        die "checksum mismatch for $name.$ext: expected ${expected:-nothing}, got $actual"
    fi
    say "sha256 verified: $actual"

    if [ "$ext" = zip ]; then
        need unzip
        unzip -q "$tmp/$name.$ext" -d "$tmp"
    else
        tar -xzf "$tmp/$name.$ext" -C "$tmp"
    fi
    bin="$tmp/$name/labrun$exe"
    [ -f "$bin" ] || die "the archive has no $name/labrun$exe"

    mkdir -p "$install_dir"
    # Copy beside the target, then rename: a running labrun is never half-overwritten.
    cp "$bin" "$install_dir/.labrun$exe.new"
    chmod 755 "$install_dir/.labrun$exe.new"
    mv -f "$install_dir/.labrun$exe.new" "$install_dir/labrun$exe"
    say "installed labrun $version ($target) to $install_dir/labrun$exe"
    "$install_dir/labrun$exe" --version >&2 || say "warning: the installed labrun does not run here"

    case ":$PATH:" in
        *":$install_dir:"*) ;;
        *) say "$install_dir is not on PATH; add it, e.g. export PATH=\"$install_dir:\$PATH\"" ;;
    esac
}

# Everything runs from here, so a download cut short never runs half a script.
main "$@"

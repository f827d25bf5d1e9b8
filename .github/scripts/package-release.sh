#!/bin/sh
# package-release.sh VERSION TARGET BINARY OUTDIR
#
# Packs one release build the way install.sh, the GitHub Action and `cargo binstall` (the
# [package.metadata.binstall] names in Cargo.toml) expect it:
#
#   OUTDIR/labrun-VERSION-TARGET.tar.gz        (.zip for a Windows target)
#     labrun-VERSION-TARGET/labrun             (labrun.exe on Windows)
#     labrun-VERSION-TARGET/README.md
#   OUTDIR/labrun-VERSION-TARGET.tar.gz.sha256 ("HEX  NAME", as sha256sum writes it)
#
# .github/workflows/release.yml runs it for every target; tests/cli/kit.rs installs its output
# with install.sh.
set -eu

if [ "$#" -ne 4 ]; then
    echo "usage: $0 VERSION TARGET BINARY OUTDIR" >&2
    exit 2
fi
version=${1#v}
target=$2
binary=$3
outdir=$4
root=$(cd "$(dirname "$0")/../.." && pwd)

[ -f "$binary" ] || { echo "package-release: no binary at $binary" >&2; exit 1; }
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)

name="labrun-$version-$target"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT INT TERM
mkdir "$stage/$name"
case "$target" in
    *windows*) exe=labrun.exe ext=zip ;;
    *) exe=labrun ext=tar.gz ;;
esac
cp "$binary" "$stage/$name/$exe"
chmod 755 "$stage/$name/$exe"
cp "$root/README.md" "$stage/$name/README.md"

archive="$name.$ext"
if [ "$ext" = zip ]; then
    if command -v 7z >/dev/null 2>&1; then
        (cd "$stage" && 7z a -tzip -bso0 -bsp0 "$outdir/$archive" "$name")
    else
        (cd "$stage" && zip -qr "$outdir/$archive" "$name")
    fi
else
    tar -czf "$outdir/$archive" -C "$stage" "$name"
fi

if command -v sha256sum >/dev/null 2>&1; then
    (cd "$outdir" && sha256sum "$archive" >"$archive.sha256")
else
    (cd "$outdir" && shasum -a 256 "$archive" >"$archive.sha256")
fi
echo "$outdir/$archive"
echo "$outdir/$archive.sha256"

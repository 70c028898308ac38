#!/usr/bin/env bash
# Build an MPI test image as an OCI layout, offline, from this machine's
# own Debian packages: Open MPI (mpirun, orted, its plugins, help texts and
# configuration, PMIx) with every shared library they load, busybox-static
# for the shell and its tools, and the programs given (e.g. shoal-osu) with
# their libraries. The image's Open MPI is the host's Debian build, so
# programs built against it here run in it.
#
#   scripts/make-mpi-image.sh OUT_LAYOUT TAG [PROGRAM...]
#
# Programs land in /usr/local/bin. Push it with
#   skopeo copy --dest-tls-verify=false oci:OUT_LAYOUT:TAG docker://HOST:PORT/REPO:TAG
set -euo pipefail
out=$1
tag=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"
lib=/usr/lib/x86_64-linux-gnu
for need in /usr/bin/orterun /usr/bin/orted "$lib/openmpi" /bin/busybox; do
    [ -e "$need" ] || { echo "make-mpi-image: $need is missing (apt-get install openmpi-bin busybox-static)" >&2; exit 1; }
done
# Copy host paths into the root at the same paths (links followed).
copy() {
    local rel=()
    for p in "$@"; do
        [ -e "$p" ] && rel+=("${p#/}")
    done
    [ ${#rel[@]} -gt 0 ] && tar -C / -chf - "${rel[@]}" | tar -C "$root" -xf -
    return 0
}
# Open MPI's and PMIx's trees, data and configuration.
copy "$lib/openmpi" "$lib/pmix2" /usr/share/openmpi /usr/share/pmix /etc/openmpi
mkdir -p "$root/usr/bin" "$root/usr/local/bin" "$root/etc" "$root/tmp" "$root/work"
ln -s usr/bin "$root/bin"
cp -L /usr/bin/orterun "$root/usr/bin/orterun"
ln -s orterun "$root/usr/bin/mpirun"
ln -s orterun "$root/usr/bin/mpiexec"
cp -L /usr/bin/orted "$root/usr/bin/orted"
for p in "$@"; do
    cp -L "$p" "$root/usr/local/bin/"
done
# Every shared library anything here loads (plugins included), with the
# dynamic loader, copied to its path.
objects=$(find "$root" -type f \( -perm -u+x -o -name '*.so*' \))
libs=$(for o in $objects; do ldd "$o" 2>/dev/null; done |
    awk '/=> \//{print $3} /^[[:space:]]*\/lib/{print $1}' | sort -u)
# Debian's merged /usr: /lib, /lib64 and /bin are links into /usr.
mkdir -p "$root/usr/lib" "$root/usr/lib64"
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"
# shellcheck disable=SC2086
copy $(for l in $libs /lib64/ld-linux-x86-64.so.2; do readlink -f "$l"; echo "$l"; done | sed 's#^/lib#/usr/lib#' | sort -u)
# The shell and its tools, and the users, from the plain test image's recipe.
cp /bin/busybox "$root/usr/bin/busybox"
for app in sh cat df echo env id ls pwd sleep true false grep hostname head wc stat mkdir rm; do
    [ -e "$root/usr/bin/$app" ] || ln -s busybox "$root/usr/bin/$app"
done
cat > "$root/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
runner:x:1000:1000:runner:/work:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/sh
P
printf 'root:x:0:\nrunner:x:1000:\nnogroup:x:65534:\n' > "$root/etc/group"
echo "only in the MPI image ($tag)" > "$root/shoal-image-marker"
chmod 1777 "$root/tmp"
SHOAL_IMAGE_ROOT=$root "$here/make-test-image.sh" "$out" "$tag"

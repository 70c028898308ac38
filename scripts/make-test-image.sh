#!/usr/bin/env bash
# Build Shoal's test image as an OCI layout, offline, from Debian's
# busybox-static: one layer holding /bin/busybox (with sh, cat, df, ... as
# links), /etc/passwd and /etc/group (root, nobody and a user "runner"),
# and a file only the image has (/shoal-image-marker). Reproducible: the
# same inputs give the same digests.
#
#   scripts/make-test-image.sh OUT_LAYOUT TAG [EXTRA_MIB]
#
# EXTRA_MIB adds a file of that many MiB (to give images a size, for the
# cache tests). Push it with:
#   skopeo copy --dest-tls-verify=false oci:OUT_LAYOUT:TAG docker://HOST:PORT/REPO:TAG
set -euo pipefail
out=$1
tag=$2
extra=${3:-0}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -n "${SHOAL_IMAGE_ROOT:-}" ]; then
    # A root made by the caller (scripts/make-mpi-image.sh).
    root=$SHOAL_IMAGE_ROOT
else
    busybox=/bin/busybox
    if ! "$busybox" --help >/dev/null 2>&1 || ldd "$busybox" >/dev/null 2>&1; then
        echo "make-test-image: a static $busybox is needed (apt-get install busybox-static)" >&2
        exit 1
    fi
    root=$work/root
    mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/work" "$root/proc" "$root/sys" "$root/dev"
    cp "$busybox" "$root/bin/busybox"
    for app in sh cat df echo env id ls pwd sleep usleep true false grep mount stat wc head nc; do
        ln -s busybox "$root/bin/$app"
    done
    cat > "$root/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
runner:x:1000:1000:runner:/work:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/sh
P
    cat > "$root/etc/group" <<'G'
root:x:0:
runner:x:1000:
nogroup:x:65534:
G
    echo "only in the image ($tag)" > "$root/shoal-image-marker"
    if [ "$extra" -gt 0 ]; then
        head -c "$((extra * 1048576))" /dev/urandom > "$root/extra"
    fi
    chmod 1777 "$root/tmp"
fi
mkdir -p "$out/blobs/sha256"
printf '{"imageLayoutVersion":"1.0.0"}' > "$out/oci-layout"
put() {
    local d
    d=$(sha256sum "$1" | cut -d' ' -f1)
    mv "$1" "$out/blobs/sha256/$d"
    echo "$d"
}
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$root" -cf "$work/layer.tar" .
diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
gzip -n -1 "$work/layer.tar"
layer_size=$(stat -c %s "$work/layer.tar.gz")
layer=$(put "$work/layer.tar.gz")
cat > "$work/config.json" <<J
{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/bin:/usr/bin:/bin","SHOAL_IMAGE=$tag","FOO=image"],"Entrypoint":[],"Cmd":["/bin/sh"],"WorkingDir":"/work"},"rootfs":{"type":"layers","diff_ids":["sha256:$diff_id"]}}
J
config_size=$(stat -c %s "$work/config.json")
config=$(put "$work/config.json")
cat > "$work/manifest.json" <<J
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$config","size":$config_size},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:$layer","size":$layer_size}]}
J
manifest_size=$(stat -c %s "$work/manifest.json")
manifest=$(put "$work/manifest.json")
cat > "$out/index.json" <<J
{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:$manifest","size":$manifest_size,"annotations":{"org.opencontainers.image.ref.name":"$tag"}}]}
J
echo "layer sha256:$layer"

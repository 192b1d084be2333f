#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Install the Debian packages kvmx needs to build and to run its test hosts,
# and only those that are missing.  Usage: scripts/deps.sh [build|testhost|bench|all]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/kernel-lines.sh

what=${1:-all}

build_pkgs=(build-essential cmake libgtest-dev python3 python3-pytest mypy sparse
	    kmod xz-utils zstd cpio git clang libclang-rt-14-dev)
testhost_pkgs=(qemu-system-x86 busybox-static cpio
	       bochs bochsbios vgabios bochs-term isolinux syslinux-common genisoimage)
# make bench draws its chart on the build machine, never in a test host.
bench_pkgs=(python3-matplotlib)

apt_ready=0
apt_refresh() {
	if [ "$apt_ready" = 0 ]; then
		echo "deps: apt-get update" >&2
		apt-get update -q >/dev/null
		apt_ready=1
	fi
}

# Ask apt which concrete kernel release each LTS meta-package points at today.
resolve_release() {
	local meta=$1 rel
	rel=$(apt-cache depends "$meta" 2>/dev/null | sed -n 's/^ *Depends: linux-image-\(.*\)$/\1/p' | head -n1)
	if [ -z "$rel" ]; then
		apt_refresh
		rel=$(apt-cache depends "$meta" | sed -n 's/^ *Depends: linux-image-\(.*\)$/\1/p' | head -n1)
	fi
	[ -n "$rel" ] || { echo "deps: cannot resolve $meta" >&2; exit 2; }
	echo "$rel"
}

pkgs=()
case "$what" in
build) pkgs+=("${build_pkgs[@]}") ;;
testhost) pkgs+=("${testhost_pkgs[@]}") ;;
bench) pkgs+=("${build_pkgs[@]}" "${testhost_pkgs[@]}" "${bench_pkgs[@]}") ;;
all) pkgs+=("${build_pkgs[@]}" "${testhost_pkgs[@]}" "${bench_pkgs[@]}") ;;
*) echo "usage: $0 [build|testhost|bench|all]" >&2; exit 2 ;;
esac
if [ "$what" != testhost ]; then
	for line in "${KERNEL_LINES[@]}"; do
		pkgs+=("linux-headers-$(resolve_release "$(kernel_meta "$line")")")
	done
fi

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; then
	apt_refresh
	apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

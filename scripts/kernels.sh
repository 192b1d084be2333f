#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Unpack each target kernel's Debian image package into build/kernels/<line>/
# (vmlinuz + modules) for the test hosts.  Nothing is installed on the build
# machine: the package is fetched by name with apt-get download and unpacked.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/kernel-lines.sh

lines=("$@")
[ ${#lines[@]} -gt 0 ] || lines=("${KERNEL_LINES[@]}")

for line in "${lines[@]}"; do
	meta=$(kernel_meta "$line")
	rel=$(apt-cache depends "$meta" | sed -n 's/^ *Depends: linux-image-\(.*\)$/\1/p' | head -n1)
	[ -n "$rel" ] || { echo "kernels: cannot resolve $meta (run scripts/deps.sh)" >&2; exit 2; }
	dir=build/kernels/$line
	if [ -f "$dir/release" ] && [ "$(cat "$dir/release")" = "$rel" ] && [ -f "$dir/vmlinuz" ]; then
		continue
	fi
	echo "kernels: unpacking linux-image-$rel into $dir" >&2
	rm -rf "$dir"
	mkdir -p "$dir/debs"
	(cd "$dir/debs" && apt-get download -q -o APT::Sandbox::User=root "linux-image-$rel" >/dev/null)
	dpkg-deb -x "$dir"/debs/linux-image-"$rel"_*.deb "$dir/root"
	cp "$dir/root/boot/vmlinuz-$rel" "$dir/vmlinuz"
	# busybox insmod cannot read compressed modules: decompress them here,
	# keeping the names modules.dep uses so dependencies still resolve.
	find "$dir/root/lib/modules/$rel" -name '*.ko.xz' -exec xz -d -k {} +
	find "$dir/root/lib/modules/$rel" -name '*.ko.zst' -exec zstd -q -d --rm -k {} + 2>/dev/null || true
	rm -rf "$dir/debs"
	echo "$rel" >"$dir/release"
done

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Run the kernel's checkpatch.pl over kvmx's kernel sources.  checkpatch comes
# from Debian's linux-source-6.1 package (fetched by name, unpacked into
# build/tools/checkpatch; nothing is installed).
set -euo pipefail
cd "$(dirname "$0")/.."

tool=build/tools/checkpatch
if [ ! -x "$tool/scripts/checkpatch.pl" ]; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	(cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root linux-source-6.1 >/dev/null)
	mkdir -p "$tool"
	dpkg-deb --fsys-tarfile "$tmp"/linux-source-6.1_*.deb |
		tar -xO ./usr/src/linux-source-6.1.tar.xz | xz -dc |
		tar -x -C "$tool" --strip-components=1 --wildcards \
			'linux-source-6.1/scripts/checkpatch.pl' \
			'linux-source-6.1/scripts/spelling.txt' \
			'linux-source-6.1/scripts/const_structs.checkpatch'
fi

mapfile -t files < <(git ls-files -- 'kmod/*.[ch]' 'arch-x86/*.[ch]' 'arch-x86/*.S' \
	'mm/*.[ch]' 'include/*.h' 'uapi/*.h')
[ ${#files[@]} -gt 0 ] || exit 0
# FILE_PATH_CHANGES and LINUX_VERSION_CODE are about patches to the kernel
# tree itself.  CONST_STRUCT: the file_operations whose .owner is the vendor
# module are filled at registration, as KVM's own are; each says so.
"$tool/scripts/checkpatch.pl" --no-tree --strict --quiet --show-types \
	--ignore FILE_PATH_CHANGES,LINUX_VERSION_CODE,CONST_STRUCT -f "${files[@]}"

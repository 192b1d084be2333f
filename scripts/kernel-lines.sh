# SPDX-License-Identifier: GPL-2.0
# The kernel lines kvmx targets, and the Debian meta-package that names each
# line's current release.  Sourced by the other scripts.
KERNEL_LINES=(6.1 6.12)

kernel_meta() {
	case "$1" in
	6.1) echo linux-image-amd64 ;;
	6.12) echo linux-image-6.12-amd64 ;;
	*) echo "unknown kernel line $1" >&2; return 2 ;;
	esac
}

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The few kernel names that kvmx's pure-logic files (instruction decoder,
 * guest page-table walker, spte derivation, merge structures, vMCE banks)
 * use, so each such file builds unchanged into the module and into the
 * userspace unit tests and fuzz targets.  Keep this small: a pure-logic file
 * that needs more than this is probably not pure.
 */
#ifndef _KVMX_SHIM_H
#define _KVMX_SHIM_H

#ifdef __KERNEL__

#include <linux/types.h>
#include <linux/stddef.h>
#include <linux/errno.h>
#include <linux/string.h>
#include <linux/bug.h>
#include <linux/build_bug.h>
#include <linux/compiler.h>
#include <linux/kernel.h>
#include <linux/bits.h>

#else /* userspace */

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <errno.h>
#include <stdio.h>

typedef __UINT8_TYPE__ u8;
typedef __UINT16_TYPE__ u16;
typedef __UINT32_TYPE__ u32;
typedef __UINT64_TYPE__ u64;
typedef __INT8_TYPE__ s8;
typedef __INT16_TYPE__ s16;
typedef __INT32_TYPE__ s32;
typedef __INT64_TYPE__ s64;

#ifndef likely
#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)
#endif

#define BUILD_BUG_ON(cond)	static_assert(!(cond), "BUILD_BUG_ON: " #cond)

#ifndef BIT
#define BIT(nr)		(1UL << (nr))
#define BIT_ULL(nr)	(1ULL << (nr))
#endif

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#endif

#ifndef fallthrough
#define fallthrough	__attribute__((__fallthrough__))
#endif

/* Like the kernel's: report the condition once, on stderr, and return it. */
#define WARN_ON_ONCE(cond) ({						\
	static bool __warned;						\
	bool __ret = !!(cond);						\
	if (unlikely(__ret) && !__warned) {				\
		__warned = true;					\
		fprintf(stderr, "WARNING: %s:%d: %s\n",			\
			__FILE__, __LINE__, #cond);			\
	}								\
	unlikely(__ret);						\
})

#define WARN_ON(cond) ({						\
	bool __ret = !!(cond);						\
	if (unlikely(__ret))						\
		fprintf(stderr, "WARNING: %s:%d: %s\n",			\
			__FILE__, __LINE__, #cond);			\
	unlikely(__ret);						\
})

#endif /* __KERNEL__ */

#endif /* _KVMX_SHIM_H */

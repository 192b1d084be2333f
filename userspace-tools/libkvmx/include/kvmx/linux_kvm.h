// <linux/kvm.h> as C++ must see it. Include this, never <linux/kvm.h> directly.
//
// The 6.1 uapi headers declare flexible arrays with __DECLARE_FLEX_ARRAY, which wraps the array
// in a struct holding an empty struct. An empty struct is 0 bytes in C but 1 in C++, so in C++
// kvm_msrs, kvm_cpuid2, kvm_xsave, ... grow, their entries move, and the ioctl numbers that
// encode their size (KVM_GET_MSRS, KVM_SET_CPUID2, KVM_GET_XSAVE, ...) stop matching the
// kernel's. Later headers special-case C++ the same way as below.
#pragma once

#include <linux/stddef.h>

#undef __DECLARE_FLEX_ARRAY
#define __DECLARE_FLEX_ARRAY(TYPE, NAME) TYPE NAME[0]

#include <linux/kvm.h>

// kvmx's own capabilities and ioctls (uapi/linux/kvmx.h), in ranges upstream KVM never reaches.
#include <linux/kvmx.h>

#include <cstddef>

// The C layouts. These fail if <linux/kvm.h> was included before this header in the same
// translation unit.
static_assert(sizeof(kvm_msrs) == 8 && offsetof(kvm_msrs, entries) == 8, "kvm_msrs has the C++ layout");
static_assert(sizeof(kvm_msr_list) == 4, "kvm_msr_list has the C++ layout");
static_assert(sizeof(kvm_cpuid2) == 8 && offsetof(kvm_cpuid2, entries) == 8, "kvm_cpuid2 has the C++ layout");
static_assert(sizeof(kvm_xsave) == 4096, "kvm_xsave has the C++ layout");
static_assert(sizeof(kvm_signal_mask) == 4, "kvm_signal_mask has the C++ layout");
static_assert(sizeof(kvm_irq_routing) == 8, "kvm_irq_routing has the C++ layout");

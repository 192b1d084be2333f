// The ioctls libkvmx knows, as typed descriptors, and the one place that calls ioctl(2).
//
// Each entry of KVMX_IOCTLS names an ioctl of <linux/kvm.h> and how its argument travels:
//   NONE(name, CMD)        no argument (0 is passed)
//   VALUE(name, CMD)       an integer passed by value (KVM_CREATE_VM's type, KVM_CREATE_VCPU's id)
//   PTR(name, CMD, Type)   a pointer to Type; const Type* when the kernel only reads it (_IOW)
// and the list expands to kvmx::op::<name>, a constexpr descriptor checked at compile time:
// sizeof(Type) must equal _IOC_SIZE(CMD), and NONE/VALUE ioctls must encode no size.
#pragma once

#include "kvmx/linux_kvm.h"
#include <sys/ioctl.h>

#include <cstdint>
#include <string_view>
#include <type_traits>

#include "kvmx/error.hpp"

namespace kvmx {

enum class ArgKind { none, value, pointer };

template <unsigned long Cmd, class Arg, ArgKind Kind>
struct IoctlOp {
  static constexpr unsigned long cmd = Cmd;
  static constexpr ArgKind kind = Kind;
  using arg_type = Arg;
  // The kernel only reads an _IOW argument, so the caller may pass a pointer to const.
  using pointer = std::conditional_t<_IOC_DIR(Cmd) == _IOC_WRITE, const Arg*, Arg*>;
  std::string_view name;
};

#define KVMX_IOCTLS(NONE, VALUE, PTR)                                                  \
  /* system fd */                                                                      \
  NONE(get_api_version, KVM_GET_API_VERSION)                                           \
  VALUE(create_vm, KVM_CREATE_VM)                                                      \
  VALUE(check_extension, KVM_CHECK_EXTENSION)                                          \
  NONE(get_vcpu_mmap_size, KVM_GET_VCPU_MMAP_SIZE)                                     \
  PTR(get_supported_cpuid, KVM_GET_SUPPORTED_CPUID, kvm_cpuid2)                        \
  PTR(get_emulated_cpuid, KVM_GET_EMULATED_CPUID, kvm_cpuid2)                          \
  PTR(get_msr_index_list, KVM_GET_MSR_INDEX_LIST, kvm_msr_list)                        \
  PTR(get_msr_feature_index_list, KVM_GET_MSR_FEATURE_INDEX_LIST, kvm_msr_list)        \
  PTR(x86_get_mce_cap_supported, KVM_X86_GET_MCE_CAP_SUPPORTED, __u64)                 \
  /* VM fd */                                                                          \
  VALUE(create_vcpu, KVM_CREATE_VCPU)                                                  \
  PTR(set_user_memory_region, KVM_SET_USER_MEMORY_REGION, kvm_userspace_memory_region) \
  VALUE(set_tss_addr, KVM_SET_TSS_ADDR)                                                \
  PTR(set_identity_map_addr, KVM_SET_IDENTITY_MAP_ADDR, __u64)                         \
  PTR(enable_cap, KVM_ENABLE_CAP, kvm_enable_cap)                                      \
  PTR(get_dirty_log, KVM_GET_DIRTY_LOG, kvm_dirty_log)                                 \
  PTR(clear_dirty_log, KVM_CLEAR_DIRTY_LOG, kvm_clear_dirty_log)                       \
  NONE(create_irqchip, KVM_CREATE_IRQCHIP)                                             \
  PTR(irq_line, KVM_IRQ_LINE, kvm_irq_level)                                           \
  PTR(get_clock, KVM_GET_CLOCK, kvm_clock_data)                                        \
  PTR(set_clock, KVM_SET_CLOCK, kvm_clock_data)                                        \
  PTR(ioeventfd, KVM_IOEVENTFD, kvm_ioeventfd)                                         \
  NONE(get_stats_fd, KVM_GET_STATS_FD)                                                 \
  /* vCPU fd */                                                                        \
  NONE(run, KVM_RUN)                                                                   \
  PTR(get_regs, KVM_GET_REGS, kvm_regs)                                                \
  PTR(set_regs, KVM_SET_REGS, kvm_regs)                                                \
  PTR(get_sregs, KVM_GET_SREGS, kvm_sregs)                                             \
  PTR(set_sregs, KVM_SET_SREGS, kvm_sregs)                                             \
  PTR(get_fpu, KVM_GET_FPU, kvm_fpu)                                                   \
  PTR(set_fpu, KVM_SET_FPU, kvm_fpu)                                                   \
  PTR(get_msrs, KVM_GET_MSRS, kvm_msrs)                                                \
  PTR(set_msrs, KVM_SET_MSRS, kvm_msrs)                                                \
  PTR(get_cpuid2, KVM_GET_CPUID2, kvm_cpuid2)                                          \
  PTR(set_cpuid2, KVM_SET_CPUID2, kvm_cpuid2)                                          \
  PTR(interrupt, KVM_INTERRUPT, kvm_interrupt)                                         \
  NONE(nmi, KVM_NMI)                                                                   \
  NONE(smi, KVM_SMI)                                                                   \
  PTR(get_vcpu_events, KVM_GET_VCPU_EVENTS, kvm_vcpu_events)                           \
  PTR(set_vcpu_events, KVM_SET_VCPU_EVENTS, kvm_vcpu_events)                           \
  PTR(get_xsave, KVM_GET_XSAVE, kvm_xsave)                                             \
  PTR(set_xsave, KVM_SET_XSAVE, kvm_xsave)                                             \
  PTR(get_xcrs, KVM_GET_XCRS, kvm_xcrs)                                                \
  PTR(set_xcrs, KVM_SET_XCRS, kvm_xcrs)                                                \
  PTR(get_debugregs, KVM_GET_DEBUGREGS, kvm_debugregs)                                 \
  PTR(set_debugregs, KVM_SET_DEBUGREGS, kvm_debugregs)                                 \
  PTR(set_guest_debug, KVM_SET_GUEST_DEBUG, kvm_guest_debug)                           \
  PTR(get_mp_state, KVM_GET_MP_STATE, kvm_mp_state)                                    \
  PTR(set_mp_state, KVM_SET_MP_STATE, kvm_mp_state)                                    \
  PTR(translate, KVM_TRANSLATE, kvm_translation)                                       \
  PTR(get_lapic, KVM_GET_LAPIC, kvm_lapic_state)                                       \
  PTR(set_lapic, KVM_SET_LAPIC, kvm_lapic_state)                                       \
  PTR(x86_setup_mce, KVM_X86_SETUP_MCE, __u64)                                         \
  PTR(x86_set_mce, KVM_X86_SET_MCE, kvm_x86_mce)                                       \
  PTR(set_signal_mask, KVM_SET_SIGNAL_MASK, kvm_signal_mask)                           \
  NONE(get_tsc_khz, KVM_GET_TSC_KHZ)                                                   \
  VALUE(set_tsc_khz, KVM_SET_TSC_KHZ)

namespace op {

#define KVMX_OP_NONE(name, cmd)                                                 \
  static_assert(_IOC_SIZE(cmd) == 0, #cmd " encodes an argument size");          \
  inline constexpr IoctlOp<cmd, void, ArgKind::none> name{#cmd};
#define KVMX_OP_VALUE(name, cmd)                                                \
  static_assert(_IOC_SIZE(cmd) == 0, #cmd " encodes an argument size");          \
  inline constexpr IoctlOp<cmd, unsigned long, ArgKind::value> name{#cmd};
#define KVMX_OP_PTR(name, cmd, type)                                            \
  static_assert(sizeof(type) == _IOC_SIZE(cmd), "sizeof(" #type ") != _IOC_SIZE(" #cmd ")"); \
  inline constexpr IoctlOp<cmd, type, ArgKind::pointer> name{#cmd};

KVMX_IOCTLS(KVMX_OP_NONE, KVMX_OP_VALUE, KVMX_OP_PTR)

#undef KVMX_OP_NONE
#undef KVMX_OP_VALUE
#undef KVMX_OP_PTR

}  // namespace op

// The name of a known ioctl number ("KVM_RUN"), or empty.
std::string_view ioctl_name(unsigned long cmd);

// The only call of ioctl(2) in the project. `name` labels the error.
Result<int> ioctl_call(int fd, unsigned long cmd, unsigned long arg, std::string_view name);

// Typed calls: the descriptor picks the argument form, so a wrong argument does not compile.
template <class Op>
  requires(Op::kind == ArgKind::none)
Result<int> ioctl(int fd, const Op& op) {
  return ioctl_call(fd, Op::cmd, 0, op.name);
}

template <class Op>
  requires(Op::kind == ArgKind::value)
Result<int> ioctl(int fd, const Op& op, unsigned long value) {
  return ioctl_call(fd, Op::cmd, value, op.name);
}

template <class Op>
  requires(Op::kind == ArgKind::pointer)
Result<int> ioctl(int fd, const Op& op, typename Op::pointer arg) {
  return ioctl_call(fd, Op::cmd, reinterpret_cast<unsigned long>(arg), op.name);
}

// For negative tests only: an ioctl number the table may not know (an unknown or malformed
// command). The error names the command in hex when it is not in the table.
Result<int> ioctl_unchecked(int fd, unsigned long cmd, unsigned long arg);

}  // namespace kvmx

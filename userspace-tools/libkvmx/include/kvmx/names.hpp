// Names for exit reasons, errno values and capabilities, each from one stringify-generated table
// (src/names.cpp), so a value and its name are never typed twice.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace kvmx {

struct NamedValue {
  long value;
  std::string_view name;
};

// Exit reasons without the KVM_EXIT_ prefix: 2 -> "IO". Empty for a value not in the table.
std::string_view exit_reason_name(std::uint32_t reason);
// "IO (2)", or "unknown exit reason (99)".
std::string describe_exit_reason(std::uint32_t reason);
std::span<const NamedValue> exit_reason_table();

// errno names: 22 -> "EINVAL". Empty for a value not in the table.
std::string_view errno_name(int err);
// "EINVAL (Invalid argument)", or "errno 4000 (Unknown error 4000)".
std::string describe_errno(int err);
std::span<const NamedValue> errno_table();

// Capabilities x86 kvmx cares about, with the KVM_CAP_ prefix: 3 -> "KVM_CAP_USER_MEMORY".
std::string_view cap_name(long cap);
std::span<const NamedValue> cap_table();

}  // namespace kvmx

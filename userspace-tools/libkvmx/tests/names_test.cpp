#include "kvmx/names.hpp"

#include <gtest/gtest.h>
#include "kvmx/linux_kvm.h"

#include <cerrno>
#include <set>
#include <string>

namespace kvmx {
namespace {

// Guards: exit reasons print without the KVM_EXIT_ prefix and with their number.
TEST(Names, ExitReasons) {
  EXPECT_EQ(exit_reason_name(KVM_EXIT_IO), "IO");
  EXPECT_EQ(exit_reason_name(KVM_EXIT_HLT), "HLT");
  EXPECT_EQ(exit_reason_name(KVM_EXIT_INTERNAL_ERROR), "INTERNAL_ERROR");
  EXPECT_EQ(describe_exit_reason(KVM_EXIT_HLT), "HLT (5)");
  EXPECT_EQ(exit_reason_name(4000), "");
  EXPECT_EQ(describe_exit_reason(4000), "unknown exit reason (4000)");
}

// Guards: errno values print by name and description.
TEST(Names, Errnos) {
  EXPECT_EQ(errno_name(EINVAL), "EINVAL");
  EXPECT_EQ(errno_name(ENOTTY), "ENOTTY");
  EXPECT_EQ(errno_name(EBADF), "EBADF");
  EXPECT_EQ(describe_errno(EBADF), "EBADF (Bad file descriptor)");
  EXPECT_EQ(errno_name(4000), "");
  EXPECT_EQ(describe_errno(4000).rfind("errno 4000 (", 0), 0u);
}

// Guards: capabilities print with their full macro name.
TEST(Names, Caps) {
  EXPECT_EQ(cap_name(KVM_CAP_USER_MEMORY), "KVM_CAP_USER_MEMORY");
  EXPECT_EQ(cap_name(KVM_CAP_IMMEDIATE_EXIT), "KVM_CAP_IMMEDIATE_EXIT");
  EXPECT_EQ(cap_name(1 << 30), "");
}

void expect_one_name_per_value(std::span<const NamedValue> table, const char* what) {
  std::set<long> values;
  std::set<std::string_view> names;
  for (const auto& entry : table) {
    EXPECT_TRUE(values.insert(entry.value).second) << what << " value " << entry.value << " twice";
    EXPECT_TRUE(names.insert(entry.name).second) << what << " name " << entry.name << " twice";
    EXPECT_FALSE(entry.name.empty());
  }
  EXPECT_FALSE(table.empty());
}

// Guards: each table maps values to names one to one (no alias hides another name).
TEST(Names, TablesAreOneToOne) {
  expect_one_name_per_value(exit_reason_table(), "exit reason");
  expect_one_name_per_value(errno_table(), "errno");
  expect_one_name_per_value(cap_table(), "capability");
}

// Guards: the exit reason table covers every reason up to the newest one the headers define.
TEST(Names, ExitReasonTableIsDense) {
  for (std::uint32_t reason = 0; reason <= KVM_EXIT_NOTIFY; ++reason) {
    EXPECT_NE(exit_reason_name(reason), "") << "reason " << reason;
  }
}

}  // namespace
}  // namespace kvmx

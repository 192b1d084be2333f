#include "kvmx/error.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>

namespace kvmx {
namespace {

// Guards: a success carries its value and reports errno 0.
TEST(Result, SuccessHoldsValue) {
  Result<int> r = 42;
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(static_cast<bool>(r));
  EXPECT_EQ(r.err(), 0);
  EXPECT_EQ(r.value(), 42);
  EXPECT_EQ(*r, 42);
  EXPECT_THROW((void)r.error(), std::logic_error);
}

// Guards: a failure keeps errno and the call name, and reading its value throws Failure.
TEST(Result, FailureKeepsErrnoAndCall) {
  Result<int> r = Error{EINVAL, "KVM_CREATE_VM", {}};
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err(), EINVAL);
  EXPECT_EQ(r.error().what, "KVM_CREATE_VM");
  EXPECT_EQ(r.value_or(7), 7);
  try {
    (void)r.value();
    FAIL() << "value() of a failure did not throw";
  } catch (const Failure& f) {
    EXPECT_EQ(f.error().code, EINVAL);
    EXPECT_STREQ(f.what(), "KVM_CREATE_VM: EINVAL (Invalid argument)");
  }
}

// Guards: move-only values pass through Result.
TEST(Result, MoveOnlyValue) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(5);
  std::unique_ptr<int> p = std::move(r).value();
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, 5);
}

// Guards: Result<void> reports success and failure the same way.
TEST(Result, VoidResult) {
  Result<void> ok;
  EXPECT_TRUE(ok.ok());
  EXPECT_NO_THROW(ok.value());
  Result<void> bad = Error{EBADF, "KVM_RUN", {}};
  EXPECT_EQ(bad.err(), EBADF);
  EXPECT_THROW(bad.value(), Failure);
}

// Guards: the hint follows the errno in the message, so a missing module is named.
TEST(Error, MessageIncludesHint) {
  const Error e{ENOENT, "open(/dev/kvmx)", "modprobe kvmx-amd"};
  EXPECT_EQ(e.message(), "open(/dev/kvmx): ENOENT (No such file or directory); modprobe kvmx-amd");
}

// Guards: errno_error() captures errno as it was at the call.
TEST(Error, ErrnoErrorCapturesErrno) {
  errno = EFAULT;
  const Error e = errno_error("mmap");
  EXPECT_EQ(e.code, EFAULT);
  EXPECT_EQ(e.what, "mmap");
}

}  // namespace
}  // namespace kvmx

// Assertions that print errnos and exit reasons by name.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <variant>

#include "kvmx/kvmx.hpp"

namespace kvmx::test {

// Success, or "KVM_CREATE_VM: EINVAL (Invalid argument)".
template <class T>
::testing::AssertionResult is_ok(const Result<T>& r) {
  if (r.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << r.error().message();
}

// "wanted EINVAL (Invalid argument), got ENOTTY (...) from KVM_CREATE_VM", or "wanted EINVAL
// (...), but the call succeeded".
template <class T>
::testing::AssertionResult fails_with(const Result<T>& r, int wanted) {
  if (!r.ok() && r.err() == wanted) return ::testing::AssertionSuccess();
  auto failure = ::testing::AssertionFailure() << "wanted " << describe_errno(wanted);
  if (r.ok()) return failure << ", but the call succeeded";
  return failure << ", got " << describe_errno(r.err()) << " from " << r.error().what;
}

// "wanted exit IO (2), got HLT (5)" when `e` does not hold an exit of type T.
template <class T>
::testing::AssertionResult exit_is(const Exit& e) {
  if (std::holds_alternative<T>(e)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "wanted exit " << describe_exit_reason(T::reason) << ", got "
                                       << describe(e);
}

}  // namespace kvmx::test

#define KVMX_EXPECT_OK(expr) EXPECT_TRUE(::kvmx::test::is_ok(expr)) << #expr
#define KVMX_ASSERT_OK(expr) ASSERT_TRUE(::kvmx::test::is_ok(expr)) << #expr
#define KVMX_EXPECT_ERRNO(expr, err) EXPECT_TRUE(::kvmx::test::fails_with((expr), (err))) << #expr
#define KVMX_ASSERT_ERRNO(expr, err) ASSERT_TRUE(::kvmx::test::fails_with((expr), (err))) << #expr
// ASSERT that exit `e` is a T, e.g. KVMX_ASSERT_EXIT(e, kvmx::exit::Hlt).
#define KVMX_ASSERT_EXIT(e, T) ASSERT_TRUE(::kvmx::test::exit_is<T>(e))
#define KVMX_EXPECT_EXIT(e, T) EXPECT_TRUE(::kvmx::test::exit_is<T>(e))

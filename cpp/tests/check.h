// A minimal test registry for the engine's unit tests (no external framework:
// the tests build from a clean clone with the compiler that builds the engine).
// TEST(name) { ... CHECK(condition); CHECK_EQ(a, b); } registers a test;
// main() runs them all, or those named on the command line, and exits non-zero
// when a check failed.
#pragma once

#include <functional>
#include <iostream>
#include <string>
#include <vector>

namespace slide_test {

struct Test {
  const char* name;
  std::function<void()> body;
};

inline std::vector<Test>& registry() {
  static std::vector<Test> tests;
  return tests;
}

inline int& failures() {
  static int n = 0;
  return n;
}

struct Register {
  Register(const char* name, std::function<void()> body) {
    registry().push_back({name, std::move(body)});
  }
};

inline void fail(const char* file, int line, const std::string& what) {
  ++failures();
  std::cout << file << ":" << line << ": check failed: " << what << "\n";
}

}  // namespace slide_test

#define TEST(name)                                                      \
  static void test_##name();                                            \
  static const slide_test::Register register_##name(#name, test_##name); \
  static void test_##name()

#define CHECK(condition) \
  ((condition) ? (void)0 : slide_test::fail(__FILE__, __LINE__, #condition))

#define CHECK_EQ(a, b)                                                                  \
  do {                                                                                  \
    const auto value_a = (a);                                                           \
    const auto value_b = (b);                                                           \
    if (!(value_a == value_b))                                                          \
      slide_test::fail(__FILE__, __LINE__,                                              \
                       std::string(#a " == " #b " (") + std::to_string(value_a) + " vs " + \
                           std::to_string(value_b) + ")");                              \
  } while (0)

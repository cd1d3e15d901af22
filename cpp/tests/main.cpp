#include <cstring>
#include <iostream>

#include "check.h"

// slide_cpp_tests [--list] [name...]: runs the named tests (all by default).
int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--list") == 0) {
    for (const auto& test : slide_test::registry()) std::cout << test.name << "\n";
    return 0;
  }
  int run = 0;
  for (const auto& test : slide_test::registry()) {
    bool wanted = argc == 1;
    for (int i = 1; i < argc; ++i) wanted = wanted || std::strcmp(argv[i], test.name) == 0;
    if (!wanted) continue;
    const int before = slide_test::failures();
    test.body();
    ++run;
    std::cout << (slide_test::failures() == before ? "ok   " : "FAIL ") << test.name << "\n";
  }
  std::cout << run << " tests, " << slide_test::failures() << " failed checks\n";
  return run == 0 || slide_test::failures() ? 1 : 0;
}

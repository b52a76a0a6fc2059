//===- TestMain.cpp - main of kiln-runtime-tests ------------------------===//
//
// The tests define their own main so that the runtime's (in libkiln_runtime's
// Main.o) is never pulled into the link.
//
//===----------------------------------------------------------------------===//

#include <gtest/gtest.h>

int main(int argc, char **argv) {
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}

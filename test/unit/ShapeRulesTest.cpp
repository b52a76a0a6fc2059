//===- ShapeRulesTest.cpp - Unit tests of the shared shape rules ----------===//

#include "ir/ShapeRules.h"

#include <gtest/gtest.h>

using namespace kiln;

namespace {

TEST(ShapeRulesTest, BroadcastFollowsNumPy) {
  std::string error;
  auto s = shape::broadcast({64, 256}, {256}, error);
  ASSERT_TRUE(succeeded(s));
  EXPECT_EQ(*s, (shape::Shape{64, 256}));
  s = shape::broadcast({8, 1, 6, 1}, {7, 1, 5}, error);
  ASSERT_TRUE(succeeded(s));
  EXPECT_EQ(*s, (shape::Shape{8, 7, 6, 5}));
  s = shape::broadcast({}, {3, 4}, error);
  ASSERT_TRUE(succeeded(s));
  EXPECT_EQ(*s, (shape::Shape{3, 4}));
}

TEST(ShapeRulesTest, BroadcastFailureNamesBothShapes) {
  std::string error;
  EXPECT_TRUE(failed(shape::broadcast({64, 10}, {32}, error)));
  EXPECT_EQ(error, "shapes [64, 10] and [32] cannot be broadcast together");
}

TEST(ShapeRulesTest, BroadcastsTo) {
  EXPECT_TRUE(shape::broadcastsTo({256}, {64, 256}));
  EXPECT_TRUE(shape::broadcastsTo({1, 256}, {64, 256}));
  EXPECT_FALSE(shape::broadcastsTo({64, 256}, {256}));
  EXPECT_FALSE(shape::broadcastsTo({2}, {64, 256}));
}

TEST(ShapeRulesTest, Matmul) {
  std::string error;
  auto s = shape::matmul({64, 784}, {784, 256}, error);
  ASSERT_TRUE(succeeded(s));
  EXPECT_EQ(*s, (shape::Shape{64, 256}));
  s = shape::matmul({4, 8, 16, 32}, {32, 5}, error);
  ASSERT_TRUE(succeeded(s));
  EXPECT_EQ(*s, (shape::Shape{4, 8, 16, 5}));
  EXPECT_TRUE(failed(shape::matmul({64, 784}, {700, 256}, error)));
  EXPECT_EQ(
      error,
      "matmul inner dimensions differ: [64, 784] @ [700, 256] (784 vs 700)");
  EXPECT_TRUE(failed(shape::matmul({784}, {784, 2}, error)));
  EXPECT_TRUE(failed(shape::matmul({2, 3, 4}, {5, 4, 6}, error)));
}

TEST(ShapeRulesTest, ReduceDropsOrKeepsAxes) {
  std::string error;
  auto s = shape::reduce({64, 10, 3}, {1}, false, error);
  ASSERT_TRUE(succeeded(s));
  EXPECT_EQ(*s, (shape::Shape{64, 3}));
  s = shape::reduce({64, 10, 3}, {0, 2}, true, error);
  ASSERT_TRUE(succeeded(s));
  EXPECT_EQ(*s, (shape::Shape{1, 10, 1}));
  s = shape::reduce({64, 10}, {0, 1}, false, error);
  ASSERT_TRUE(succeeded(s));
  EXPECT_TRUE(s->empty());
  EXPECT_TRUE(failed(shape::reduce({64, 10}, {2}, false, error)));
  EXPECT_TRUE(failed(shape::reduce({64, 10}, {1, 1}, false, error)));
}

TEST(ShapeRulesTest, NormalizeAxis) {
  std::string error;
  EXPECT_EQ(*shape::normalizeAxis(-1, 2, error), 1);
  EXPECT_EQ(*shape::normalizeAxis(0, 2, error), 0);
  EXPECT_TRUE(failed(shape::normalizeAxis(2, 2, error)));
  EXPECT_EQ(error, "axis 2 is out of range for a tensor of rank 2");
  EXPECT_TRUE(failed(shape::normalizeAxis(-3, 2, error)));
}

TEST(ShapeRulesTest, TransposeAndReshape) {
  std::string error;
  auto t = shape::transpose({2, 3, 4}, {2, 0, 1}, error);
  ASSERT_TRUE(succeeded(t));
  EXPECT_EQ(*t, (shape::Shape{4, 2, 3}));
  EXPECT_TRUE(failed(shape::transpose({2, 3}, {0, 0}, error)));
  EXPECT_TRUE(failed(shape::transpose({2, 3}, {0}, error)));

  auto r = shape::reshape({64, 28, 28}, {64, -1}, error);
  ASSERT_TRUE(succeeded(r));
  EXPECT_EQ(*r, (shape::Shape{64, 784}));
  EXPECT_TRUE(failed(shape::reshape({64, 784}, {64, 700}, error)));
  EXPECT_TRUE(failed(shape::reshape({64, 784}, {-1, -1}, error)));
  EXPECT_TRUE(failed(shape::reshape({10}, {3, -1}, error)));
}

TEST(ShapeRulesTest, Losses) {
  std::string error;
  EXPECT_TRUE(succeeded(shape::crossEntropy({64, 10}, {64}, error)));
  EXPECT_TRUE(failed(shape::crossEntropy({64, 10}, {32}, error)));
  EXPECT_TRUE(failed(shape::crossEntropy({64}, {64}, error)));
  EXPECT_TRUE(succeeded(shape::sameShapeLoss({4, 5}, {4, 5}, error)));
  EXPECT_TRUE(failed(shape::sameShapeLoss({4, 5}, {5, 4}, error)));
}

} // namespace

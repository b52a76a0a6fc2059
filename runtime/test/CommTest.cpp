//===- CommTest.cpp - Agreement and averaging in a data-parallel job ------===//
//
// One process stands in for a job of two: a fake communicator adds (or takes
// the maximum with) what the other process would have sent.

#include "runtime/Comm.h"
#include "runtime/KilnABI.h"

#include <gtest/gtest.h>

#include <vector>

using namespace kiln::rt;

namespace {

/// Process RANK of 2; the other process sends OTHER.
class FakeJob : public Communicator {
public:
  FakeJob(int rank, std::vector<int64_t> otherFlags,
          std::vector<float> otherValues = {})
      : rank_(rank), otherFlags_(std::move(otherFlags)),
        otherValues_(std::move(otherValues)) {
    previous_ = replaceCommunicator(this);
  }
  ~FakeJob() override { replaceCommunicator(previous_); }
  int rank() const override { return rank_; }
  int size() const override { return 2; }
  void sum(float *data, int64_t count) override {
    for (int64_t i = 0; i < count; ++i)
      data[i] += otherValues_[size_t(i)];
  }
  void max(int64_t *data, int64_t count) override {
    for (int64_t i = 0; i < count; ++i)
      data[i] = std::max(data[i], otherFlags_[size_t(i)]);
  }

private:
  int rank_;
  std::vector<int64_t> otherFlags_;
  std::vector<float> otherValues_;
  Communicator *previous_;
};

// What the other process sends to agree(): {failed, failed as process 0,
// exit code}.
const std::vector<int64_t> kOk = {0, 0, 0};

} // namespace

TEST(CommTest, AloneTheErrorIsAsIs) {
  EXPECT_EQ(communicator().size(), 1);
  EXPECT_FALSE(agree(Error::success()));
  Error e = agree(Error::usage("bad flag"));
  ASSERT_TRUE(e);
  EXPECT_EQ(e.message(), "bad flag");
  EXPECT_EQ(e.exitCode(), ExitUsage);
}

TEST(CommTest, AllReadyAllGoOn) {
  FakeJob job(1, kOk);
  EXPECT_FALSE(agree(Error::success()));
}

TEST(CommTest, AProcessThatFailsAloneReportsItsOwnError) {
  FakeJob job(1, kOk);
  Error e = agree(makeError("file 'x' not found"));
  ASSERT_TRUE(e);
  EXPECT_EQ(e.message(), "file 'x' not found");
}

TEST(CommTest, ProcessZeroSpeaksForAllWhenItFailsToo) {
  FakeJob job(1, {1, 1, ExitUsage});
  Error e = agree(makeError("file 'x' not found"));
  ASSERT_TRUE(e);
  EXPECT_TRUE(e.message().empty()); // silent: process 0 reports
  EXPECT_EQ(e.exitCode(), ExitUsage);
}

TEST(CommTest, AnotherProcessFailingStopsThisOne) {
  {
    FakeJob job(0, {1, 0, ExitUsage});
    Error e = agree(Error::success());
    ASSERT_TRUE(e);
    EXPECT_EQ(e.message(),
              "another process of the job failed (its error is above)");
    EXPECT_EQ(e.exitCode(), ExitUsage);
  }
  {
    // Process 1 stops without a word when process 0 failed.
    FakeJob job(1, {1, 1, ExitFailure});
    Error e = agree(Error::success());
    ASSERT_TRUE(e);
    EXPECT_TRUE(e.message().empty());
  }
}

TEST(CommTest, ProcessZeroReportsItsOwnError) {
  FakeJob job(0, {1, 0, ExitFailure});
  Error e = agree(makeError("cannot write 'c.st'"));
  ASSERT_TRUE(e);
  EXPECT_EQ(e.message(), "cannot write 'c.st'");
}

TEST(CommTest, TheTrainStepsAllReduceAveragesAndIsCounted) {
  AllReduceStats before = allReduceStats();
  FakeJob job(1, kOk, {4, 8, -1});
  std::vector<float> mine = {2, 4, 1};
  kiln_all_reduce_f32(mine.data(), int64_t(mine.size()));
  EXPECT_EQ(mine, (std::vector<float>{3, 6, 0}));
  EXPECT_EQ(allReduceStats().calls, before.calls + 1);
  EXPECT_EQ(allReduceStats().bytes, before.bytes + 12);
}

TEST(CommTest, AloneTheAllReduceLeavesTheValues) {
  AllReduceStats before = allReduceStats();
  std::vector<float> mine = {2, 4, 1};
  kiln_all_reduce_f32(mine.data(), int64_t(mine.size()));
  EXPECT_EQ(mine, (std::vector<float>{2, 4, 1}));
  EXPECT_EQ(allReduceStats().calls, before.calls);
}

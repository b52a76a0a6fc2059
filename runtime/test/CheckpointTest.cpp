//===- CheckpointTest.cpp - Tests of safetensors checkpoints ------------===//

#include "runtime/Checkpoint.h"
#include "TestUtil.h"
#include "runtime/Files.h"
#include "runtime/Init.h"
#include "runtime/Json.h"
#include "runtime/Model.h"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

using namespace kiln::rt;
using namespace kiln::rt::test;

namespace {

bool contains(const std::string &text, const std::string &part) {
  return text.find(part) != std::string::npos;
}

Model tinyModel() {
  Expected<Model> m = Model::create(tinyAbi());
  EXPECT_TRUE(m);
  return std::move(*m);
}

/// A safetensors file from a header text and a data section.
std::string safetensors(const std::string &header, const std::string &data) {
  std::string out;
  for (int i = 0; i < 8; ++i)
    out += char((header.size() >> (8 * i)) & 0xFF);
  return out + header + data;
}

std::vector<std::string> listDir(const std::string &path) {
  std::vector<std::string> names;
  DIR *d = opendir(path.c_str());
  while (dirent *e = readdir(d))
    if (e->d_name[0] != '.')
      names.push_back(e->d_name);
  closedir(d);
  return names;
}

/// The error of loading PATH into a fresh tiny model.
std::string loadError(const std::string &path, bool requireState = false) {
  Model m = tinyModel();
  Expected<CheckpointInfo> info =
      loadCheckpoint(path, m.manifest(), m.params, m.state, requireState);
  EXPECT_FALSE(info) << "loaded " << path;
  return info ? std::string() : info.error().message();
}

} // namespace

TEST(CheckpointTest, RoundTripsParamsAndState) {
  TempDir dir;
  Model a = tinyModel();
  a.initialize(11);
  a.state[1].buffer.as<float>()[4] = 0.75f;
  ASSERT_FALSE(
      writeCheckpoint(dir.file("c.st"), a.manifest(), a.params, a.state, 123));
  Model b = tinyModel();
  Expected<CheckpointInfo> info =
      loadCheckpoint(dir.file("c.st"), b.manifest(), b.params, b.state, true);
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->step, 123u);
  EXPECT_EQ(info->model, "tiny");
  EXPECT_TRUE(info->hasState);
  for (size_t i = 0; i < a.params.size(); ++i)
    EXPECT_EQ(std::memcmp(a.params[i].data(), b.params[i].data(),
                          a.params[i].numBytes()),
              0);
  EXPECT_EQ(b.state[1].buffer.as<float>()[4], 0.75f);
  // Nothing but the file itself is left in the folder.
  EXPECT_EQ(listDir(dir.path()), (std::vector<std::string>{"c.st"}));
}

TEST(CheckpointTest, RecordsTheGlobalBatch) {
  TempDir dir;
  Model a = tinyModel();
  a.initialize(3);
  // Written by a data-parallel job of global batch 64: kiln.batch.
  ASSERT_FALSE(writeCheckpoint(dir.file("c.st"), a.manifest(), a.params,
                               a.state, 9, {}, {}, 64));
  Model b = tinyModel();
  Expected<CheckpointInfo> info =
      loadCheckpoint(dir.file("c.st"), b.manifest(), b.params, b.state, true);
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->step, 9u);
  EXPECT_EQ(info->batch, 64u);
  // Without it (older checkpoints), 0.
  ASSERT_FALSE(
      writeCheckpoint(dir.file("d.st"), a.manifest(), a.params, a.state, 9));
  info =
      loadCheckpoint(dir.file("d.st"), b.manifest(), b.params, b.state, true);
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->batch, 0u);
  // A batch of 0 or garbage is an error naming the file and the field.
  std::vector<const Tensor *> tensors;
  for (const Tensor &t : a.params)
    tensors.push_back(&t);
  for (const Tensor &t : a.state)
    tensors.push_back(&t);
  for (const char *bad : {"0", "-3", "x64"}) {
    ASSERT_FALSE(writeSafetensors(dir.file("e.st"), tensors,
                                  {{"kiln.step", "1"}, {"kiln.batch", bad}}));
    info =
        loadCheckpoint(dir.file("e.st"), b.manifest(), b.params, b.state, true);
    ASSERT_FALSE(info) << bad;
    EXPECT_NE(info.error().message().find(
                  fmt::format("bad kiln.batch '{}' in the metadata", bad)),
              std::string::npos)
        << info.error().message();
  }
}

TEST(CheckpointTest, FileIsStandardSafetensors) {
  TempDir dir;
  Model a = tinyModel();
  a.initialize(1);
  ASSERT_FALSE(
      writeCheckpoint(dir.file("c.st"), a.manifest(), a.params, a.state, 5));
  std::string bytes = readBytes(dir.file("c.st"));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i)
    n = n << 8 | (unsigned char)bytes[size_t(i)];
  EXPECT_EQ((8 + n) % 8, 0u); // data aligned
  Expected<JsonValue> header = parseJson(bytes.substr(8, n));
  ASSERT_TRUE(header) << header.error().message();
  const JsonValue *meta = header->find("__metadata__");
  ASSERT_NE(meta, nullptr);
  EXPECT_EQ(meta->find("kiln.model")->text, "tiny");
  EXPECT_EQ(meta->find("kiln.step")->text, "5");
  EXPECT_EQ(meta->find("kiln.format")->text, "1");
  const JsonValue *w = header->find("w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->find("dtype")->text, "F32");
  EXPECT_EQ(w->find("shape")->elements.size(), 2u);
  // Offsets are contiguous from 0 and cover the data section exactly, as the
  // safetensors library requires.
  uint64_t expected = 0;
  for (const auto &[name, info] : header->members) {
    if (name == "__metadata__")
      continue;
    const JsonValue *off = info.find("data_offsets");
    EXPECT_EQ(off->elements[0].asUInt(), expected) << name;
    expected = *off->elements[1].asUInt();
  }
  EXPECT_EQ(8 + n + expected, bytes.size());
}

TEST(CheckpointTest, RejectsTruncatedFiles) {
  TempDir dir;
  Model a = tinyModel();
  ASSERT_FALSE(
      writeCheckpoint(dir.file("c.st"), a.manifest(), a.params, a.state, 1));
  std::string bytes = readBytes(dir.file("c.st"));
  writeBytes(dir.file("t1.st"), bytes.substr(0, bytes.size() - 4));
  EXPECT_TRUE(contains(loadError(dir.file("t1.st")), "is truncated"));
  writeBytes(dir.file("t2.st"), bytes.substr(0, 40));
  EXPECT_TRUE(contains(loadError(dir.file("t2.st")), "truncated"));
  writeBytes(dir.file("t3.st"), bytes.substr(0, 5));
  EXPECT_TRUE(contains(loadError(dir.file("t3.st")), "only 5 bytes"));
}

TEST(CheckpointTest, RejectsBadHeaders) {
  TempDir dir;
  writeBytes(dir.file("json.st"), safetensors("{\"w\": {", ""));
  EXPECT_TRUE(contains(loadError(dir.file("json.st")), "bad header JSON"));
  writeBytes(dir.file("arr.st"), safetensors("[1]", ""));
  EXPECT_TRUE(contains(loadError(dir.file("arr.st")), "not a JSON object"));
  writeBytes(dir.file("len.st"), std::string("\xff\xff\xff\xff\0\0\0\0", 8));
  EXPECT_TRUE(contains(loadError(dir.file("len.st")), "implausible"));
  writeBytes(
      dir.file("dtype.st"),
      safetensors(R"({"w":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}})",
                  "x"));
  EXPECT_TRUE(contains(loadError(dir.file("dtype.st")), "unknown dtype 'Q7'"));
}

TEST(CheckpointTest, RejectsWrongSizesAndOverlaps) {
  TempDir dir;
  writeBytes(
      dir.file("size.st"),
      safetensors(R"({"b":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})",
                  std::string(8, '\0')));
  EXPECT_TRUE(contains(loadError(dir.file("size.st")), "needs 12 bytes"));
  writeBytes(
      dir.file("range.st"),
      safetensors(R"({"b":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})",
                  std::string(8, '\0')));
  EXPECT_TRUE(contains(loadError(dir.file("range.st")), "is truncated"));
  writeBytes(
      dir.file("overlap.st"),
      safetensors(R"({"b":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},)"
                  R"("w":{"dtype":"F32","shape":[3,3],"data_offsets":[8,44]}})",
                  std::string(44, '\0')));
  EXPECT_TRUE(contains(loadError(dir.file("overlap.st")), "overlap"));
}

TEST(CheckpointTest, RejectsCheckpointsOfAnotherModel) {
  TempDir dir;
  Expected<Model> other = Model::create(otherAbi());
  ASSERT_TRUE(other);
  ASSERT_FALSE(writeCheckpoint(dir.file("o.st"), other->manifest(),
                               other->params, other->state, 9));
  std::string msg = loadError(dir.file("o.st"));
  // The first mismatch: w is 4x3 there, 3x3 here.
  EXPECT_TRUE(contains(msg, "tensor 'w' is f32 4x3, but parameter 'w' of "
                            "model 'tiny' is f32 3x3"))
      << msg;
  EXPECT_TRUE(contains(msg, "written by model 'other'")) << msg;

  writeBytes(
      dir.file("extra.st"),
      safetensors(
          R"({"w":{"dtype":"F32","shape":[3,3],"data_offsets":[0,36]},)"
          R"("b":{"dtype":"F32","shape":[3],"data_offsets":[36,48]},)"
          R"("conv.k":{"dtype":"F32","shape":[1],"data_offsets":[48,52]}})",
          std::string(52, '\0')));
  msg = loadError(dir.file("extra.st"));
  EXPECT_TRUE(contains(msg, "tensor 'conv.k' (f32 1), which model 'tiny' does "
                            "not have"))
      << msg;

  writeBytes(dir.file("dt.st"),
             safetensors(
                 R"({"w":{"dtype":"F64","shape":[3,3],"data_offsets":[0,72]}})",
                 std::string(72, '\0')));
  msg = loadError(dir.file("dt.st"));
  EXPECT_TRUE(contains(msg, "tensor 'w' is f64 3x3")) << msg;
}

TEST(CheckpointTest, MissingTensorsAndState) {
  TempDir dir;
  // Parameters only (as exported by another tool): fine for eval and predict,
  // not for resuming.
  std::string paramsOnly =
      safetensors(R"({"w":{"dtype":"F32","shape":[3,3],"data_offsets":[0,36]},)"
                  R"("b":{"dtype":"F32","shape":[3],"data_offsets":[36,48]}})",
                  std::string(48, '\0'));
  writeBytes(dir.file("p.st"), paramsOnly);
  Model m = tinyModel();
  Expected<CheckpointInfo> info =
      loadCheckpoint(dir.file("p.st"), m.manifest(), m.params, m.state, false);
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_FALSE(info->hasState);
  EXPECT_EQ(info->step, 0u);
  std::string msg = loadError(dir.file("p.st"), true);
  EXPECT_TRUE(contains(msg, "no tensor 'w.adam_m' (optimizer state f32 3x3"))
      << msg;
  writeBytes(dir.file("nob.st"),
             safetensors(
                 R"({"w":{"dtype":"F32","shape":[3,3],"data_offsets":[0,36]}})",
                 std::string(36, '\0')));
  msg = loadError(dir.file("nob.st"));
  EXPECT_TRUE(contains(msg, "no tensor 'b' (parameter f32 3")) << msg;
}

TEST(CheckpointTest, FailedLoadLeavesTensorsUntouched) {
  TempDir dir;
  Model m = tinyModel();
  m.initialize(3);
  float before = m.params[0].buffer.as<float>()[0];
  writeBytes(dir.file("nob.st"),
             safetensors(
                 R"({"w":{"dtype":"F32","shape":[3,3],"data_offsets":[0,36]}})",
                 std::string(36, '\0')));
  EXPECT_FALSE(loadCheckpoint(dir.file("nob.st"), m.manifest(), m.params,
                              m.state, false));
  EXPECT_EQ(m.params[0].buffer.as<float>()[0], before);
}

TEST(CheckpointTest, FailedWriteKeepsTheOldFile) {
  TempDir dir;
  Model m = tinyModel();
  ASSERT_FALSE(
      writeCheckpoint(dir.file("c.st"), m.manifest(), m.params, m.state, 1));
  std::string old = readBytes(dir.file("c.st"));
  Error e = writeCheckpoint(dir.file("missing/c.st"), m.manifest(), m.params,
                            m.state, 2);
  ASSERT_TRUE(e);
  EXPECT_TRUE(contains(e.message(), "missing/c.st")) << e.message();
  EXPECT_EQ(readBytes(dir.file("c.st")), old);
  EXPECT_EQ(listDir(dir.path()), (std::vector<std::string>{"c.st"}));
}

// What is at the path stays what it is (issue 15 #1): a symbolic link keeps
// pointing at its target, which holds the new checkpoint; a file keeps its
// permissions; a device is written, not replaced by a file.
TEST(CheckpointTest, WritesThroughLinksKeepModesAndSpareDevices) {
  TempDir dir;
  Model m = tinyModel();
  ASSERT_EQ(::mkdir(dir.file("real").c_str(), 0777), 0);
  ASSERT_FALSE(writeCheckpoint(dir.file("real/c.st"), m.manifest(), m.params,
                               m.state, 1));
  ASSERT_EQ(::chmod(dir.file("real/c.st").c_str(), 0600), 0);
  ASSERT_EQ(::symlink("real/c.st", dir.file("link.st").c_str()), 0);
  ASSERT_FALSE(
      writeCheckpoint(dir.file("link.st"), m.manifest(), m.params, m.state, 7));
  struct stat st;
  ASSERT_EQ(::lstat(dir.file("link.st").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  ASSERT_EQ(::stat(dir.file("real/c.st").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  Expected<CheckpointInfo> info = loadCheckpoint(
      dir.file("real/c.st"), m.manifest(), m.params, m.state, true);
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->step, 7);
  EXPECT_EQ(listDir(dir.path()), (std::vector<std::string>{"link.st", "real"}));
  // A dangling link is an error, not a new file beside it.
  ASSERT_EQ(::symlink("nowhere.st", dir.file("dangling.st").c_str()), 0);
  Error e = writeCheckpoint(dir.file("dangling.st"), m.manifest(), m.params,
                            m.state, 1);
  ASSERT_TRUE(e);
  EXPECT_TRUE(contains(e.message(), "symbolic link to a missing file"))
      << e.message();
  // Devices: /dev/null takes the bytes and stays a device; /dev/full fails.
  ASSERT_FALSE(
      writeCheckpoint("/dev/null", m.manifest(), m.params, m.state, 1));
  ASSERT_EQ(::stat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  if (::stat("/dev/full", &st) == 0) {
    Error full =
        writeCheckpoint("/dev/full", m.manifest(), m.params, m.state, 1);
    ASSERT_TRUE(full);
    EXPECT_TRUE(contains(full.message(), "No space left")) << full.message();
    ASSERT_EQ(::stat("/dev/full", &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode));
  }
}

TEST(CheckpointTest, TempFilesOfKilledWritersAreRemoved) {
  // A kill -9 during a checkpoint write leaves c.st.tmp-XXXXXX behind: the
  // next write (and the next `train` start) removes it, but not a file a live
  // writer holds locked, nor another path's.
  TempDir dir;
  writeBytes(dir.file("c.st.tmp-AAAAAA"), "stale");
  writeBytes(dir.file("c.st.tmp-BBBBBB"), "being written");
  writeBytes(dir.file("d.st.tmp-CCCCCC"), "another path's");
  int live = ::open(dir.file("c.st.tmp-BBBBBB").c_str(), O_RDONLY);
  ASSERT_GE(live, 0);
  ASSERT_EQ(::flock(live, LOCK_EX), 0);
  Model m = tinyModel();
  ASSERT_FALSE(
      writeCheckpoint(dir.file("c.st"), m.manifest(), m.params, m.state, 1));
  auto sorted = [](std::vector<std::string> names) {
    std::sort(names.begin(), names.end());
    return names;
  };
  EXPECT_EQ(
      sorted(listDir(dir.path())),
      (std::vector<std::string>{"c.st", "c.st.tmp-BBBBBB", "d.st.tmp-CCCCCC"}));
  ::close(live);
  removeStaleTemps(dir.file("c.st"));
  EXPECT_EQ(sorted(listDir(dir.path())),
            (std::vector<std::string>{"c.st", "d.st.tmp-CCCCCC"}));
}

TEST(CheckpointTest, EveryTruncationIsRejected) {
  TempDir dir;
  Model m = tinyModel();
  m.initialize(2);
  ASSERT_FALSE(
      writeCheckpoint(dir.file("c.st"), m.manifest(), m.params, m.state, 4));
  std::string bytes = readBytes(dir.file("c.st"));
  for (size_t n = 0; n < bytes.size(); ++n) {
    writeBytes(dir.file("t.st"), bytes.substr(0, n));
    Model fresh = tinyModel();
    EXPECT_FALSE(loadCheckpoint(dir.file("t.st"), fresh.manifest(),
                                fresh.params, fresh.state, true))
        << "accepted a checkpoint cut to " << n << " bytes";
  }
}

TEST(CheckpointTest, CorruptBytesNeverCrash) {
  TempDir dir;
  Model m = tinyModel();
  ASSERT_FALSE(
      writeCheckpoint(dir.file("c.st"), m.manifest(), m.params, m.state, 4));
  std::string bytes = readBytes(dir.file("c.st"));
  Rng rng(99);
  for (int trial = 0; trial < 300; ++trial) {
    std::string corrupt = bytes;
    for (int k = 0; k < 3; ++k)
      corrupt[size_t(rng.below(corrupt.size()))] = char(rng.below(256));
    writeBytes(dir.file("x.st"), corrupt);
    Model fresh = tinyModel();
    // Either a clean error or a load; never a crash (run under sanitizers).
    (void)loadCheckpoint(dir.file("x.st"), fresh.manifest(), fresh.params,
                         fresh.state, true);
  }
}

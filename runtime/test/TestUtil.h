//===- TestUtil.h - Helpers for the runtime tests -----------------------===//
//
// Temporary directories, writers for small IDX / .npy / .npz / gzip files built
// independently of the runtime's own code, a tiny instance of the hand-written
// model, and a way to run the command line in-process and capture its output.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_TEST_TESTUTIL_H
#define KILN_RUNTIME_TEST_TESTUTIL_H

#include "runtime/Model.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::rt::test {

/// A fresh directory, removed with its contents at destruction.
class TempDir {
public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;
  const std::string &path() const { return path_; }
  /// path() + "/" + name.
  std::string file(const std::string &name) const;

private:
  std::string path_;
};

void writeBytes(const std::string &path, const std::string &bytes);
std::string readBytes(const std::string &path);

/// An IDX file: magic 00 00 TYPE RANK, big-endian dims, then DATA (already
/// big-endian).
std::string idxBytes(uint8_t type, const std::vector<uint32_t> &dims,
                     const std::string &data);
/// A .npy file (format 1.0 unless VERSION is 2) with the given header fields.
std::string npyBytes(const std::string &descr, const std::string &shape,
                     const std::string &data, bool fortran = false,
                     int version = 1);
/// Raw little-endian bytes of VALUES.
template <typename T> std::string rawBytes(const std::vector<T> &values) {
  return std::string(reinterpret_cast<const char *>(values.data()),
                     values.size() * sizeof(T));
}
std::string f32Npy(const std::vector<float> &values, const std::string &shape);
std::string i32Npy(const std::vector<int32_t> &values,
                   const std::string &shape);
std::string gzipBytes(const std::string &data);

struct ZipMember {
  std::string name;
  std::string data;
  bool deflate = false;
  /// Write the local header as numpy does (sizes in a zip64 extra field).
  bool zip64Local = false;
};
std::string zipBytes(const std::vector<ZipMember> &members);

/// Softmax regression with batch 4, 3 features, 3 classes and data records
/// `tiny/{train,test}-{x,y}.npy` (relative: resolved via KILN_DATA_DIR).
ModelAbi tinyAbi();
/// The same architecture with 4 features under another name.
ModelAbi otherAbi();
/// Like tinyAbi, without data records and without an optimizer lr.
ModelAbi noDataAbi();
const char *tinyManifest();

/// Writes a separable 3-class data set for the tiny model into DIR/tiny/:
/// TRAIN training and TEST test examples.
void writeTinyData(const std::string &dir, int train = 24, int test = 12);

struct CliResult {
  int code = 0;
  std::string out, err;
};
/// Runs the command line `model ARGS...` in-process.
CliResult runCli(const std::vector<std::string> &args,
                 const ModelAbi &abi = tinyAbi());

/// Sets an environment variable for the scope's lifetime.
class ScopedEnv {
public:
  ScopedEnv(const char *name, const std::string &value);
  ~ScopedEnv();

private:
  std::string name_;
  bool had_ = false;
  std::string old_;
};

} // namespace kiln::rt::test

#endif // KILN_RUNTIME_TEST_TESTUTIL_H

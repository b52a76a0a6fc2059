//===- TestUtil.cpp - Helpers for the runtime tests ---------------------===//

#include "TestUtil.h"

#include "SoftmaxModel.h"
#include "runtime/Cli.h"

#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace kiln::rt::test {

TempDir::TempDir() {
  const char *tmp = std::getenv("TMPDIR");
  std::string templ =
      std::string(tmp && *tmp ? tmp : "/tmp") + "/kiln-rt-test-XXXXXX";
  char *p = ::mkdtemp(templ.data());
  if (!p)
    std::abort();
  path_ = p;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::file(const std::string &name) const {
  return path_ + "/" + name;
}

void writeBytes(const std::string &path, const std::string &bytes) {
  std::filesystem::create_directories(
      std::filesystem::path(path).parent_path());
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}

std::string readBytes(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string idxBytes(uint8_t type, const std::vector<uint32_t> &dims,
                     const std::string &data) {
  std::string out = {0, 0, char(type), char(dims.size())};
  for (uint32_t d : dims) {
    out += char(d >> 24);
    out += char(d >> 16);
    out += char(d >> 8);
    out += char(d);
  }
  return out + data;
}

std::string npyBytes(const std::string &descr, const std::string &shape,
                     const std::string &data, bool fortran, int version) {
  std::string dict = "{'descr': '" + descr +
                     "', 'fortran_order': " + (fortran ? "True" : "False") +
                     ", 'shape': " + shape + ", }";
  size_t prefix = version == 1 ? 10 : 12;
  while ((prefix + dict.size() + 1) % 64)
    dict += ' ';
  dict += '\n';
  std::string out = "\x93NUMPY";
  out += char(version);
  out += char(0);
  uint32_t n = uint32_t(dict.size());
  out += char(n & 0xFF);
  out += char(n >> 8);
  if (version != 1) {
    out += char(n >> 16);
    out += char(n >> 24);
  }
  return out + dict + data;
}

std::string f32Npy(const std::vector<float> &values, const std::string &shape) {
  return npyBytes("<f4", shape, rawBytes(values));
}

std::string i32Npy(const std::vector<int32_t> &values,
                   const std::string &shape) {
  return npyBytes("<i4", shape, rawBytes(values));
}

namespace {

std::string deflateRaw(const std::string &data, int windowBits) {
  z_stream zs;
  std::memset(&zs, 0, sizeof(zs));
  deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, windowBits, 8,
               Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, uLong(data.size())) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(data.data()));
  zs.avail_in = uInt(data.size());
  zs.next_out = reinterpret_cast<Bytef *>(out.data());
  zs.avail_out = uInt(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

void put16(std::string &s, uint32_t v) {
  s += char(v & 0xFF);
  s += char((v >> 8) & 0xFF);
}
void put32(std::string &s, uint32_t v) {
  put16(s, v & 0xFFFF);
  put16(s, v >> 16);
}
void put64(std::string &s, uint64_t v) {
  put32(s, uint32_t(v));
  put32(s, uint32_t(v >> 32));
}

} // namespace

std::string gzipBytes(const std::string &data) {
  return deflateRaw(data, 15 + 16);
}

std::string zipBytes(const std::vector<ZipMember> &members) {
  std::string out, central;
  for (const ZipMember &m : members) {
    std::string body = m.deflate ? deflateRaw(m.data, -15) : m.data;
    uint32_t crc =
        uint32_t(crc32(0, reinterpret_cast<const Bytef *>(m.data.data()),
                       uInt(m.data.size())));
    uint32_t offset = uint32_t(out.size());
    uint16_t method = m.deflate ? 8 : 0;
    std::string extra;
    if (m.zip64Local) {
      put16(extra, 1);
      put16(extra, 16);
      put64(extra, m.data.size());
      put64(extra, body.size());
    }
    put32(out, 0x04034b50);
    put16(out, m.zip64Local ? 45 : 20);
    put16(out, 0);
    put16(out, method);
    put32(out, 0);
    put32(out, crc);
    put32(out, m.zip64Local ? 0xFFFFFFFF : uint32_t(body.size()));
    put32(out, m.zip64Local ? 0xFFFFFFFF : uint32_t(m.data.size()));
    put16(out, uint32_t(m.name.size()));
    put16(out, uint32_t(extra.size()));
    out += m.name + extra + body;

    put32(central, 0x02014b50);
    put16(central, 20);
    put16(central, 20);
    put16(central, 0);
    put16(central, method);
    put32(central, 0);
    put32(central, crc);
    put32(central, uint32_t(body.size()));
    put32(central, uint32_t(m.data.size()));
    put16(central, uint32_t(m.name.size()));
    put16(central, 0);
    put16(central, 0);
    put16(central, 0);
    put16(central, 0);
    put32(central, 0);
    put32(central, offset);
    central += m.name;
  }
  uint32_t cdOffset = uint32_t(out.size());
  out += central;
  put32(out, 0x06054b50);
  put16(out, 0);
  put16(out, 0);
  put16(out, uint32_t(members.size()));
  put16(out, uint32_t(members.size()));
  put32(out, uint32_t(central.size()));
  put32(out, cdOffset);
  put16(out, 0);
  return out;
}

namespace {

struct TinyConfig {
  static constexpr int batch = 4;
  static constexpr int features = 3;
  static constexpr int classes = 3;
  static const char *name() { return "tiny"; }
  static const char *lr() { return "0.1"; }
  static const char *epochs() { return "3"; }
  static const char *dataRecords() {
    return "data train image npy tiny/train-x.npy\n"
           "data train label npy tiny/train-y.npy\n"
           "data test image npy tiny/test-x.npy\n"
           "data test label npy tiny/test-y.npy\n"
           "future-record with fields the runtime does not know\n";
  }
};

struct OtherConfig : TinyConfig {
  static constexpr int features = 4;
  static const char *name() { return "other"; }
};

struct NoDataConfig : TinyConfig {
  static const char *name() { return "nodata"; }
  static const char *dataRecords() { return ""; }
};

template <typename Config> ModelAbi abiOf() {
  using M = SoftmaxModel<Config>;
  ModelAbi abi;
  abi.manifest = M::manifest();
  abi.entries = M::entries();
  return abi;
}

} // namespace

ModelAbi tinyAbi() { return abiOf<TinyConfig>(); }
ModelAbi otherAbi() { return abiOf<OtherConfig>(); }
ModelAbi noDataAbi() {
  // Drop the lr from the optimizer record too.
  static std::string text = [] {
    std::string t = SoftmaxModel<NoDataConfig>::manifest();
    size_t at = t.find(" lr=0.1");
    t.erase(at, 7);
    return t;
  }();
  ModelAbi abi = abiOf<NoDataConfig>();
  abi.manifest = text.c_str();
  return abi;
}
const char *tinyManifest() { return SoftmaxModel<TinyConfig>::manifest(); }

void writeTinyData(const std::string &dir, int train, int test) {
  auto make = [](int n, int salt, std::vector<float> &x,
                 std::vector<int32_t> &y) {
    for (int i = 0; i < n; ++i) {
      int label = (i * 7 + salt) % 3;
      y.push_back(label);
      for (int d = 0; d < 3; ++d)
        x.push_back((d == label ? 2.0f : 0.0f) +
                    0.1f * float(((i * 13 + d * 5 + salt) % 7) - 3));
    }
  };
  std::vector<float> x, tx;
  std::vector<int32_t> y, ty;
  make(train, 1, x, y);
  make(test, 2, tx, ty);
  writeBytes(dir + "/tiny/train-x.npy",
             f32Npy(x, "(" + std::to_string(train) + ", 3)"));
  writeBytes(dir + "/tiny/train-y.npy",
             i32Npy(y, "(" + std::to_string(train) + ",)"));
  writeBytes(dir + "/tiny/test-x.npy",
             f32Npy(tx, "(" + std::to_string(test) + ", 3)"));
  writeBytes(dir + "/tiny/test-y.npy",
             i32Npy(ty, "(" + std::to_string(test) + ",)"));
}

CliResult runCli(const std::vector<std::string> &args, const ModelAbi &abi) {
  char *outBuf = nullptr, *errBuf = nullptr;
  size_t outSize = 0, errSize = 0;
  FILE *out = open_memstream(&outBuf, &outSize);
  FILE *err = open_memstream(&errBuf, &errSize);
  std::vector<std::string> argv = {"./model"};
  argv.insert(argv.end(), args.begin(), args.end());
  CliResult r;
  r.code = runMain(argv, abi, out, err);
  std::fclose(out);
  std::fclose(err);
  r.out.assign(outBuf, outSize);
  r.err.assign(errBuf, errSize);
  std::free(outBuf);
  std::free(errBuf);
  return r;
}

ScopedEnv::ScopedEnv(const char *name, const std::string &value) : name_(name) {
  if (const char *old = std::getenv(name)) {
    had_ = true;
    old_ = old;
  }
  ::setenv(name, value.c_str(), 1);
}

ScopedEnv::~ScopedEnv() {
  if (had_)
    ::setenv(name_.c_str(), old_.c_str(), 1);
  else
    ::unsetenv(name_.c_str());
}

} // namespace kiln::rt::test

//===- Files.cpp - Reading whole files, atomic writes, data path lookup --===//

#include "runtime/Files.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <optional>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace kiln::rt {

namespace {

std::string errnoText() { return std::strerror(errno); }

std::string parentDir(const std::string &path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos)
    return ".";
  if (slash == 0)
    return "/";
  return path.substr(0, slash);
}

} // namespace

bool endsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() &&
         text.substr(text.size() - suffix.size()) == suffix;
}

Expected<std::string> readFile(const std::string &path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return makeError("cannot read '{}': {}", path, errnoText());
  struct stat st;
  if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    int err = S_ISDIR(st.st_mode) ? EISDIR : errno;
    ::close(fd);
    return makeError("cannot read '{}': {}", path, std::strerror(err));
  }
  std::string data;
  if (S_ISREG(st.st_mode))
    data.reserve(size_t(st.st_size));
  char chunk[1 << 16];
  while (true) {
    ssize_t n = ::read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      std::string msg = errnoText();
      ::close(fd);
      return makeError("cannot read '{}': {}", path, msg);
    }
    if (n == 0)
      break;
    data.append(chunk, size_t(n));
  }
  ::close(fd);
  return data;
}

Expected<std::string> readFileMaybeGzip(const std::string &path) {
  return readFileMaybeGzip(path, SIZE_MAX, false);
}

Expected<std::string> readFileMaybeGzip(const std::string &path, size_t limit,
                                        bool truncate) {
  if (!endsWith(path, ".gz"))
    return readFile(path);
  // Read the compressed bytes ourselves (clear errors for missing files), then
  // inflate with gzip header detection (windowBits 15 + 16).
  Expected<std::string> compressed = readFile(path);
  if (!compressed)
    return compressed.takeError();
  if (compressed->size() > UINT_MAX)
    return makeError("cannot decompress '{}': larger than 4 GiB", path);
  z_stream zs;
  std::memset(&zs, 0, sizeof(zs));
  if (inflateInit2(&zs, 15 + 16) != Z_OK)
    return makeError("cannot decompress '{}': zlib init failed", path);
  zs.next_in = reinterpret_cast<Bytef *>(compressed->data());
  zs.avail_in = uInt(compressed->size());
  std::string out;
  size_t inLeft = compressed->size();
  int ret = Z_OK;
  bool overLimit = false;
  while (true) {
    if (out.size() > limit) {
      overLimit = true;
      break;
    }
    // One byte past the limit tells "exactly limit" from "more".
    size_t room = limit - out.size();
    size_t chunk = std::max<size_t>(out.size(), 1 << 20);
    if (room < chunk)
      chunk = room + 1;
    size_t old = out.size();
    out.resize(old + chunk);
    zs.next_out = reinterpret_cast<Bytef *>(out.data() + old);
    zs.avail_out = uInt(std::min<size_t>(chunk, 1u << 30));
    size_t availOut = zs.avail_out;
    ret = inflate(&zs, Z_NO_FLUSH);
    out.resize(old + (availOut - zs.avail_out));
    inLeft = zs.avail_in;
    if (ret == Z_STREAM_END) {
      // Concatenated gzip members (as `cat a.gz b.gz`) are one stream.
      if (inLeft == 0)
        break;
      if (inflateReset(&zs) != Z_OK)
        break;
      continue;
    }
    if (ret != Z_OK && ret != Z_BUF_ERROR)
      break;
    if (ret == Z_BUF_ERROR && zs.avail_in == 0)
      break; // no progress possible: the input ended mid-stream
  }
  inflateEnd(&zs);
  if (overLimit) {
    if (!truncate)
      return makeError("'{}' inflates to more than {} bytes", path, limit);
    out.resize(limit);
    return out;
  }
  if (ret == Z_STREAM_END)
    return out;
  if (ret == Z_OK || ret == Z_BUF_ERROR)
    return makeError("'{}' is truncated (the gzip stream ends early)", path);
  return makeError("'{}' is not a valid gzip file ({})", path,
                   zs.msg ? zs.msg : "corrupt data");
}

bool fileExists(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && !S_ISDIR(st.st_mode);
}

namespace {

/// The file a symbolic link at `path` leads to: nullopt if `path` is not a
/// link, empty if the link dangles.
std::optional<std::string> linkTarget(const std::string &path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0 || !S_ISLNK(st.st_mode))
    return std::nullopt;
  char resolved[PATH_MAX];
  if (!::realpath(path.c_str(), resolved))
    return std::string();
  return std::string(resolved);
}

} // namespace

Error checkWritableLocation(const std::string &path, std::string_view what) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode))
      return makeError("{} '{}' is a directory", what, path);
    // A device or pipe is written in place (AtomicFile).
    if (!S_ISREG(st.st_mode)) {
      if (::access(path.c_str(), W_OK) != 0)
        return makeError("cannot write {} '{}': {}", what, path, errnoText());
      return Error::success();
    }
  }
  // A symbolic link's target is replaced in its own folder.
  std::optional<std::string> target = linkTarget(path);
  std::string dir = parentDir(target && !target->empty() ? *target : path);
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return makeError("cannot write {} '{}': folder '{}' does not exist", what,
                     path, dir);
  if (::access(dir.c_str(), W_OK) != 0)
    return makeError("cannot write {} '{}': folder '{}' is not writable", what,
                     path, dir);
  return Error::success();
}

void removeStaleTemps(const std::string &path) {
  std::string dir = parentDir(path);
  size_t slash = path.rfind('/');
  std::string prefix =
      (slash == std::string::npos ? path : path.substr(slash + 1)) + ".tmp-";
  DIR *d = ::opendir(dir.c_str());
  if (!d)
    return;
  while (const dirent *entry = ::readdir(d)) {
    std::string_view name = entry->d_name;
    // mkstemp's six characters after the prefix.
    if (name.size() != prefix.size() + 6 ||
        name.substr(0, prefix.size()) != prefix)
      continue;
    std::string temp = dir + "/" + std::string(name);
    int fd = ::open(temp.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
      continue;
    // A live writer holds its lock; a file nobody locks was left by a writer
    // that died before it could commit or remove it.
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0)
      ::unlink(temp.c_str());
    ::close(fd);
  }
  ::closedir(d);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) {
    ::close(fd_);
    if (!direct_)
      ::unlink(tempPath_.c_str());
  }
}

Error AtomicFile::open(const std::string &path) {
  path_ = path;
  // Through a symbolic link to its target (which must exist): the link stays.
  std::string target = path;
  if (std::optional<std::string> resolved = linkTarget(path)) {
    if (resolved->empty())
      return makeError("cannot write '{}': it is a symbolic link to a missing "
                       "file",
                       path);
    target = *resolved;
  }
  struct stat st;
  bool exists = ::stat(target.c_str(), &st) == 0;
  if (exists && S_ISDIR(st.st_mode))
    return makeError("cannot write '{}': it is a directory", path);
  if (exists && !S_ISREG(st.st_mode)) {
    // A device or a pipe: written in place, never replaced by a file.
    fd_ = ::open(target.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd_ < 0)
      return makeError("cannot write '{}': {}", path, errnoText());
    direct_ = true;
    return Error::success();
  }
  removeStaleTemps(target);
  std::string templ = target + ".tmp-XXXXXX";
  fd_ = ::mkstemp(templ.data());
  if (fd_ < 0)
    return makeError("cannot write '{}': {}", path, errnoText());
  tempPath_ = templ;
  path_ = target;
  // Held until the file is committed or removed: removeStaleTemps leaves it.
  ::flock(fd_, LOCK_EX);
  // mkstemp creates the file 0600: give it the permissions of the file it
  // replaces, else those of a new file.
  mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(fd_, exists ? st.st_mode & 07777 : 0666 & ~mask);
  return Error::success();
}

Error AtomicFile::write(const void *data, size_t size) {
  const char *p = static_cast<const char *>(data);
  while (size > 0) {
    ssize_t n = ::write(fd_, p, size);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return makeError("cannot write '{}': {}", path_, errnoText());
    p += n;
    size -= size_t(n);
  }
  return Error::success();
}

Error AtomicFile::commit() {
  if (direct_) {
    int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0)
      return makeError("cannot write '{}': {}", path_, errnoText());
    return Error::success();
  }
  if (::fsync(fd_) != 0)
    return makeError("cannot write '{}': {}", path_, errnoText());
  int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0 || ::rename(tempPath_.c_str(), path_.c_str()) != 0) {
    std::string msg = errnoText();
    ::unlink(tempPath_.c_str());
    return makeError("cannot write '{}': {}", path_, msg);
  }
  return Error::success();
}

Error writeFileAtomic(const std::string &path, std::string_view text) {
  AtomicFile file;
  if (Error e = file.open(path))
    return e;
  if (Error e = file.write(text))
    return e;
  return file.commit();
}

Expected<std::string> resolveDataPath(const std::string &path, bool tryGz,
                                      std::string_view what) {
  std::vector<std::string> bases;
  const char *dataDir = std::getenv("KILN_DATA_DIR");
  bool absolute = !path.empty() && path[0] == '/';
  if (absolute) {
    bases.push_back("");
  } else {
    bases.push_back("");
    if (dataDir && *dataDir)
      bases.push_back(std::string(dataDir) + "/");
  }
  for (const std::string &base : bases) {
    std::string candidate = base + path;
    if (fileExists(candidate))
      return candidate;
    if (tryGz && !endsWith(path, ".gz") && fileExists(candidate + ".gz"))
      return candidate + ".gz";
  }
  // A file that exists but is a directory, or a dangling link, reads better
  // as the reader's own error.
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0)
    return path;
  std::string where;
  if (absolute)
    where = "";
  else if (dataDir && *dataDir)
    where = fmt::format(" (looked in the current directory and in "
                        "KILN_DATA_DIR={})",
                        dataDir);
  else
    where = " (looked in the current directory; set KILN_DATA_DIR to the "
            "folder that holds the datasets, e.g. the data/ folder "
            "scripts/setup-data fills)";
  return makeError("{}: file '{}' not found{}", what, path, where);
}

} // namespace kiln::rt

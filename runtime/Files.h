//===- Files.h - Reading whole files, atomic writes, data path lookup ----===//
//
// File I/O shared by the data readers, checkpoints and metrics: whole-file
// reads (transparently gunzipping `.gz` files), atomic writes (a temporary file
// in the target's folder, renamed over the target only once complete), and the
// search for relative data paths in the current directory and $KILN_DATA_DIR.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_FILES_H
#define KILN_RUNTIME_FILES_H

#include "runtime/Error.h"

#include <cstddef>
#include <string>
#include <string_view>

namespace kiln::rt {

/// The whole file as bytes. Errors: `cannot read 'x': No such file...`.
Expected<std::string> readFile(const std::string &path);
/// As readFile, but a path ending in `.gz` is decompressed; a truncated or
/// corrupt gzip stream is an error.
Expected<std::string> readFileMaybeGzip(const std::string &path);
/// As readFileMaybeGzip, inflating at most `limit` bytes of a `.gz` file:
/// more is an error when `truncate` is false (a gzip bomb is refused before
/// it fills memory), else the first `limit` bytes are returned.
Expected<std::string> readFileMaybeGzip(const std::string &path, size_t limit,
                                        bool truncate);

bool endsWith(std::string_view text, std::string_view suffix);
bool fileExists(const std::string &path);
/// An error unless PATH's folder exists (so that a later write can succeed).
Error checkWritableLocation(const std::string &path, std::string_view what);

/// Removes the `PATH.tmp-XXXXXX` files that writers of PATH killed before
/// they could commit (a kill -9 during a checkpoint) left behind; a live
/// writer's file is locked and stays.
void removeStaleTemps(const std::string &path);

/// Writes a file atomically: data goes to `PATH.tmp-XXXXXX` in the same folder,
/// which commit() flushes, syncs and renames over PATH. A file that is never
/// committed is removed, leaving any existing PATH untouched.
///
/// What is at PATH stays what it is: a symbolic link is followed (its target
/// is replaced, in the target's folder, and the link stays), an existing
/// file's permissions are kept, and a device or pipe (`/dev/null`) is written
/// directly, not replaced by a file; a directory is an error.
class AtomicFile {
public:
  AtomicFile() = default;
  AtomicFile(const AtomicFile &) = delete;
  AtomicFile &operator=(const AtomicFile &) = delete;
  ~AtomicFile();

  Error open(const std::string &path);
  Error write(const void *data, size_t size);
  Error write(std::string_view text) { return write(text.data(), text.size()); }
  Error commit();

private:
  std::string path_, tempPath_;
  int fd_ = -1;
  /// Writing straight into a device or pipe: nothing to rename.
  bool direct_ = false;
};

/// Writes TEXT to PATH atomically.
Error writeFileAtomic(const std::string &path, std::string_view text);

/// Finds a data file. An absolute path is taken as is; a relative one is looked
/// up in the current directory, then in $KILN_DATA_DIR. With tryGz, `PATH.gz`
/// is accepted where PATH is missing. WHAT names the file in the error
/// (`train data for input 'image'`).
Expected<std::string> resolveDataPath(const std::string &path, bool tryGz,
                                      std::string_view what);

} // namespace kiln::rt

#endif // KILN_RUNTIME_FILES_H

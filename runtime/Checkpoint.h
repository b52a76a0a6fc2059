//===- Checkpoint.h - Parameters and optimizer state as safetensors -----===//
//
// Checkpoints are safetensors files (an 8-byte little-endian header length, a
// JSON header naming each tensor's dtype, shape and byte range, then the raw
// little-endian data), readable by Python's safetensors and similar tools.
// Parameters and optimizer state are stored under their manifest names; the
// header's __metadata__ records kiln.model, kiln.step, kiln.batch and
// kiln.format ("1").
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_CHECKPOINT_H
#define KILN_RUNTIME_CHECKPOINT_H

#include "runtime/Error.h"
#include "runtime/Manifest.h"
#include "runtime/Tensor.h"
#include "runtime/Text.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace kiln::rt {

/// One tensor of a safetensors file, any dtype.
struct SafetensorsEntry {
  std::string name;
  std::string dtype; ///< safetensors name: F32, I64, BF16, ...
  Shape shape;
  uint64_t begin = 0, end = 0; ///< byte range within the data section
};

/// A safetensors file read and validated (structure only).
struct SafetensorsFile {
  std::vector<SafetensorsEntry> entries; ///< in header order
  std::vector<std::pair<std::string, std::string>> metadata;
  std::string bytes;    ///< the whole file
  size_t dataStart = 0; ///< offset of the data section in bytes

  const SafetensorsEntry *find(const std::string &name) const;
  const std::string *findMetadata(const std::string &key) const;
  const char *data(const SafetensorsEntry &e) const {
    return bytes.data() + dataStart + e.begin;
  }
};

/// Reads and validates PATH: header length, JSON, dtypes, offsets in range,
/// sizes matching shapes, no overlaps.
Expected<SafetensorsFile> readSafetensors(const std::string &path);

/// Writes TENSORS with METADATA to PATH atomically.
Error writeSafetensors(
    const std::string &path, const std::vector<const Tensor *> &tensors,
    const std::vector<std::pair<std::string, std::string>> &metadata);

/// Writes a training checkpoint: params, then state, and kiln.* metadata;
/// VOCAB (the characters of a text source, UTF-8) as kiln.vocab and CLASSES
/// (the class names of labels read from text, UTF-8 lines) as kiln.classes
/// if not empty; BATCH (the global batch of the steps STEP counts: the
/// model's batch times a data-parallel job's processes) as kiln.batch if not
/// 0.
Error writeCheckpoint(const std::string &path, const Manifest &manifest,
                      const std::vector<Tensor> &params,
                      const std::vector<Tensor> &state, uint64_t step,
                      const std::string &vocab = {},
                      const std::string &classes = {}, uint64_t batch = 0);

struct CheckpointInfo {
  std::string model;  ///< kiln.model, or empty
  uint64_t step = 0;  ///< kiln.step, or 0
  uint64_t batch = 0; ///< kiln.batch (the global batch of a step), or 0
  bool hasState = false;
  std::string vocab;   ///< kiln.vocab, or empty
  std::string classes; ///< kiln.classes, or empty
};

/// Loads PATH into PARAMS (and STATE, which is required when REQUIRESTATE,
/// else loaded if present), after checking every tensor's name, dtype and
/// shape against the manifest. The first mismatch is the error.
Expected<CheckpointInfo> loadCheckpoint(const std::string &path,
                                        const Manifest &manifest,
                                        std::vector<Tensor> &params,
                                        std::vector<Tensor> &state,
                                        bool requireState);

/// The vocabulary a checkpoint's character ids mean (an error if it holds
/// none: it was not trained on text).
Expected<Vocabulary> checkpointVocabulary(const std::string &checkpoint,
                                          const CheckpointInfo &info);
/// The class names of a checkpoint's labels read from text (none if it was
/// trained on other labels).
Expected<ClassNames> checkpointClasses(const std::string &checkpoint,
                                       const CheckpointInfo &info);

} // namespace kiln::rt

#endif // KILN_RUNTIME_CHECKPOINT_H

//===- Dataset.h - Model inputs loaded from data files ----------------===//
//
// A Dataset holds, for each model input it feeds, every example converted to
// the input's element type (with the `scale` option applied to float inputs),
// checked against the input's per-example shape, and gathers batches from it.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_DATASET_H
#define KILN_RUNTIME_DATASET_H

#include "runtime/Data.h"
#include "runtime/Error.h"
#include "runtime/Manifest.h"
#include "runtime/Text.h"

#include <string>
#include <vector>

namespace kiln::rt {

/// Where one input's data comes from.
struct DataSource {
  std::string input;
  contract::DataFormat format = contract::DataFormat::Idx;
  std::string path; ///< as written; resolved when loading
  std::string key;  ///< the array of an .npz file (empty: the first)
  Options options;  ///< scale=X, header=true|false
};

/// The format a path's extension implies: .npy, .npz, .csv, .txt (text), .tsv
/// (pairs; each optionally .gz), otherwise idx.
contract::DataFormat formatFromPath(const std::string &path);
/// A source from a command line `INPUT=PATH` (`PATH.npz:KEY` selects an array).
DataSource sourceFromPath(const std::string &input, const std::string &path);
/// A source from a manifest `data` record.
DataSource sourceFromSpec(const DataSpec &spec);
/// A command-line source for an input the manifest feeds from SPEC: where its
/// path's extension is ambiguous it is read in SPEC's format (a .txt as
/// lines, a .tsv as a list of WAV files), and with SPEC's options (scale=,
/// rate=, ...) when the formats then agree.
void adoptSpec(DataSource &source, const DataSpec &spec);

/// One input's examples in its element type.
struct InputData {
  const TensorSpec *spec = nullptr;
  std::string file;            ///< the resolved path, for messages
  int64_t exampleElements = 0; ///< the input's size without the batch dimension
  size_t exampleBytes = 0;
  std::string bytes;
  /// Whether the values are ids of the dataset's characters (text, lines and
  /// pairs columns read as text), not class labels or numbers.
  bool characterIds = false;
};

struct Dataset {
  int64_t examples = 0;
  std::vector<InputData> inputs;
  /// The characters of a text source's ids (empty for other sources).
  Vocabulary vocab;
  /// The classes of labels read from text (empty for other sources).
  ClassNames classes;
  /// What loading left out, for the console (`lines` longer than fit).
  std::vector<std::string> notes;

  /// Copies examples INDICES[0..n) of each input into DEST[input] (a buffer
  /// of the input's full shape); rows past n are zero-filled.
  void gather(const int64_t *indices, int64_t n,
              const std::vector<void *> &dest) const;
  /// Whether the model's loss predicts characters (a cross-entropy's labels
  /// are character ids): its loss per character converts to bits/char.
  bool predictsCharacters(const Manifest &manifest) const;
};

/// Loads the inputs SOURCES name (one source per input), checking each
/// against its input's spec and all for the same number of examples. SPLIT
/// names the data in messages (`train`, `test`, `predict`). Text is encoded
/// in `vocab` when given (a checkpoint's: its ids mean what the model
/// learned), else in the vocabulary of the file's training part; class names
/// read from text likewise take the ids of `classes` when given.
Expected<Dataset> loadDataset(const Manifest &manifest,
                              const std::vector<DataSource> &sources,
                              const std::string &split,
                              const Vocabulary *vocab = nullptr,
                              const ClassNames *classes = nullptr);

/// Converts an array (read from FILE) for INPUT: per-example shape, element
/// type, finiteness; SCALE multiplies values of float inputs.
Expected<InputData> convertArray(const Array &array, const TensorSpec &input,
                                 const std::string &file,
                                 std::optional<double> scale);

} // namespace kiln::rt

#endif // KILN_RUNTIME_DATASET_H

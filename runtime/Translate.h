//===- Translate.h - The translate command: greedy and beam search
//---------===//
//
// `./translate translate --checkpoint F "Cannot open file"` decodes sentences
// with the model's translate entry (a `translate` block: the scores of each
// next target token given a source and the target so far). Each call scores
// every position of a batch of targets; the decoder reads the scores at the
// position it extends, appends a token and calls again, until every sentence
// has ended with the boundary token or filled the target's length. With
// `--input FILE.tsv` it translates the first column of a file and, where the
// file has a second (the references), reports BLEU and chrF (runtime/Bleu.h)
// beside those of copying the source unchanged.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_TRANSLATE_H
#define KILN_RUNTIME_TRANSLATE_H

#include "runtime/Console.h"
#include "runtime/Error.h"
#include "runtime/Model.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::rt {

struct TranslateOptions {
  std::string checkpoint;
  /// Sentences from the command line, translated one a line.
  std::vector<std::string> sentences;
  /// A tab-separated file: sources in its first column, references in its
  /// second (optional).
  std::string input;
  /// Where to write the translations of `input`, one a line (empty: none).
  std::string output;
  /// Hypotheses kept per sentence; 1 is greedy decoding.
  int64_t beam = 1;
  /// Translate only the first `limit` rows of `input` (0: all).
  int64_t limit = 0;
  /// Print the scores as one JSON object.
  bool json = false;
};

/// The most hypotheses --beam may keep.
inline constexpr int64_t kMaxBeam = 64;

Error runTranslate(Model &model, const TranslateOptions &options,
                   const Console &console);

} // namespace kiln::rt

#endif // KILN_RUNTIME_TRANSLATE_H

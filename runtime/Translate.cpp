//===- Translate.cpp - The translate command: greedy and beam search -----===//

#include "runtime/Translate.h"

#include "runtime/Bleu.h"
#include "runtime/Files.h"
#include "runtime/Json.h"
#include "runtime/Sample.h"
#include "runtime/Text.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

namespace kiln::rt {

namespace {

/// The translate entry and the buffers decoding drives, in either form
/// (runtime/Contract.h): recomputing the whole target at each call, or one
/// position a call on the layers' caches after the encode entry.
struct Translator {
  Model *model = nullptr;
  const Vocabulary *vocab = nullptr;
  /// The source sentences: the translate entry's first input, or (cached)
  /// the encode entry's.
  Tensor *source = nullptr;
  /// Recomputing: the targets so far [batch, length]. Cached: the last
  /// token of each row [batch, 1].
  Tensor *target = nullptr;
  const Tensor *scores = nullptr;
  bool cached = false;
  /// Cached: each encode output and the translate input of its name.
  std::vector<std::pair<const Tensor *, Tensor *>> feeds;
  int64_t batch = 0, sourceLength = 0, classes = 0;
  /// The most target positions a translation may use (its tokens and the
  /// end boundary).
  int64_t targetLength = 0;
  uint64_t calls = 0;

  void run(const char *entry) {
    model->setNoise(++calls, 0);
    model->run(entry);
  }
  int32_t *targetRow(int64_t r) {
    return static_cast<int32_t *>(target->data()) + r * target->shape[1];
  }
  /// The scores of the token after position t of row r.
  const float *scoresAt(int64_t r, int64_t t) const {
    return static_cast<const float *>(scores->data()) +
           (cached ? r : r * targetLength + t) * classes;
  }
};

/// The translate entry's buffers, checked; `vocab` is set once the
/// checkpoint is loaded.
Expected<Translator> makeTranslator(Model &model) {
  const Manifest &m = model.manifest();
  const EntrySpec *entry = m.findEntry(contract::kTranslateEntry);
  if (!entry)
    return makeError("model '{}' has no translate entry: add a 'translate {} "
                     "{{ ... }}' block to its .kiln file",
                     m.model, m.model);
  Translator t;
  t.model = &model;
  t.cached = entry->kind == contract::EntryKind::Step;
  std::vector<Tensor *> inputs;
  for (const EntryArg &arg : entry->args) {
    if (arg.role == contract::Role::Input)
      inputs.push_back(model.findInput(arg.name));
    else if (arg.role == contract::Role::Output && !t.scores)
      t.scores = model.findOutput(arg.name);
  }
  auto ids = [](const Tensor *x) {
    return x->type == DType::I32 && x->shape.size() == 2;
  };
  if (!t.cached) {
    if (inputs.size() != 2 || !ids(inputs[0]) || !ids(inputs[1]) ||
        inputs[0]->shape[0] != inputs[1]->shape[0] || inputs[1]->shape[1] < 2)
      return makeError("the translate entry of model '{}' must take two "
                       "inputs, the source and the target so far, each i32 "
                       "[batch, length] of token ids",
                       m.model);
    t.source = inputs[0];
    t.target = inputs[1];
    t.targetLength = t.target->shape[1];
  } else {
    // The step form: the last token, and the encode entry's outputs by name.
    const EntrySpec *encode = m.findEntry(contract::kEncodeEntry);
    if (!encode)
      return makeError("the translate block of model '{}' has cached layers "
                       "but the model has no encode entry: add an 'encode {} "
                       "{{ ... }}' block whose outputs feed it",
                       m.model, m.model);
    for (Tensor *in : inputs)
      if (ids(in) && in->shape[1] == 1 && !t.target)
        t.target = in;
    std::vector<std::string> encodeInputs = encode->inputNames();
    if (encodeInputs.size() == 1)
      t.source = model.findInput(encodeInputs[0]);
    if (!t.target || !t.source || !ids(t.source))
      return makeError("model '{}': the cached translate entry must take the "
                       "last token (i32 [batch, 1]) and the encode entry the "
                       "source sentences (i32 [batch, length])",
                       m.model);
    for (Tensor *in : inputs) {
      if (in == t.target)
        continue;
      const Tensor *out = encode->takes(contract::Role::Output, in->name)
                              ? model.findOutput(in->name)
                              : nullptr;
      if (!out || out->type != in->type || out->shape != in->shape)
        return makeError("input '{}' ({}) of the translate entry of model "
                         "'{}' must be an output of its encode entry of the "
                         "same name and shape",
                         in->name, formatShape(in->shape), m.model);
      t.feeds.emplace_back(out, in);
    }
    t.targetLength = m.generateContext;
  }
  t.batch = t.source->shape[0];
  t.sourceLength = t.source->shape[1];
  int64_t scored = t.cached ? 1 : t.targetLength;
  if (!t.scores || t.scores->type != DType::F32 || t.scores->shape.empty() ||
      t.scores->shape[0] != t.batch || t.target->shape[0] != t.batch ||
      t.scores->numElements() % (t.batch * scored) != 0 || t.targetLength < 1)
    return makeError("the translate entry of model '{}' must return the "
                     "scores of the next target token{}, f32 [{}, {}"
                     "vocabulary]",
                     m.model, t.cached ? "" : " at each position", t.batch,
                     t.cached ? "" : fmt::format("{}, ", t.targetLength));
  t.classes = t.scores->numElements() / (t.batch * scored);
  return t;
}

/// A target sentence in the making.
struct Hypothesis {
  std::vector<int32_t> tokens; ///< after the start boundary
  double logProb = 0;
  /// The row of the hypothesis it extends (cached: whose caches it takes).
  int64_t parent = 0;
};

/// A finished hypothesis, ranked by its log-probability per token (the end
/// boundary counts as one), as fairseq's length penalty of 1 does.
struct Finished {
  std::vector<int32_t> tokens;
  double score;
};

/// The log-softmax of `scores` over the first `n` ids.
void logSoftmax(const float *scores, int64_t n, std::vector<double> &out) {
  out.resize(size_t(n));
  double top = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < n; ++i)
    top = std::max(top, double(scores[i]));
  double total = 0;
  for (int64_t i = 0; i < n; ++i)
    total += std::exp(double(scores[i]) - top);
  double shift = top + std::log(total);
  for (int64_t i = 0; i < n; ++i)
    out[size_t(i)] = double(scores[i]) - shift;
}

/// Row r of every carry takes row from[r]'s values (the caches of the
/// hypothesis a beam row now extends).
void reorderCarries(Model &model, const std::vector<int64_t> &from) {
  std::string copy;
  for (Tensor &carry : model.carries) {
    size_t rowBytes = carry.numBytes() / from.size();
    const char *data = static_cast<const char *>(carry.data());
    copy.assign(data, carry.numBytes());
    for (size_t r = 0; r < from.size(); ++r)
      if (from[r] != int64_t(r))
        std::memcpy(static_cast<char *>(carry.data()) + r * rowBytes,
                    copy.data() + size_t(from[r]) * rowBytes, rowBytes);
  }
}

/// Beam search over `beam` rows per sentence for SOURCES (encoded source
/// rows), as many sentences a call as the batch holds; beam 1 is greedy
/// decoding. Padding is never chosen; the boundary ends a sentence.
std::vector<std::vector<int32_t>>
decode(Translator &tr, const std::vector<std::vector<int32_t>> &sources,
       int64_t beam) {
  std::vector<std::vector<int32_t>> results(sources.size());
  int64_t groups = tr.batch / beam;
  int64_t vocab = int64_t(tr.vocab->size());
  auto *sourceRows = static_cast<int32_t *>(tr.source->data());
  std::vector<double> logProbs;
  for (size_t first = 0; first < sources.size(); first += size_t(groups)) {
    int64_t n = std::min<int64_t>(groups, int64_t(sources.size() - first));
    std::fill_n(sourceRows, tr.batch * tr.sourceLength, kPaddingId);
    for (int64_t g = 0; g < n; ++g)
      for (int64_t k = 0; k < beam; ++k)
        std::copy(sources[first + size_t(g)].begin(),
                  sources[first + size_t(g)].end(),
                  sourceRows + (g * beam + k) * tr.sourceLength);
    if (tr.cached) {
      tr.run(contract::kEncodeEntry);
      for (auto [out, in] : tr.feeds)
        std::memcpy(in->data(), out->data(), in->numBytes());
      tr.model->resetCarries();
    }
    std::vector<std::vector<Hypothesis>> live(size_t(n),
                                              std::vector<Hypothesis>(1));
    std::vector<std::vector<Finished>> finished(static_cast<size_t>(n));
    // The rows the next call reads: each hypothesis's target so far, or
    // (cached) its last token over the caches of the row it extends.
    auto writeRows = [&] {
      std::vector<int64_t> from(size_t(tr.batch));
      std::iota(from.begin(), from.end(), 0);
      std::fill_n(tr.targetRow(0), tr.target->numElements(), kPaddingId);
      for (int64_t g = 0; g < n; ++g)
        for (size_t h = 0; h < live[size_t(g)].size(); ++h) {
          const Hypothesis &hyp = live[size_t(g)][h];
          int64_t r = g * beam + int64_t(h);
          int32_t *row = tr.targetRow(r);
          if (tr.cached) {
            row[0] = hyp.tokens.empty() ? kBoundaryId : hyp.tokens.back();
            from[size_t(r)] = g * beam + hyp.parent;
            continue;
          }
          row[0] = kBoundaryId;
          std::copy(hyp.tokens.begin(), hyp.tokens.end(), row + 1);
        }
      if (tr.cached)
        reorderCarries(*tr.model, from);
    };
    writeRows();
    // Step t reads the scores at position t: those of token t + 1.
    for (int64_t t = 0; t < tr.targetLength; ++t) {
      bool anyLive = false;
      for (int64_t g = 0; g < n; ++g)
        anyLive |= !live[size_t(g)].empty();
      if (!anyLive)
        break;
      tr.run(contract::kTranslateEntry);
      bool last = t + 1 == tr.targetLength;
      for (int64_t g = 0; g < n; ++g) {
        std::vector<Hypothesis> &hyps = live[size_t(g)];
        // (log-probability, hypothesis, token)
        std::vector<std::tuple<double, size_t, int32_t>> candidates;
        for (size_t h = 0; h < hyps.size(); ++h) {
          logSoftmax(tr.scoresAt(g * beam + int64_t(h), t), vocab, logProbs);
          for (int32_t v = 0; v < int32_t(vocab); ++v)
            if (v != kPaddingId && (!last || v == kBoundaryId))
              candidates.emplace_back(hyps[h].logProb + logProbs[size_t(v)], h,
                                      v);
        }
        // The best 2 x beam: enough to keep `beam` going when some end.
        size_t keep = std::min(candidates.size(), size_t(2 * beam));
        std::partial_sort(
            candidates.begin(), candidates.begin() + keep, candidates.end(),
            [](const auto &a, const auto &b) {
              if (std::get<0>(a) != std::get<0>(b))
                return std::get<0>(a) > std::get<0>(b);
              return std::make_pair(std::get<1>(a), std::get<2>(a)) <
                     std::make_pair(std::get<1>(b), std::get<2>(b));
            });
        std::vector<Hypothesis> next;
        for (size_t i = 0; i < keep && int64_t(next.size()) < beam; ++i) {
          auto [logProb, h, v] = candidates[i];
          if (v == kBoundaryId) {
            // An end among the best `beam` finishes its hypothesis.
            if (int64_t(i) < beam)
              finished[size_t(g)].push_back(
                  {hyps[h].tokens,
                   logProb / double(hyps[h].tokens.size() + 1)});
            continue;
          }
          Hypothesis grown{hyps[h].tokens, logProb, int64_t(h)};
          grown.tokens.push_back(v);
          next.push_back(std::move(grown));
        }
        if (int64_t(finished[size_t(g)].size()) >= beam || last)
          next.clear();
        hyps = std::move(next);
      }
      writeRows();
    }
    for (int64_t g = 0; g < n; ++g) {
      const std::vector<Finished> &done = finished[size_t(g)];
      // Every sentence finishes: at the last position only the end is open.
      auto best = std::max_element(done.begin(), done.end(),
                                   [](const Finished &a, const Finished &b) {
                                     return a.score < b.score;
                                   });
      if (best != done.end())
        results[first + size_t(g)] = best->tokens;
    }
  }
  return results;
}

/// `text` as a source row; an error if it does not fit or holds a character
/// outside the vocabulary.
Expected<std::vector<int32_t>> encodeSource(const Translator &tr,
                                            const std::u32string &text,
                                            const std::string &what) {
  std::vector<int32_t> row(size_t(tr.sourceLength));
  Expected<bool> fits =
      encodeLine(text, *tr.vocab, what, row.data(), tr.sourceLength);
  if (!fits)
    return fits.takeError();
  if (!*fits)
    return Error::usage(fmt::format("{} has {} characters; the model "
                                    "translates at most {}",
                                    what, text.size(), tr.sourceLength - 2));
  return row;
}

} // namespace

Error runTranslate(Model &model, const TranslateOptions &options,
                   const Console &console) {
  if (options.sentences.empty() == options.input.empty())
    return Error::usage(options.input.empty()
                            ? "translate needs a sentence or --input FILE.tsv"
                            : "give sentences or --input FILE.tsv, not both");
  if (!options.output.empty() && options.input.empty())
    return Error::usage("--output writes the translations of --input");
  if (options.beam < 1 || options.beam > kMaxBeam)
    return Error::usage(fmt::format("--beam must be in [1, {}], got {}",
                                    kMaxBeam, options.beam));
  Expected<Translator> tr = makeTranslator(model);
  if (!tr)
    return tr.takeError();
  if (options.beam > tr->batch)
    return Error::usage(fmt::format("--beam {} needs more rows than the "
                                    "translate block's batch of {}",
                                    options.beam, tr->batch));
  Expected<TextParameters> loaded =
      loadTextParameters(model, options.checkpoint);
  if (!loaded)
    return loaded.takeError();
  const Vocabulary &vocab = loaded->vocab;
  if (int64_t(vocab.size()) > tr->classes)
    return makeError("the checkpoint's vocabulary has {} tokens but the "
                     "translate entry scores {}",
                     vocab.size(), tr->classes);
  tr->vocab = &vocab;

  if (!options.sentences.empty()) {
    std::vector<std::vector<int32_t>> sources;
    for (size_t i = 0; i < options.sentences.size(); ++i) {
      std::string what = options.sentences.size() == 1
                             ? std::string("the sentence")
                             : fmt::format("sentence {}", i + 1);
      Expected<std::u32string> text = decodeUtf8(options.sentences[i], what);
      if (!text)
        return text.takeError();
      if (text->empty())
        return Error::usage(fmt::format("{} is empty", what));
      Expected<std::vector<int32_t>> row = encodeSource(*tr, *text, what);
      if (!row)
        return row.takeError();
      sources.push_back(std::move(*row));
    }
    for (const std::vector<int32_t> &tokens :
         decode(*tr, sources, options.beam))
      fmt::print(console.out, "{}\n", vocab.decode(tokens));
    std::fflush(console.out);
    return Error::success();
  }

  if (!options.output.empty())
    if (Error e = checkWritableLocation(options.output, "--output"))
      return e;
  Expected<std::string> path = resolveDataPath(options.input, true, "--input");
  if (!path)
    return path.takeError();
  Expected<PairsFile> file = readPairs(*path);
  if (!file)
    return file.takeError();
  std::vector<std::vector<int32_t>> sources;
  std::vector<std::string> sourceTexts, references;
  size_t tooLong = 0, rows = file->rows.size();
  if (options.limit > 0)
    rows = std::min(rows, size_t(options.limit));
  for (size_t i = 0; i < rows; ++i) {
    const std::vector<std::u32string> &cells = file->rows[i];
    Expected<std::vector<int32_t>> row =
        encodeSource(*tr, cells[0], fmt::format("'{}' line {}", *path, i + 1));
    if (!row && row.error().exitCode() == ExitUsage) {
      ++tooLong;
      continue;
    }
    if (!row)
      return row.takeError();
    sources.push_back(std::move(*row));
    sourceTexts.push_back(encodeUtf8(cells[0]));
    if (file->columns > 1)
      references.push_back(encodeUtf8(cells[1]));
  }
  if (tooLong)
    console.note("{} of the {} sentences of '{}' are longer than the {} "
                 "characters the model translates; left out",
                 tooLong, rows, *path, tr->sourceLength - 2);
  if (sources.empty())
    return makeError("'{}' holds no sentence the model can translate", *path);

  // In chunks, so that progress shows (unless the translations themselves
  // go to the console).
  bool progress =
      !options.json && (!references.empty() || !options.output.empty());
  std::vector<std::string> translations;
  size_t chunk = size_t(std::max<int64_t>(1, tr->batch / options.beam)) *
                 std::max<size_t>(1, sources.size() / 20 / size_t(tr->batch));
  for (size_t start = 0; start < sources.size(); start += chunk) {
    std::vector<std::vector<int32_t>> part(
        sources.begin() + long(start),
        sources.begin() + long(std::min(sources.size(), start + chunk)));
    for (const std::vector<int32_t> &tokens : decode(*tr, part, options.beam))
      translations.push_back(vocab.decode(tokens));
    if (progress)
      console.print("translated {}/{}\n", translations.size(), sources.size());
  }
  if (!options.output.empty()) {
    std::string text;
    for (const std::string &t : translations)
      text += t + "\n";
    if (Error e = writeFileAtomic(options.output, text))
      return e;
  }
  if (references.empty()) {
    if (options.output.empty())
      for (const std::string &t : translations)
        fmt::print(console.out, "{}\n", t);
    std::fflush(console.out);
    return Error::success();
  }
  BleuScore bleu = corpusBleu(translations, references);
  BleuScore copyBleu = corpusBleu(sourceTexts, references);
  double chrf = corpusChrf(translations, references);
  double copyChrf = corpusChrf(sourceTexts, references);
  if (options.json) {
    fmt::print(console.out,
               "{{\"pairs\":{},\"beam\":{},\"bleu\":{},\"chrf\":{},"
               "\"copy_bleu\":{},\"copy_chrf\":{}}}\n",
               translations.size(), options.beam, jsonNumber(bleu.score),
               jsonNumber(chrf), jsonNumber(copyBleu.score),
               jsonNumber(copyChrf));
  } else {
    fmt::print(console.out,
               "{} pairs, {}: BLEU {:.2f} ({:.1f}/{:.1f}/{:.1f}/{:.1f}, "
               "brevity penalty {:.3f}), chrF {:.2f}\n",
               translations.size(),
               options.beam == 1 ? std::string("greedy")
                                 : fmt::format("beam {}", options.beam),
               bleu.score, bleu.precisions[0], bleu.precisions[1],
               bleu.precisions[2], bleu.precisions[3], bleu.brevityPenalty,
               chrf);
    fmt::print(console.out, "copying the source: BLEU {:.2f}, chrF {:.2f}\n",
               copyBleu.score, copyChrf);
  }
  std::fflush(console.out);
  return Error::success();
}

} // namespace kiln::rt

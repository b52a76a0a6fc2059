//===- Bleu.cpp - Corpus BLEU and chrF as sacreBLEU 2.x computes them ----===//
//
// Follows sacreBLEU 2.6.0's metrics/bleu.py, metrics/chrf.py,
// metrics/helpers.py and tokenizers/tokenizer_13a.py (and tokenizer_re.py)
// step by step, with the same floating-point operations in the same order, so
// that the scores agree to the last bit or nearly.
//
//===----------------------------------------------------------------------===//

#include "runtime/Bleu.h"

#include "runtime/Text.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <unordered_map>

namespace kiln::rt {

namespace {

//===----------------------------------------------------------------------===//
// Python's view of a string: code points and str.isspace()
//===----------------------------------------------------------------------===//

/// Python's str.isspace(), which str.split() and str.rstrip() use.
bool isSpace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 ||
         c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
         c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

/// Python's str.split() with no arguments: the runs of non-whitespace.
std::vector<std::u32string_view> splitWords(std::u32string_view text) {
  std::vector<std::u32string_view> words;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && isSpace(text[i]))
      ++i;
    size_t start = i;
    while (i < text.size() && !isSpace(text[i]))
      ++i;
    if (i > start)
      words.push_back(text.substr(start, i - start));
  }
  return words;
}

/// Python's ' '.join(text.split()).
std::u32string joinWords(std::u32string_view text) {
  std::u32string out;
  for (std::u32string_view word : splitWords(text)) {
    if (!out.empty())
      out.push_back(U' ');
    out.append(word);
  }
  return out;
}

/// Python's str.rstrip() with no arguments.
std::u32string_view rstrip(std::u32string_view text) {
  while (!text.empty() && isSpace(text.back()))
    text.remove_suffix(1);
  return text;
}

/// Python's str.replace(from, to): every non-overlapping occurrence, left to
/// right.
void replaceAll(std::u32string &text, std::u32string_view from,
                std::u32string_view to) {
  std::u32string out;
  size_t start = 0;
  for (size_t at = text.find(from); at != std::u32string::npos;
       at = text.find(from, start)) {
    out.append(text, start, at - start);
    out.append(to);
    start = at + from.size();
  }
  if (start == 0)
    return;
  out.append(text, start, std::u32string::npos);
  text = std::move(out);
}

//===----------------------------------------------------------------------===//
// The 13a tokenizer
//===----------------------------------------------------------------------===//

bool isDigit(char32_t c) { return c >= U'0' && c <= U'9'; }
bool isPeriodOrComma(char32_t c) { return c == U'.' || c == U','; }

/// The class [\{-\~\[-\` -\&\(-\+\:-\@\/] of TokenizerRegexp's first rule:
/// ASCII punctuation (and the space) but ' , - and .
bool isSplitPunctuation(char32_t c) {
  return (c >= U'{' && c <= U'~') || (c >= U'[' && c <= U'`') ||
         (c >= U' ' && c <= U'&') || (c >= U'(' && c <= U'+') ||
         (c >= U':' && c <= U'@') || c == U'/';
}

/// re.sub(r'(A)(B)', replacement, text) for two one-character classes A and
/// B: matches do not overlap, and the scan resumes after each one.
template <typename First, typename Second, typename Replace>
std::u32string substitutePairs(std::u32string_view text, First first,
                               Second second, Replace replace) {
  std::u32string out;
  out.reserve(text.size() + text.size() / 2);
  size_t i = 0;
  while (i < text.size()) {
    if (i + 1 < text.size() && first(text[i]) && second(text[i + 1])) {
      replace(out, text[i], text[i + 1]);
      i += 2;
    } else {
      out.push_back(text[i++]);
    }
  }
  return out;
}

/// Tokenizer13a.__call__ on code points.
std::u32string tokenize13aChars(std::u32string line) {
  replaceAll(line, U"<skipped>", U"");
  replaceAll(line, U"-\n", U"");
  replaceAll(line, U"\n", U" ");
  if (line.find(U'&') != std::u32string::npos) {
    replaceAll(line, U"&quot;", U"\"");
    replaceAll(line, U"&amp;", U"&");
    replaceAll(line, U"&lt;", U"<");
    replaceAll(line, U"&gt;", U">");
  }

  // TokenizerRegexp on f' {line} '.
  std::u32string spaced;
  spaced.reserve(line.size() * 2 + 2);
  spaced.push_back(U' ');
  for (char32_t c : line) {
    if (isSplitPunctuation(c)) {
      spaced.push_back(U' ');
      spaced.push_back(c);
      spaced.push_back(U' ');
    } else {
      spaced.push_back(c);
    }
  }
  spaced.push_back(U' ');

  auto notDigit = [](char32_t c) { return !isDigit(c); };
  auto isHyphen = [](char32_t c) { return c == U'-'; };
  // Period and comma unless preceded by a digit: r'\1 \2 '.
  spaced = substitutePairs(spaced, notDigit, isPeriodOrComma,
                           [](std::u32string &out, char32_t a, char32_t b) {
                             out += {a, U' ', b, U' '};
                           });
  // Period and comma unless followed by a digit: r' \1 \2'.
  spaced = substitutePairs(spaced, isPeriodOrComma, notDigit,
                           [](std::u32string &out, char32_t a, char32_t b) {
                             out += {U' ', a, U' ', b};
                           });
  // A dash after a digit: r'\1 \2 '.
  spaced = substitutePairs(spaced, isDigit, isHyphen,
                           [](std::u32string &out, char32_t a, char32_t b) {
                             out += {a, U' ', b, U' '};
                           });
  return joinWords(spaced);
}

//===----------------------------------------------------------------------===//
// N-gram counting
//===----------------------------------------------------------------------===//

using NgramCounts = std::unordered_map<std::u32string_view, int64_t>;

/// Clipped matches: for each hypothesis n-gram, min(its count, the
/// reference's count), summed (a copy of the reference's counts is used up).
int64_t clippedMatches(const std::vector<std::u32string_view> &hypNgrams,
                       NgramCounts refCounts) {
  int64_t matches = 0;
  for (std::u32string_view ngram : hypNgrams) {
    auto it = refCounts.find(ngram);
    if (it != refCounts.end() && it->second > 0) {
      --it->second;
      ++matches;
    }
  }
  return matches;
}

/// The word n-grams of order `n` of a 13a-tokenized line (tokens separated by
/// single spaces), each a view of the line spanning its tokens, so that equal
/// n-grams are equal views.
std::vector<std::u32string_view>
wordNgrams(std::u32string_view line,
           const std::vector<std::u32string_view> &tokens, size_t n) {
  std::vector<std::u32string_view> ngrams;
  for (size_t i = 0; i + n <= tokens.size(); ++i) {
    size_t begin = tokens[i].data() - line.data();
    size_t end =
        tokens[i + n - 1].data() + tokens[i + n - 1].size() - line.data();
    ngrams.push_back(line.substr(begin, end - begin));
  }
  return ngrams;
}

std::vector<std::u32string_view> charNgrams(std::u32string_view text,
                                            size_t n) {
  std::vector<std::u32string_view> ngrams;
  for (size_t i = 0; i + n <= text.size(); ++i)
    ngrams.push_back(text.substr(i, n));
  return ngrams;
}

NgramCounts countNgrams(const std::vector<std::u32string_view> &ngrams) {
  NgramCounts counts;
  for (std::u32string_view ngram : ngrams)
    ++counts[ngram];
  return counts;
}

/// sacrebleu.utils.my_log: log, with log(0) floored to -9999999999.
double flooredLog(double x) { return x == 0.0 ? -9999999999.0 : std::log(x); }

} // namespace

std::string tokenize13a(std::string_view sentence) {
  return encodeUtf8Lenient(tokenize13aChars(decodeUtf8Lenient(sentence)));
}

BleuScore corpusBleu(const std::vector<std::string> &hypotheses,
                     const std::vector<std::string> &references) {
  assert(hypotheses.size() == references.size() &&
         "one reference per hypothesis");
  constexpr int kOrder = 4;
  int64_t hypLength = 0, refLength = 0;
  int64_t correct[kOrder] = {}, total[kOrder] = {};
  size_t count = std::min(hypotheses.size(), references.size());
  for (size_t s = 0; s < count; ++s) {
    // BLEU._preprocess_segment: rstrip, then tokenize.
    std::u32string hyp = tokenize13aChars(
        std::u32string(rstrip(decodeUtf8Lenient(hypotheses[s]))));
    std::u32string ref = tokenize13aChars(
        std::u32string(rstrip(decodeUtf8Lenient(references[s]))));
    std::vector<std::u32string_view> hypTokens = splitWords(hyp);
    std::vector<std::u32string_view> refTokens = splitWords(ref);
    hypLength += int64_t(hypTokens.size());
    refLength += int64_t(refTokens.size());
    for (int n = 1; n <= kOrder; ++n) {
      std::vector<std::u32string_view> hypNgrams =
          wordNgrams(hyp, hypTokens, n);
      total[n - 1] += int64_t(hypNgrams.size());
      correct[n - 1] +=
          clippedMatches(hypNgrams, countNgrams(wordNgrams(ref, refTokens, n)));
    }
  }

  // BLEU.compute_bleu with smooth_method='exp', effective_order=False.
  BleuScore result;
  result.hypothesisLength = hypLength;
  result.referenceLength = refLength;
  if (hypLength < refLength)
    result.brevityPenalty =
        hypLength > 0 ? std::exp(1 - double(refLength) / double(hypLength))
                      : 0.0;
  if (std::all_of(std::begin(correct), std::end(correct),
                  [](int64_t c) { return c == 0; }))
    return result;
  double smoothMteval = 1.0;
  for (int n = 0; n < kOrder; ++n) {
    if (total[n] == 0)
      break;
    if (correct[n] == 0) {
      smoothMteval *= 2;
      result.precisions[n] = 100.0 / (smoothMteval * double(total[n]));
    } else {
      result.precisions[n] = 100.0 * double(correct[n]) / double(total[n]);
    }
  }
  double sumOfLogs = 0;
  for (double p : result.precisions)
    sumOfLogs += flooredLog(p);
  result.score = result.brevityPenalty * std::exp(sumOfLogs / kOrder);
  return result;
}

double corpusChrf(const std::vector<std::string> &hypotheses,
                  const std::vector<std::string> &references) {
  assert(hypotheses.size() == references.size() &&
         "one reference per hypothesis");
  constexpr int kOrder = 6;
  constexpr int kBeta = 2;
  // Per order: hypothesis n-grams, reference n-grams, matches.
  int64_t hypCount[kOrder] = {}, refCount[kOrder] = {}, matches[kOrder] = {};
  size_t count = std::min(hypotheses.size(), references.size());
  for (size_t s = 0; s < count; ++s) {
    // extract_all_char_ngrams: ''.join(line.split()).
    std::u32string hyp = decodeUtf8Lenient(hypotheses[s]);
    std::u32string ref = decodeUtf8Lenient(references[s]);
    hyp.erase(std::remove_if(hyp.begin(), hyp.end(), isSpace), hyp.end());
    ref.erase(std::remove_if(ref.begin(), ref.end(), isSpace), ref.end());
    for (int n = 1; n <= kOrder; ++n) {
      std::vector<std::u32string_view> hypNgrams = charNgrams(hyp, n);
      std::vector<std::u32string_view> refNgrams = charNgrams(ref, n);
      // CHRF._get_match_statistics: hypothesis n-grams count only where the
      // reference has some.
      if (!refNgrams.empty())
        hypCount[n - 1] += int64_t(hypNgrams.size());
      refCount[n - 1] += int64_t(refNgrams.size());
      matches[n - 1] += clippedMatches(hypNgrams, countNgrams(refNgrams));
    }
  }

  // CHRF._compute_f_score with eps_smoothing=False: precision and recall
  // averaged over the effective orders, then one F-beta.
  constexpr int kFactor = kBeta * kBeta;
  double avgPrecision = 0, avgRecall = 0;
  int effectiveOrder = 0;
  for (int n = 0; n < kOrder; ++n) {
    if (hypCount[n] > 0 && refCount[n] > 0) {
      avgPrecision += double(matches[n]) / double(hypCount[n]);
      avgRecall += double(matches[n]) / double(refCount[n]);
      ++effectiveOrder;
    }
  }
  if (effectiveOrder == 0)
    return 0;
  avgPrecision /= effectiveOrder;
  avgRecall /= effectiveOrder;
  if (avgPrecision + avgRecall == 0)
    return 0;
  double score = (1 + kFactor) * avgPrecision * avgRecall;
  score /= kFactor * avgPrecision + avgRecall;
  return 100 * score;
}

} // namespace kiln::rt

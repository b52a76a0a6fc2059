//===- Bleu.h - Corpus BLEU and chrF as sacreBLEU 2.x computes them ------===//
//
// The two standard scores of a machine-translation model's output, computed
// exactly as sacreBLEU 2.x does with its defaults, so that a model's numbers
// can be compared with published ones: corpus BLEU (Papineni et al., 2002) on
// the 13a tokenization (mteval-v13a.pl, the WMT standard), and corpus chrF
// (Popović, 2015) on character n-grams. Both take one reference per sentence
// and sum their statistics over the whole corpus before scoring.
//
// Text is UTF-8; characters are code points. Bytes that are not UTF-8 are kept
// as they are, each one a character of its own (as Python's surrogateescape
// would decode them). Whitespace is what Python's str.isspace() accepts: the
// ASCII whitespace, U+001C..U+001F, U+0085, U+00A0, U+1680, U+2000..U+200A,
// U+2028, U+2029, U+202F, U+205F and U+3000.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_BLEU_H
#define KILN_RUNTIME_BLEU_H

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::rt {

/// A corpus BLEU score and the figures sacreBLEU prints with it.
struct BleuScore {
  double score = 0;          ///< 0..100
  double precisions[4] = {}; ///< 0..100, as sacreBLEU reports them
  double brevityPenalty = 1;
  int64_t hypothesisLength = 0, referenceLength = 0; ///< in tokens
};

/// sacreBLEU's corpus BLEU with its defaults: one reference per sentence, the
/// 13a tokenizer (after trailing whitespace is removed), 4-grams,
/// case-sensitive, smoothing 'exp' as corpus_score applies it: on the
/// corpus-wide counts, the k-th n-gram order with no match at all counts as a
/// precision of 1 / (2^k * its n-grams); an order with no n-grams in the
/// hypotheses (a corpus of fewer than 4 tokens a sentence) makes the score 0,
/// and so does a corpus with no matching n-gram.
///
/// `hypotheses` and `references` must be as many (asserted); where they are
/// not, only the first min(sizes) pairs are scored, as sacreBLEU's zip()
/// does.
BleuScore corpusBleu(const std::vector<std::string> &hypotheses,
                     const std::vector<std::string> &references);

/// sacreBLEU's corpus chrF with its defaults: character n-grams of orders 1 to
/// 6 over the sentences with their whitespace removed, no word n-grams, beta
/// 2. A sentence's hypothesis n-grams of an order count only where its
/// reference has n-grams of that order; the counts are summed over the corpus,
/// the precision and recall averaged over the orders where both the
/// hypotheses and references have n-grams, then one F-score (0..100). An empty
/// hypothesis scores 0. Count mismatches are handled as in corpusBleu().
double corpusChrf(const std::vector<std::string> &hypotheses,
                  const std::vector<std::string> &references);

/// The 13a tokenization of one sentence (exposed for tests), as sacreBLEU's
/// Tokenizer13a: `<skipped>` and `-\n` removed, newlines made spaces, `&quot;`
/// `&amp;` `&lt;` `&gt;` unescaped, ASCII punctuation but `'` `-` `.` `,`
/// split off, `.` and `,` split off unless between digits, `-` split off
/// after a digit, then the tokens joined by single spaces.
std::string tokenize13a(std::string_view sentence);

} // namespace kiln::rt

#endif // KILN_RUNTIME_BLEU_H

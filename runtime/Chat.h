//===- Chat.h - A conversation with a dialogue model ---------------------===//
//
// `./model chat` runs a conversation through a model's generate block: each
// line read from standard input becomes a user turn "U: LINE", and the model
// writes the system turn after "S: ", one character a step, until the end of
// the line. The conversation so far stays in the step's key/value caches;
// when it would outgrow the block's context, the oldest turns are dropped and
// the rest read again. `chat --input FILE` scores the system turns of
// recorded conversations (lines "U: ..." and "S: ...", conversations
// separated by an empty line).
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_CHAT_H
#define KILN_RUNTIME_CHAT_H

#include "runtime/Console.h"
#include "runtime/Error.h"
#include "runtime/Model.h"

#include <cstdint>
#include <cstdio>
#include <string>

namespace kiln::rt {

/// How turns are written in the conversation text the model learned.
inline constexpr char32_t kUserPrefix[] = U"U: ";
inline constexpr char32_t kSystemPrefix[] = U"S: ";
/// The longest system turn chat writes (characters; at most half the
/// model's context).
inline constexpr int64_t kMaxReply = 160;

struct ChatOptions {
  std::string checkpoint;
  /// 0: always the likeliest character; else sample from softmax(scores / t).
  double temperature = 0;
  uint64_t seed = 0;
  /// Score the conversations of this file instead of talking.
  std::string input;
  int64_t limit = 0; ///< score only the first N conversations (0: all)
  bool json = false;
  /// With --input: print each system turn the model writes differently.
  bool mistakes = false;
  /// Where the user's lines come from (standard input).
  FILE *in = stdin;
};

Error runChat(Model &model, const ChatOptions &options, const Console &console);

} // namespace kiln::rt

#endif // KILN_RUNTIME_CHAT_H

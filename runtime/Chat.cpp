//===- Chat.cpp - A conversation with a dialogue model -------------------===//

#include "runtime/Chat.h"

#include "runtime/Files.h"
#include "runtime/Generate.h"
#include "runtime/Json.h"

#include <cmath>
#include <cstring>

namespace kiln::rt {

namespace {

/// A conversation held in a step entry's carries: the turns so far (each
/// ending with a newline) and how many ids the step has read since its
/// caches were last zeroed (the kept turns, then what is being written).
class Conversation {
public:
  Conversation(Model &model, const Stepper &stepper, const Vocabulary &vocab,
               int64_t context, uint64_t seed)
      : model_(model), stepper_(stepper), vocab_(vocab), context_(context),
        seed_(seed) {}

  /// The positions kept free for a reply: kMaxReply, or half the context.
  int64_t replyRoom() const { return std::min(kMaxReply, context_ / 2); }

  const float *scores() const {
    return static_cast<const float *>(stepper_.scores->data());
  }
  size_t vocabSize() const { return vocab_.size(); }

  /// Forgets every turn.
  void clear() {
    turns_.clear();
    restart();
  }

  /// Reads `text` (ids of the vocabulary) after what was read, first making
  /// room for it and `reserve` more positions: when the context would
  /// overflow, the oldest turns are dropped and the rest read again. False
  /// if `text` and `reserve` alone do not fit.
  bool read(const std::vector<int32_t> &text, int64_t reserve) {
    if (int64_t(read_ + text.size()) + reserve > context_) {
      size_t kept = 0, first = turns_.size();
      while (first > 0 &&
             int64_t(kept + turns_[first - 1].size() + text.size()) + reserve <=
                 context_)
        kept += turns_[--first].size();
      if (int64_t(text.size()) + reserve > context_)
        return false;
      turns_.erase(turns_.begin(), turns_.begin() + first);
      restart();
      for (const std::vector<int32_t> &turn : turns_)
        for (int32_t id : turn)
          step(id);
    }
    for (int32_t id : text)
      step(id);
    return true;
  }

  /// Records the turn that the last reads and steps wrote.
  void endTurn(std::vector<int32_t> turn) { turns_.push_back(std::move(turn)); }

  void step(int32_t id) {
    *static_cast<int32_t *>(stepper_.input->data()) = id;
    model_.setNoise(++calls_, seed_);
    model_.run(stepper_.entry->name);
    ++read_;
  }
  int64_t room() const { return context_ - int64_t(read_); }

  /// The carries, the last scores and what was read, to come back to
  /// (scoring writes a turn, then reads the recorded one instead).
  struct Snapshot {
    std::vector<std::string> carries;
    std::string scores;
    size_t read = 0;
    uint64_t calls = 0;
  };
  Snapshot save() const {
    Snapshot s;
    for (const Tensor &t : model_.carries)
      s.carries.emplace_back(static_cast<const char *>(t.data()), t.numBytes());
    s.scores.assign(static_cast<const char *>(stepper_.scores->data()),
                    stepper_.scores->numBytes());
    s.read = read_;
    s.calls = calls_;
    return s;
  }
  void restore(const Snapshot &s) {
    for (size_t i = 0; i < s.carries.size(); ++i)
      std::memcpy(model_.carries[i].data(), s.carries[i].data(),
                  s.carries[i].size());
    std::memcpy(stepper_.scores->data(), s.scores.data(), s.scores.size());
    read_ = s.read;
    calls_ = s.calls;
  }

private:
  void restart() {
    model_.resetCarries();
    read_ = 0;
  }

  Model &model_;
  const Stepper &stepper_;
  const Vocabulary &vocab_;
  int64_t context_;
  uint64_t seed_;
  uint64_t calls_ = 0;
  std::vector<std::vector<int32_t>> turns_;
  /// How many ids the step has read since its caches were last zeroed.
  size_t read_ = 0;
};

/// Writes a system turn after the "S: " just read: characters drawn from
/// the scores (greedy at temperature 0), each read in turn, up to and with
/// the newline; at most kMaxReply characters or the context's room. Returns
/// the turn's ids after the prefix, the newline included.
std::vector<int32_t> writeReply(Conversation &c, int32_t newline,
                                const GenerateOptions &sampling, Rng &rng) {
  std::vector<int32_t> reply;
  while (true) {
    int32_t id = drawCharacter(c.scores(), c.vocabSize(), sampling, rng);
    bool last = id == newline || int64_t(reply.size()) + 1 >= kMaxReply ||
                c.room() <= 1;
    if (last)
      id = newline;
    reply.push_back(id);
    c.step(id);
    if (last)
      return reply;
  }
}

/// `prefix` + `line` + newline as ids (the prefix's and the newline's are
/// in the vocabulary: runChat checks); an error names a character of `line`
/// outside it.
Expected<std::vector<int32_t>> turnIds(std::u32string_view prefix,
                                       std::u32string_view line,
                                       const Vocabulary &vocab,
                                       std::string_view what) {
  Expected<std::vector<int32_t>> body = encodeText(line, vocab, what);
  if (!body)
    return body.takeError();
  std::vector<int32_t> ids;
  for (char32_t ch : prefix)
    ids.push_back(vocab.id(ch));
  ids.insert(ids.end(), body->begin(), body->end());
  ids.push_back(vocab.id(U'\n'));
  return ids;
}

/// A conversation of a scored file: its lines without the newline.
struct Recorded {
  size_t firstLine = 0;
  std::vector<std::u32string> lines;
};

Expected<std::vector<Recorded>> readConversations(const std::string &path) {
  Expected<std::string> bytes = readFileMaybeGzip(path);
  if (!bytes)
    return bytes.takeError();
  Expected<std::u32string> all = decodeUtf8(*bytes, path);
  if (!all)
    return all.takeError();
  std::vector<Recorded> out;
  Recorded current;
  auto flush = [&] {
    if (!current.lines.empty())
      out.push_back(std::move(current));
    current = Recorded();
  };
  std::u32string_view user(kUserPrefix), system(kSystemPrefix);
  std::vector<std::u32string_view> lines = splitLines(*all);
  for (size_t i = 0; i < lines.size(); ++i) {
    std::u32string_view line = lines[i];
    size_t lineNo = i + 1;
    if (line.empty()) {
      flush();
      continue;
    }
    if (line.compare(0, user.size(), user) != 0 &&
        line.compare(0, system.size(), system) != 0)
      return makeError("'{}' line {}: a turn starts with \"U: \" (the user) "
                       "or \"S: \" (the system)",
                       path, lineNo);
    if (current.lines.empty())
      current.firstLine = lineNo;
    current.lines.emplace_back(line);
  }
  flush();
  if (out.empty())
    return makeError("'{}' holds no conversations", path);
  return out;
}

Error score(Conversation &c, const Vocabulary &vocab, int32_t newline,
            const ChatOptions &options, const Console &console) {
  Expected<std::string> path = resolveDataPath(options.input, true, "--input");
  if (!path)
    return path.takeError();
  Expected<std::vector<Recorded>> conversations = readConversations(*path);
  if (!conversations)
    return conversations.takeError();
  size_t n = conversations->size();
  if (options.limit > 0)
    n = std::min(n, size_t(options.limit));
  GenerateOptions greedy;
  greedy.greedy = true;
  Rng rng(0, "chat");
  int64_t turns = 0, exact = 0, perfect = 0, characters = 0;
  double nats = 0;
  std::u32string_view system(kSystemPrefix);
  for (size_t d = 0; d < n; ++d) {
    const Recorded &conv = (*conversations)[d];
    c.clear();
    bool allRight = true;
    for (size_t i = 0; i < conv.lines.size(); ++i) {
      std::string what = fmt::format("'{}' line {}", *path, conv.firstLine + i);
      Expected<std::vector<int32_t>> ids =
          turnIds(U"", conv.lines[i], vocab, what);
      if (!ids)
        return ids.takeError();
      bool isSystem = conv.lines[i].compare(0, system.size(), system) == 0;
      if (!isSystem) {
        if (!c.read(*ids, int64_t(system.size()) + c.replyRoom()))
          return makeError("{} does not fit the model's context", what);
        c.endTurn(*ids);
        continue;
      }
      std::vector<int32_t> prefix(ids->begin(), ids->begin() + system.size());
      std::vector<int32_t> want(ids->begin() + system.size(), ids->end());
      if (!c.read(prefix, int64_t(want.size())))
        return makeError("{} does not fit the model's context", what);
      Conversation::Snapshot before = c.save();
      std::vector<int32_t> wrote = writeReply(c, newline, greedy, rng);
      c.restore(before);
      ++turns;
      bool right = wrote == want;
      if (!right && options.mistakes)
        fmt::print(console.out,
                   "{}: the recorded turn is {:?}, the model "
                   "wrote {:?}\n",
                   what, vocab.decode(want), vocab.decode(wrote));
      exact += right;
      allRight &= right;
      // The recorded turn, read a character at a time: its log-likelihood.
      for (int32_t id : want) {
        const float *s = c.scores();
        double top = *std::max_element(s, s + c.vocabSize()), sum = 0;
        for (size_t k = 0; k < c.vocabSize(); ++k)
          sum += std::exp(double(s[k]) - top);
        nats -= double(s[id]) - top - std::log(sum);
        ++characters;
        c.step(id);
      }
      c.endTurn(*ids);
    }
    perfect += allRight;
  }
  double perCharacter = nats / double(std::max<int64_t>(characters, 1));
  double turnExact = double(exact) / double(std::max<int64_t>(turns, 1));
  double success = double(perfect) / double(n);
  if (options.json) {
    fmt::print(console.out,
               "{{\"conversations\":{},\"turns\":{},\"turn_exact\":{},"
               "\"success\":{},\"perplexity\":{},\"bits_per_char\":{}}}\n",
               n, turns, jsonNumber(turnExact), jsonNumber(success),
               jsonNumber(std::exp(perCharacter)),
               jsonNumber(perCharacter / std::log(2.0)));
  } else {
    fmt::print(console.out,
               "{} conversations, {} system turns: {:.2f}% of the turns "
               "written exactly, {:.2f}% of the conversations right in every "
               "turn; response perplexity {:.4f} per character ({:.4f} "
               "bits/char)\n",
               n, turns, 100 * turnExact, 100 * success, std::exp(perCharacter),
               perCharacter / std::log(2.0));
  }
  return Error::success();
}

/// The conversation on `options.in`: a line, a reply, until the input ends.
Error talk(Conversation &c, const Vocabulary &vocab, int32_t newline,
           const ChatOptions &options, const Console &console) {
  GenerateOptions sampling;
  sampling.greedy = options.temperature == 0;
  sampling.temperature = options.temperature > 0 ? options.temperature : 1;
  Rng rng(options.seed, "chat");
  std::u32string_view system(kSystemPrefix);
  std::vector<int32_t> prefix;
  for (char32_t ch : system)
    prefix.push_back(vocab.id(ch));
  bool terminal = isatty(fileno(options.in)) == 1;
  std::string line;
  for (int64_t turn = 1;; ++turn) {
    if (terminal) {
      fmt::print(console.out, "> ");
      std::fflush(console.out);
    }
    line.clear();
    int ch;
    while ((ch = std::fgetc(options.in)) != EOF && ch != '\n')
      line.push_back(char(ch));
    if (ch == EOF && line.empty())
      break;
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    std::string what = fmt::format("line {}", turn);
    Expected<std::u32string> decoded = decodeUtf8(line, what);
    if (!decoded) {
      console.warning("{}; it is skipped", decoded.error().message());
      continue;
    }
    if (decoded->find_first_not_of(U" \t") == std::u32string::npos) {
      console.warning("line {} is empty: type a message (end of input ends "
                      "the conversation)",
                      turn);
      continue;
    }
    Expected<std::vector<int32_t>> ids =
        turnIds(kUserPrefix, *decoded, vocab, what);
    if (!ids) {
      console.warning("{}; say it another way", ids.error().message());
      continue;
    }
    std::vector<int32_t> heard = *ids;
    heard.insert(heard.end(), prefix.begin(), prefix.end());
    if (!c.read(heard, c.replyRoom())) {
      console.warning("line {} is too long for the model's context; it is "
                      "skipped",
                      turn);
      continue;
    }
    c.endTurn(*ids);
    std::vector<int32_t> reply = writeReply(c, newline, sampling, rng);
    std::vector<int32_t> said(prefix);
    said.insert(said.end(), reply.begin(), reply.end());
    c.endTurn(std::move(said));
    reply.pop_back(); // the newline
    fmt::print(console.out, "{}\n", vocab.decode(reply));
    std::fflush(console.out);
    if (ch == EOF)
      break;
  }
  return Error::success();
}

} // namespace

Error runChat(Model &model, const ChatOptions &options,
              const Console &console) {
  if (options.temperature < 0 || !std::isfinite(options.temperature))
    return Error::usage(
        fmt::format("--temperature must be 0 (greedy) or positive, got {}",
                    options.temperature));
  Expected<Stepper> stepper = findStepper(model);
  if (!stepper)
    return stepper.takeError();
  int64_t context = model.manifest().generateContext;
  if (context <= 0)
    return makeError("model '{}' declares no context: chat needs its "
                     "generate block to say how many positions it reads "
                     "(context(n))",
                     model.manifest().model);
  Expected<Vocabulary> vocab = loadStepper(model, *stepper, options.checkpoint);
  if (!vocab)
    return vocab.takeError();
  for (char32_t ch : std::u32string(kUserPrefix) + kSystemPrefix + U"\n")
    if (vocab->id(ch) < 0)
      return makeError("'{}' was not trained on conversations: its "
                       "vocabulary lacks {}, which turns are written with "
                       "(\"U: ...\", \"S: ...\", one a line)",
                       options.checkpoint, describeChar(ch));
  int32_t newline = vocab->id(U'\n');
  Conversation c(model, *stepper, *vocab, context, options.seed);
  c.clear();
  if (!options.input.empty())
    return score(c, *vocab, newline, options, console);
  return talk(c, *vocab, newline, options, console);
}

} // namespace kiln::rt

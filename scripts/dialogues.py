#!/usr/bin/python3
"""Task-oriented dialogues from a user simulator (scripts/setup-data).

Usage: dialogues.py OUT

No package ships real dialogue text, so a simulator writes both sides of
conversations with a restaurant's table-booking desk, the way task-oriented
dialogue systems are commonly bootstrapped (Schatzmann et al., 2006):

- The user has a goal: a day, a time, a number of people and a name (a
  random pronounceable one, so that the system learns to copy names, not to
  remember them) and
  sometimes a question about the address, the opening hours or parking). The
  user's side is random: which slots the first message gives, the phrasing
  (several templates for each act), answering a question, changing a slot
  when asked to confirm, ending with thanks.
- The system follows a fixed policy, so that its every turn is determined by
  the conversation so far: answer a question; refuse what the restaurant
  cannot do (it is closed on Mondays, opens 12:00-22:00, seats at most 8 at a
  table) and ask again; otherwise ask for the first missing slot (day, time,
  people, name); when all are known, ask to confirm; on yes, book and give a
  reference (the name's first three letters, the day's first two, the time's
  digits: ANNTU1930); on no, ask what to change. Its turns are short, so that
  most conversations fit a model's context of 256 characters.

Each dialogue is written as lines "U: ..." (user) and "S: ..." (system), then
an empty line. OUT/train.txt holds TRAIN dialogues, OUT/test.txt TEST ones
whose user names never occur in training, so the system must copy a name it
has never seen into the confirmation and the reference. OUT/SOURCES describes the set. Deterministic (seed 0).
"""

import os
import random
import sys

from datafiles import write_text_atomically

TRAIN, TEST = 12000, 500
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
        "sunday"]
ONSETS = "b c d f g h j k l m n p r s t v w z br ch dr fr gr kl pr sh st th tr".split()
VOWELS = "a e i o u a e i o ai ea ia io".split()
CODAS = ["", "", "", "n", "r", "l", "s", "m", "th", "x"]


def make_name(rng):
    """A pronounceable name of 1 to 3 syllables ("lenko", "brai", "tirus")."""
    syllables = rng.choice([1, 2, 2, 2, 3])
    name = "".join(rng.choice(ONSETS) + rng.choice(VOWELS)
                   for _ in range(syllables))
    return name + rng.choice(CODAS)


QUESTIONS = {
    "address": ("where are you", "what is your address", "where is the restaurant"),
    "hours": ("when are you open", "what are your opening hours", "how late are you open"),
    "parking": ("is there parking", "can i park nearby", "do you have parking"),
}
ANSWERS = {
    "address": "12 harbour street.",
    "hours": "12:00 to 22:00, tuesday to sunday.",
    "parking": "free parking behind us.",
}
NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven",
           "eight", "nine", "ten", "eleven", "twelve"]


def spoken_time(rng, hour, minute):
    """The user's way of saying a time: 19:30, 7:30 pm, half past 7..."""
    h12 = hour - 12 if hour > 12 else hour
    choices = [f"{hour}:{minute:02d}", f"{h12}:{minute:02d} pm" if hour >= 12 else f"{hour}:{minute:02d} am"]
    if minute == 0:
        choices += [f"{h12} pm" if hour >= 12 else f"{hour} am", f"{h12} o'clock"]
    if minute == 30:
        choices.append(f"half past {h12}")
    return rng.choice(choices)


def spoken_people(rng, n):
    return rng.choice([str(n), NUMBERS[n]] if n < len(NUMBERS) else [str(n)])


class Dialogue:
    def __init__(self, rng, name):
        self.rng = rng
        self.lines = []
        self.goal = {
            "day": rng.choice(DAYS),
            "time": (rng.choice(range(11, 24)), rng.choice([0, 30])),
            "people": rng.choice([1, 2, 2, 2, 3, 4, 4, 5, 6, 8, 10]),
            "name": name,
        }
        self.known = {}

    def user(self, text):
        self.lines.append("U: " + text)

    def system(self, text):
        self.lines.append("S: " + text)

    def say_slot(self, slot, value):
        r = self.rng
        if slot == "day":
            return r.choice([f"on {value}", f"{value}", f"this {value}", f"next {value}"])
        if slot == "time":
            return r.choice(["at ", "around ", ""]) + spoken_time(r, *value)
        if slot == "people":
            p = spoken_people(r, value)
            return r.choice([f"for {p}", f"{p} people", f"for {p} people", f"we are {p}"])
        return r.choice([f"the name is {value}", f"under {value}", f"it's {value}", f"{value}"])

    def opening(self):
        r = self.rng
        slots = [s for s in ("day", "time", "people") if r.random() < 0.5]
        parts = [self.say_slot(s, self.goal[s]) for s in slots]
        start = r.choice(["i'd like a table", "can i book a table",
                          "hi, a table please", "a table please",
                          "hello, any tables"])
        self.user(" ".join([start] + parts))
        for s in slots:
            self.known[s] = self.goal[s]

    def check(self):
        """The system's objection to what is known, or None."""
        if self.known.get("day") == "monday":
            self.known.pop("day")
            return "sorry, we are closed on mondays. which day?"
        if "time" in self.known:
            hour, minute = self.known["time"]
            if hour < 12 or hour > 21 or (hour == 21 and minute > 30):
                self.known.pop("time")
                return "sorry, we book 12:00 to 21:30. what time?"
        if self.known.get("people", 0) > 8:
            self.known.pop("people")
            return "sorry, at most 8 at a table. how many people?"
        return None

    def adjust_goal(self, slot):
        """After a refusal the user picks something the restaurant can do."""
        r = self.rng
        if slot == "day":
            self.goal["day"] = r.choice(DAYS[1:])
        elif slot == "time":
            self.goal["time"] = (r.choice(range(12, 22)), r.choice([0, 30]))
        else:
            self.goal["people"] = r.choice(range(1, 9))

    QUESTIONS_ASKED = {"day": "which day?",
                       "time": "what time?",
                       "people": "how many people?",
                       "name": "what name?"}

    def confirm_text(self):
        k = self.known
        h, m = k["time"]
        return (f"book {k['people']} on {k['day']} at {h}:{m:02d} for "
                f"{k['name']}?")

    def reference(self):
        k = self.known
        h, m = k["time"]
        return f"{k['name'][:3].upper()}{k['day'][:2].upper()}{h}{m:02d}"

    def run(self):
        r = self.rng
        self.opening()
        asked_question = False
        changed = False
        while True:
            objection = self.check()
            if objection:
                slot = next(s for s in ("day", "time", "people") if s not in self.known)
                self.system(objection)
                self.adjust_goal(slot)
                self.user(self.say_slot(slot, self.goal[slot]))
                self.known[slot] = self.goal[slot]
                continue
            missing = [s for s in ("day", "time", "people", "name") if s not in self.known]
            if missing:
                slot = missing[0]
                self.system(self.QUESTIONS_ASKED[slot])
                if not asked_question and r.random() < 0.15:
                    asked_question = True
                    topic = r.choice(sorted(QUESTIONS))
                    self.user(r.choice(QUESTIONS[topic]) + "?")
                    self.system(ANSWERS[topic] + " " + self.QUESTIONS_ASKED[slot])
                self.user(self.say_slot(slot, self.goal[slot]))
                self.known[slot] = self.goal[slot]
                continue
            self.system(self.confirm_text())
            if not changed and r.random() < 0.2:
                changed = True
                self.user(r.choice(["no", "not quite", "no, wait"]))
                self.system("what should i change?")
                slot = r.choice(["day", "time", "people"])
                self.adjust_goal(slot)
                self.user(r.choice(["make it ", "change it to ", ""]) +
                          self.say_slot(slot, self.goal[slot]))
                self.known[slot] = self.goal[slot]
                continue
            self.user(r.choice(["yes", "yes please", "that's right", "perfect", "yes, thanks"]))
            k = self.known
            h, m = k["time"]
            self.system(f"booked: {k['people']} on {k['day']} at {h}:{m:02d} "
                        f"for {k['name']}. reference {self.reference()}.")
            self.user(r.choice(["thanks, bye", "thank you", "great, thanks", "bye"]))
            self.system("goodbye!")
            return self.lines


def main():
    if len(sys.argv) != 2:
        sys.exit("dialogues.py: error: usage: dialogues.py OUT")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = random.Random(0)
    names = {"train": [make_name(rng) for _ in range(TRAIN)]}
    seen = set(names["train"])
    names["test"] = []
    while len(names["test"]) < TEST:
        name = make_name(rng)
        if name not in seen:
            names["test"].append(name)
    texts = {}
    for part in ("train", "test"):
        dialogues = [Dialogue(rng, name).run() for name in names[part]]
        texts[part] = "".join("\n".join(d) + "\n\n" for d in dialogues)
        write_text_atomically(os.path.join(out, f"{part}.txt"), texts[part])
    distinct = {part: len(set(names[part])) for part in names}
    write_text_atomically(os.path.join(out, "SOURCES"),
                     f"# scripts/dialogues.py: {TRAIN} training dialogues"
                     f" ({len(texts['train'])} characters, {distinct['train']}"
                     f" distinct user names), {TEST} test dialogues"
                     f" ({len(texts['test'])} characters, {distinct['test']}"
                     f" distinct names, none in training)\n")
    print(f"setup-data: {TRAIN} training and {TEST} test dialogues in {out}"
          f" (test users' names never in training)")


if __name__ == "__main__":
    main()

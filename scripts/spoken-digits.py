#!/usr/bin/python3
"""Spoken digits synthesized by espeak-ng (scripts/setup-data).

Usage: spoken-digits.py OUT

Speaks "zero" to "nine" in every English accent of espeak-ng's own voices
(ACCENTS) combined with every voice variant it ships (`espeak-ng
--voices=variant`: f1-f5, m1-m8, croak, whisper, klatt, ...): a speaker is an
(accent, variant) pair, with a speed (words a minute) and pitch drawn from a
hash of the speaker, so that each speaker sounds the same in all ten digits.
espeak-ng writes 22,050 Hz; each clip is resampled to RATE Hz (band-limited,
through the FFT) and written as 16-bit mono PCM WAV in OUT/wav/.

The split follows the variant: a variant whose name's SHA-256 is 0 modulo
TEST_MODULUS (about a fifth) is spoken only in the test set, so no test
speaker's voice is heard in training. OUT/train.tsv and OUT/test.tsv list
`digit<TAB>wav/FILE.wav`, one clip a line, sorted by a hash of the file name;
OUT/SOURCES records the espeak-ng version and the speakers. Every file is
written atomically; the output depends only on espeak-ng and its data.
"""

import hashlib
import os
import subprocess
import sys
import wave

import numpy as np

from datafiles import write_lines_atomically

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven",
          "eight", "nine"]
ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan",
           "en-gb-x-gbcwmd", "en-029"]
RATE = 8000
SOURCE_RATE = 22050
TEST_MODULUS = 5
SPEEDS = (120, 190)  # words a minute, espeak-ng's default is 175
PITCHES = (25, 75)   # 0-99, espeak-ng's default is 50


def die(msg):
    sys.exit(f"spoken-digits: error: {msg}")


def sha(s):
    return int.from_bytes(hashlib.sha256(s.encode()).digest()[:8], "big")


def variants():
    out = subprocess.run(["espeak-ng", "--voices=variant"], check=True,
                         capture_output=True, text=True).stdout
    names = []
    for line in out.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 5 and fields[4].startswith("!v/"):
            names.append(fields[4][3:])
    return sorted(set(names))


def resample(x, rate_in, rate_out):
    """Band-limited resampling through the FFT (the spectrum truncated)."""
    n_out = int(round(len(x) * rate_out / rate_in))
    spectrum = np.fft.rfft(x)[:n_out // 2 + 1]
    return np.fft.irfft(spectrum, n_out) * (n_out / len(x))


def speak(voice, speed, pitch, word, path):
    raw = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p",
                          str(pitch), "--stdout", word], check=True,
                         capture_output=True).stdout
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(raw)
    with wave.open(tmp, "rb") as w:
        if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != \
                (1, 2, SOURCE_RATE):
            die(f"espeak-ng wrote {w.getnchannels()} channels,"
                f" {8 * w.getsampwidth()} bits, {w.getframerate()} Hz")
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    y = resample(x.astype(np.float64), SOURCE_RATE, RATE)
    y = np.clip(np.round(y), -32768, 32767).astype("<i2")
    with wave.open(tmp, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(y.tobytes())
    os.replace(tmp, path)
    return len(y)


def main():
    if len(sys.argv) != 2:
        die("usage: spoken-digits.py OUT")
    out = sys.argv[1]
    os.makedirs(os.path.join(out, "wav"), exist_ok=True)
    version = subprocess.run(["espeak-ng", "--version"], check=True,
                             capture_output=True, text=True).stdout.strip()
    train, test, speakers = [], [], []
    lengths = []
    for variant in variants():
        held_out = sha(variant) % TEST_MODULUS == 0
        for accent in ACCENTS:
            h = sha(f"{accent}+{variant}")
            speed = SPEEDS[0] + h % (SPEEDS[1] - SPEEDS[0] + 1)
            pitch = PITCHES[0] + (h >> 16) % (PITCHES[1] - PITCHES[0] + 1)
            speakers.append(f"{accent}+{variant}\t{speed}\t{pitch}\t"
                            f"{'test' if held_out else 'train'}")
            for digit in DIGITS:
                name = f"{digit}-{accent}-{variant}.wav"
                lengths.append(speak(f"{accent}+{variant}", speed, pitch, digit,
                                     os.path.join(out, "wav", name)))
                (test if held_out else train).append((sha(name), digit,
                                                      "wav/" + name))
    if len(train) < 2000 or len(test) < 500:
        die(f"too few clips ({len(train)} train, {len(test)} test)")
    write_lines_atomically(os.path.join(out, "train.tsv"),
                     [f"{d}\t{p}" for _, d, p in sorted(train)])
    write_lines_atomically(os.path.join(out, "test.tsv"),
                     [f"{d}\t{p}" for _, d, p in sorted(test)])
    lengths = np.array(lengths) / RATE
    write_lines_atomically(os.path.join(out, "SOURCES"),
                     [f"# {version}",
                      f"# {RATE} Hz 16-bit mono; clip seconds: min"
                      f" {lengths.min():.2f}, median {np.median(lengths):.2f},"
                      f" max {lengths.max():.2f}",
                      "# speaker (accent+variant)\tspeed\tpitch\tset"]
                     + speakers)
    print(f"setup-data: {len(train)} training and {len(test)} test spoken"
          f" digits in {out} ({len(speakers)} speakers, {RATE} Hz)")


if __name__ == "__main__":
    main()

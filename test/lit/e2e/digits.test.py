"""digits.test's helper.

`speak DIR SOURCES`: espeak-ng speaks "zero" to "nine" in the first held-out
speaker of data/digits/SOURCES at its own 22,050 Hz (DIR/seven.wav, and
DIR/spoken.tsv listing all ten), the same ten resampled to 8 kHz by numpy
(DIR/spoken8k.tsv), and writes bad WAV files: stereo, 8-bit, empty,
truncated.
`score LIST PRINTED`: counts the clips predict printed the right digit for.
`features LIST FEATURES.npy`: compares the model's front end output with
numpy's log-mel features of the clips."""
import os
import subprocess
import sys
import wave

import numpy as np

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven",
          "eight", "nine"]
RATE, N, FFT, HOP, MELS = 8000, 10000, 256, 128, 40


def write(path, samples, rate, channels=1, width=2):
    with wave.open(path, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(samples)


def read(path):
    with wave.open(path, "rb") as w:
        return w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), "<i2")


def lines(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t") for line in f]


def log_mel(x):
    """The features of digits_small.kiln, written the usual numpy way."""
    x = np.pad(x[:N], (0, max(0, N - len(x))))
    frames = np.lib.stride_tricks.sliding_window_view(x, FFT)[::HOP]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(FFT) / FFT)
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    mel = lambda f: 2595 * np.log10(1 + f / 700)
    hz = lambda m: 700 * (10 ** (m / 2595) - 1)
    points = hz(np.linspace(mel(0), mel(RATE / 2), MELS + 2))
    freqs = np.linspace(0, RATE / 2, FFT // 2 + 1)
    up = (freqs[:, None] - points[None, :-2]) / (points[1:-1] - points[:-2])
    down = (points[None, 2:] - freqs[:, None]) / (points[2:] - points[1:-1])
    bank = np.maximum(0, np.minimum(up, down))
    f = np.log(power @ bank + 1e-6).ravel()
    f = f - f.mean()
    return f / np.sqrt((f * f).mean() + 1e-5)


if sys.argv[1] == "speak":
    out = sys.argv[2]
    speaker = next(line.split("\t")[0] for line in open(sys.argv[3])
                   if line.rstrip("\n").endswith("\ttest"))
    spoken, spoken8k = [], []
    for digit in DIGITS:
        path = os.path.join(out, f"{digit}.wav")
        subprocess.run(["espeak-ng", "-v", speaker, "-w", path, digit],
                       check=True)
        rate, x = read(path)
        n = int(round(len(x) * RATE / rate))
        y = np.fft.irfft(np.fft.rfft(x.astype(np.float64))[:n // 2 + 1], n) * n / len(x)
        write(os.path.join(out, f"{digit}-8k.wav"),
              np.clip(np.round(y), -32768, 32767).astype("<i2").tobytes(), RATE)
        spoken.append(f"{digit}\t{digit}.wav")
        spoken8k.append(f"{digit}\t{digit}-8k.wav")
    for name, rows in (("spoken.tsv", spoken), ("spoken8k.tsv", spoken8k)):
        with open(os.path.join(out, name), "w") as f:
            f.write("".join(r + "\n" for r in rows))
    tone = (1000 * np.sin(np.arange(800))).astype("<i2")
    write(os.path.join(out, "stereo.wav"), np.repeat(tone, 2).tobytes(), RATE, 2)
    write(os.path.join(out, "8bit.wav"), bytes(800), RATE, 1, 1)
    write(os.path.join(out, "empty.wav"), b"", RATE)
    write(os.path.join(out, "truncated.wav"), tone.tobytes(), RATE)
    with open(os.path.join(out, "truncated.wav"), "r+b") as f:
        f.truncate(44 + 600)
elif sys.argv[1] == "score":
    want = [digit for digit, _ in lines(sys.argv[2])]
    printed = [line.removeprefix("  prediction: ")
               for line in open(sys.argv[3]).read().split("\n")
               if line.startswith("  prediction: ")]
    assert len(printed) == len(want), printed
    right = sum(p == w for p, w in zip(printed, want))
    print(f"{right} of {len(want)} spoken digits recognized: {printed}")
elif sys.argv[1] == "features":
    base = os.path.dirname(sys.argv[2])
    clips = [read(os.path.join(base, path))[1] / 32768.0
             for _, path in lines(sys.argv[2])]
    got = np.load(sys.argv[3])
    assert got.shape == (len(clips), 77 * MELS), got.shape
    worst = max(np.abs(got[i] - log_mel(c)).max() for i, c in enumerate(clips))
    assert worst < 2e-3, worst
    print(f"{len(clips)} clips: the compiled front end's log-mel features are"
          f" numpy's (largest difference {worst:.2g})")

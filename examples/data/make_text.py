"""Writes examples/data/garden.txt: a few hundred KB of English-like text from a small grammar.

    python examples/data/make_text.py [--check]

The character-level transformer example (examples/torch_transformer.py) trains on this file.
It is text the project wrote itself, so it ships with no third-party licence; the grammar has
enough structure (agreement, nested clauses, numbers, quoted speech, paragraphs) for a small
model's loss to keep falling for a few hundred steps.  `random.Random(seed)` gives the same
sequence on every Python 3 version, so the file is reproducible: `--check` regenerates it in
memory and exits 1 if the committed file differs.
"""
import argparse
import random
import sys
from pathlib import Path

PATH = Path(__file__).resolve().parent / "garden.txt"
SEED = 10
TARGET_BYTES = 300_000

GRAMMAR = {
    "S": [["NP_s", "VP_s", "."], ["NP_p", "VP_p", "."], ["ADVCL", ",", "NP_s", "VP_s", "."],
          ["NP_p", "VP_p", ",", "CONJ", "NP_s", "VP_s", "."], ["QUOTE"],
          ["there", "BE_s", "NUM_s", "N_s", "PP", "."], ["there", "BE_p", "NUM_p", "N_p", "PP",
                                                         "."]],
    "NP_s": [["DET_s", "N_s"], ["DET_s", "ADJ", "N_s"], ["NAME"], ["DET_s", "N_s", "PP"],
             ["DET_s", "N_s", "that", "VP_s"]],
    "NP_p": [["DET_p", "N_p"], ["DET_p", "ADJ", "N_p"], ["NUM_p", "ADJ", "N_p"],
             ["DET_p", "N_p", "PP"]],
    "VP_s": [["V_s"], ["TV_s", "NP_o"], ["TV_s", "NP_o", "PP"], ["V_s", "ADV"],
             ["BE_s", "ADJ"], ["BE_s", "very", "ADJ"]],
    "VP_p": [["V_p"], ["TV_p", "NP_o"], ["TV_p", "NP_o", "PP"], ["V_p", "ADV"],
             ["BE_p", "ADJ"]],
    "NP_o": [["NP_s"], ["NP_p"]],
    "PP": [["P", "NP_o"]],
    "ADVCL": [["when", "NP_s", "VP_s"], ["after", "NP_p", "VP_p"], ["because", "NP_s", "VP_s"],
              ["while", "NP_p", "VP_p"]],
    "QUOTE": [["\"", "NP_s", "VP_s", ",", "\"", "said", "NAME", "."],
              ["\"", "do", "NP_p", "V_p", "?", "\"", "asked", "NAME", "."]],
    "NUM_s": [["one"], ["a single"]],
    "NUM_p": [["two"], ["three"], ["seven"], ["twelve"], ["forty"], ["some"], ["many"],
              ["DIGITS"]],
    "CONJ": [["and"], ["but"], ["so"], ["although"]],
    "DET_s": [["the"], ["a"], ["every"], ["this"], ["that"], ["her"], ["his"]],
    "DET_p": [["the"], ["these"], ["those"], ["her"], ["our"], ["all the"]],
    "N_s": [[w] for w in "gardener beetle hedge lantern kettle sparrow orchard ladder river "
            "window spade pumpkin neighbour cellar rabbit gate".split()],
    "N_p": [[w] for w in "gardeners beetles hedges lanterns kettles sparrows orchards "
            "ladders rivers windows spades pumpkins neighbours cellars rabbits gates".split()],
    "NAME": [[w] for w in "Ada Bram Cleo Dario Edith Farid Greta Hugo Ines Jonas".split()],
    "ADJ": [[w] for w in "green quiet crooked old bright muddy tall narrow patient wet "
            "golden noisy".split()],
    "ADV": [["slowly"], ["again"], ["at dawn"], ["before supper"], ["all night"]],
    "V_s": [[w] for w in "sleeps waits sings grows leans rattles".split()],
    "V_p": [[w] for w in "sleep wait sing grow lean rattle".split()],
    "TV_s": [[w] for w in "watches mends carries paints follows counts".split()],
    "TV_p": [[w] for w in "watch mend carry paint follow count".split()],
    "BE_s": [["is"], ["was"], ["seems"]],
    "BE_p": [["are"], ["were"], ["seem"]],
    "P": [[w] for w in "near under behind beside across inside".split()] + [["next to"]],
}


def expand(symbol, rng, depth=0):
    if symbol == "DIGITS":
        return [str(rng.randrange(13, 1000))]
    if symbol not in GRAMMAR:
        return [symbol]
    options = GRAMMAR[symbol]
    if depth > 4:  # keep nesting bounded: take the shortest expansions deep down
        options = [min(options, key=len)]
    out = []
    for s in rng.choice(options):
        out += expand(s, rng, depth + 1)
    return out


def sentence(rng):
    words = expand("S", rng)
    text = ""
    for w in words:
        if w in ".,?" or (w == "\"" and text.endswith((",", "?"))):
            text += w
        elif text.endswith("\"") and text.count("\"") % 2 == 1:
            text += w
        else:
            text += (" " if text else "") + w
    return text[0].upper() + text[1:] if text[0] != "\"" else "\"" + text[1].upper() + text[2:]


def make_text(seed=SEED, target=TARGET_BYTES):
    rng = random.Random(seed)
    paragraphs, size = [], 0
    while size < target:
        para = " ".join(sentence(rng) for _ in range(rng.randrange(3, 8)))
        paragraphs.append(para)
        size += len(para) + 2
    return "\n\n".join(paragraphs) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true",
                    help="exit 1 if the committed file differs from what the grammar gives")
    args = ap.parse_args(argv)
    text = make_text()
    if args.check:
        same = PATH.read_text(encoding="ascii") == text
        print(f"{PATH}: {'up to date' if same else 'DIFFERS from the grammar'}")
        return 0 if same else 1
    PATH.write_text(text, encoding="ascii")
    print(f"wrote {PATH} ({len(text):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Step 1 of the default model (runs anywhere, no GPU): the text and the tokenizer.

Reads the fortune files named in SELECTION (SOURCES.md says where they come from and under what
license), splits every file's fortunes into train / valid / heldout by position (deterministic),
trains the byte-level BPE on the training text, and writes to OUT_DIR:
  train.txt valid.txt heldout.txt   the text of each split, in fortune format ("%" lines between)
  tokens.txt                        the vocabulary, one token per line, id = line number
  merges.txt                        the merges in rank order, "left right" per line
  train.u16 valid.u16 heldout.u16   each split's text encoded (little-endian uint16 ids)
  prepare.json                      sizes, for the record

Usage: prepare.py FORTUNE_DIR OUT_DIR
FORTUNE_DIR is /usr/share/games/fortunes after `apt-get install fortunes` (Debian 12: fortunes
1:1.99.1-7.3), or the same folder unpacked from the .deb.
"""
import json
import os
import struct
import sys

import byte_bpe

# The files of Debian's `fortunes` package used, in this order. Left out: ascii-art (pictures),
# ethnic, drugs and men-women (jokes at people's expense), pratchett and translate-me (a handful
# of entries), and the separately packaged offensive collection (fortunes-off), which is never read.
SELECTION = [
    "art", "computers", "cookie", "debian", "definitions", "disclaimer", "education", "food",
    "fortunes", "goedel", "humorists", "kids", "knghtbrd", "law", "linux", "linuxcookie",
    "literature", "love", "magic", "medicine", "miscellaneous", "news", "paradoxum", "people",
    "perl", "pets", "platitudes", "politics", "riddles", "science", "songs-poems", "sports",
    "startrek", "tao", "wisdom", "work", "zippy",
]

VOCAB_SIZE = 4096
SPECIAL = ["<s>", "</s>"]  # ids 0 (BOS) and 1 (EOS)
HELDOUT_EVERY = 20         # fortune i of a file: i % 20 == 0 -> heldout, == 10 -> valid


def read_fortunes(path):
    """The entries of one fortune file (separated by lines holding a single '%')."""
    with open(path, "rb") as f:
        raw = f.read()
    text = raw.decode("utf-8")  # the package's files are UTF-8; a failure here is a real problem
    entries, current = [], []
    for line in text.split("\n"):
        if line == "%":
            entries.append("\n".join(current))
            current = []
        else:
            current.append(line)
    entries.append("\n".join(current))
    return [e.strip("\n") + "\n" for e in entries if e.strip()]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    splits = {"train": [], "valid": [], "heldout": []}
    for name in SELECTION:
        for i, entry in enumerate(read_fortunes(os.path.join(src, name))):
            k = i % HELDOUT_EVERY
            splits["heldout" if k == 0 else "valid" if k == HELDOUT_EVERY // 2 else "train"].append(entry)
    texts = {k: "%\n".join(v) for k, v in splits.items()}
    for k, t in texts.items():
        with open(os.path.join(out, k + ".txt"), "w", encoding="utf-8") as f:
            f.write(t)

    n_base = len(SPECIAL) + 256
    merges = byte_bpe.train(texts["train"], VOCAB_SIZE - n_base)
    tokens = SPECIAL + [byte_bpe.BYTE_CHARS[b] for b in range(256)] + [a + b for a, b in merges]
    with open(os.path.join(out, "tokens.txt"), "w", encoding="utf-8") as f:
        f.write("".join(t + "\n" for t in tokens))
    with open(os.path.join(out, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("".join(f"{a} {b}\n" for a, b in merges))

    enc = byte_bpe.Encoder(tokens, merges)
    sizes = {"vocab": len(tokens), "merges": len(merges)}
    for k, t in texts.items():
        ids = enc.encode(t)
        assert enc.decode(ids, tokens) == t, f"{k}: the encoding does not round-trip"
        with open(os.path.join(out, k + ".u16"), "wb") as f:
            f.write(struct.pack(f"<{len(ids)}H", *ids))
        sizes[k] = {"fortunes": len(splits[k]), "bytes": len(t.encode("utf-8")), "tokens": len(ids)}
    with open(os.path.join(out, "prepare.json"), "w") as f:
        json.dump(sizes, f, indent=1)
    print(json.dumps(sizes, indent=1))


if __name__ == "__main__":
    main()

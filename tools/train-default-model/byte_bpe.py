"""Byte-level BPE (the GPT-2 scheme): training on a text, and encoding with the result.

Text is first cut into pieces by the Qwen2 pre-tokenizer expression (the same one apr's
tokenizer applies for `tokenizer.ggml.pre = "qwen2"`, core/src/tokenizer/pre_tokenizer.cpp), each
piece's UTF-8 bytes are spelled with one printable character per byte (bytes_to_chars), and
merges join adjacent symbols, most frequent pair first. Encoding applies the merges by rank, the
leftmost pair first on ties, which is what apr's encoder does.
"""
import heapq
from collections import Counter

import regex

# Contractions (case-insensitive letter by letter), letter runs with one optional leading
# non-letter, single digits, punctuation runs with trailing newlines, newline runs, spaces.
QWEN2_PATTERN = regex.compile(
    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
    r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def bytes_to_chars():
    """The byte -> character table of byte-level BPE: printable Latin-1 bytes stand for
    themselves, the other 68 bytes take the code points from U+0100 upwards, in byte order."""
    printable = set(range(ord("!"), ord("~") + 1)) | set(range(0xA1, 0xAC + 1)) | set(range(0xAE, 0xFF + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(0x100 + extra)
            extra += 1
    return table


BYTE_CHARS = bytes_to_chars()


def pieces(text):
    """The pre-tokenizer's pieces, each spelled in byte characters."""
    for m in QWEN2_PATTERN.finditer(text):
        yield "".join(BYTE_CHARS[b] for b in m.group(0).encode("utf-8"))


def train(text, n_merges):
    """Returns the merges, a list of (left, right) pairs in rank order."""
    words = Counter(pieces(text))
    symbols = [list(w) for w in words]
    counts = list(words.values())

    pair_count = Counter()
    where = {}  # pair -> set of word indices that contain it
    for i, s in enumerate(symbols):
        for p in zip(s, s[1:]):
            pair_count[p] += counts[i]
            where.setdefault(p, set()).add(i)

    # Max-heap by count, ties broken by the smaller pair so that the result is deterministic.
    # Entries go stale when a count changes; a popped entry is used only if it is current.
    heap = [(-c, p) for p, c in pair_count.items()]
    heapq.heapify(heap)
    merges = []
    while len(merges) < n_merges and heap:
        neg, pair = heapq.heappop(heap)
        if pair_count.get(pair, 0) != -neg or neg == 0:
            continue
        merges.append(pair)
        joined = pair[0] + pair[1]
        touched = set()
        for i in list(where.get(pair, ())):
            s = symbols[i]
            for p in zip(s, s[1:]):
                pair_count[p] -= counts[i]
                touched.add(p)
            merged, k = [], 0
            while k < len(s):
                if k + 1 < len(s) and s[k] == pair[0] and s[k + 1] == pair[1]:
                    merged.append(joined)
                    k += 2
                else:
                    merged.append(s[k])
                    k += 1
            symbols[i] = merged
            for p in zip(merged, merged[1:]):
                pair_count[p] += counts[i]
                where.setdefault(p, set()).add(i)
                touched.add(p)
        del where[pair]
        pair_count.pop(pair, None)
        for p in touched:
            if p != pair and pair_count.get(p, 0) > 0:
                heapq.heappush(heap, (-pair_count[p], p))
    return merges


class Encoder:
    def __init__(self, tokens, merges):
        self.ids = {t: i for i, t in enumerate(tokens)}
        self.ranks = {p: r for r, p in enumerate(merges)}
        self.cache = {}

    def _piece(self, piece):
        s = list(piece)
        while len(s) > 1:
            best = min(range(len(s) - 1), key=lambda k: (self.ranks.get((s[k], s[k + 1]), 1 << 30), k))
            pair = (s[best], s[best + 1])
            if pair not in self.ranks:
                break
            merged, k = [], 0
            while k < len(s):
                if k + 1 < len(s) and (s[k], s[k + 1]) == pair:
                    merged.append(s[k] + s[k + 1])
                    k += 2
                else:
                    merged.append(s[k])
                    k += 1
            s = merged
        return [self.ids[x] for x in s]

    def encode(self, text):
        out = []
        for piece in pieces(text):
            ids = self.cache.get(piece)
            if ids is None:
                ids = self.cache[piece] = self._piece(piece)
            out.extend(ids)
        return out

    def decode(self, ids, tokens):
        char_bytes = {c: b for b, c in BYTE_CHARS.items()}
        return bytes(char_bytes[c] for i in ids for c in tokens[i]).decode("utf-8", errors="replace")

#!/usr/bin/env python3
"""Writes tests/fixtures/tokenizer/official.json: texts and the ids the official RWKV tokenizer gives them.

The reference is TRIE_TOKENIZER from the pip package rwkv==0.8.32 (rwkv/rwkv_tokenizer.py), with the
vocabulary shipped in the same wheel. Its code is imported from the wheel, never copied here:

    python3 -m pip download rwkv==0.8.32 --no-deps -d /tmp/rwkvpkg
    python3 tools/reference/make_tokenizer_fixtures.py /tmp/rwkvpkg/rwkv-0.8.32-py3-none-any.whl \
        [--calibration ../shared/data/calibration_data_v5_rc.txt] [--out tests/fixtures/tokenizer/official.json]

WHEEL is the .whl file or a directory it was extracted into (the one holding rwkv/). The calibration text
(optional) adds a few KB of real-world slices; without it those cases are left out.

Each case holds either "text" (a Unicode string, encoded as UTF-8 before tokenizing) or "bytes_hex" (raw
bytes, for input that is not valid UTF-8), and "ids". The §4 vectors of docs rwkv7.md are checked here too.
"""

import argparse
import hashlib
import importlib.util
import json
import os
import random
import sys
import tempfile
import zipfile

VOCAB_NAME = "rwkv_vocab_v20230424.txt"
VOCAB_MD5_LF = "dd1946a66e1721abeac49f9c75a1e844"  # md5 of the vocabulary with LF line ends (the wheel has CRLF)

# rwkv7.md §4, checked by hand against the table there.
SPEC_VECTORS = [
    ("spec: chat turn", "User: hi\n\nAssistant:", [24281, 59, 4571, 261, 5585, 41693, 59]),
    ("spec: think", "Assistant: <think", [5585, 41693, 59, 295, 35762]),
    ("spec: three newlines", "\n\n\n", [3328]),
    ("spec: eiffel", "The Eiffel tower is in the city of",
     [6699, 304, 25740, 109, 39990, 4600, 4596, 22590, 30449, 4706]),
    ("spec: emoji", "\U0001F600", [3319, 153, 129]),
]

TEXTS = [
    ("empty", ""),
    ("english", "The quick brown fox jumps over the lazy dog. It's 3:45 p.m.; \"quoted\" words, (parens) & more!"),
    ("chinese", "人工智能是计算机科学的一个分支，它企图了解智能的实质，并生产出一种新的能以人类智能相似的方式做出反应的智能机器。"),
    ("japanese", "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。カタカナ、ひらがな、漢字。"),
    ("korean", "대한민국의 수도는 서울입니다. 한국어는 한글로 씁니다. 안녕하세요!"),
    ("arabic", "اللغة العربية هي أكثر اللغات تحدثاً ونطقاً ضمن مجموعة اللغات السامية."),
    ("russian", "Съешь же ещё этих мягких французских булок, да выпей чаю."),
    ("greek hindi thai", "Γειά σου Κόσμε. नमस्ते दुनिया। สวัสดีชาวโลก"),
    ("emoji", "I ❤️ RWKV 😀😃😄 🚀🔥 👍🏽 🇯🇵🇫🇷 ✅"),
    ("emoji zwj", "family 👨‍👩‍👧‍👦, rainbow flag 🏳️‍🌈, 🧑🏿‍💻 coder, 👩‍❤️‍💋‍👨"),
    ("combining and astral", "e\u0301 n\u0303 \U0001D518\U0001D52B\U0001D526\U0001D520\U0001D52C\U0001D521\U0001D522 "
                             "\uFEFFbom \uFFFD \uE000 \u00A0nbsp \u200Bzwsp"),
    ("latin-1 code points", "\u0080\u0081\u009F\u00A0\u00E9\u00FF caf\u00E9 na\u00EFve \u00C5ngstr\u00F6m"),
    ("python code", "def f(x):\n\tif x > 0:\n\t\treturn x * 2  # double\n\treturn -x\n\n\nclass A:\n    pass\n"),
    ("cpp code", "#include <cstdio>\nint main() {\n    for (int i = 0; i < 10; ++i) { std::printf(\"%d\\n\", i); }\n"
                 "    return 0;\n}\n"),
    ("json", '{"name": "rwkv", "version": [7, 0], "ok": true, "path": "C:\\\\tmp\\\\x", "nested": {"a": null}}'),
    ("spaces", "a" + " " * 100 + "b" + " " * 7 + "c" + " " * 33),
    ("tabs and mixed whitespace", "\t\t\t\tx\t \t \n \n\t\n" + "\t" * 40 + "y" + " \t" * 20),
    ("newline runs", "a\n\nb\n\n\nc\n\n\n\nd\n\n\n\n\n\ne" + "\n" * 17 + "f"),
    ("double newline boundaries", "User: hello\n\nAssistant: Hi!\n\nUser: bye\n\nAssistant:"),
    ("crlf", "line one\r\nline two\r\n\r\nline four\r\n"),
    ("chat think", "User: What is 2+2?\n\nAssistant: <think>\n2+2=4\n</think>\nThe answer is 4.\n\n"),
    ("digits", "0 1 12 123 1234 12345 123456 3.14159265358979 -42 1e-12 0xDEADBEEF 1,000,000"),
    ("urls markdown", "# Title\n\n* [link](https://example.com/a?b=c&d=e#f)\n* `code` **bold** _it_\n\n> quote\n"),
    ("quotes backslashes", "'single' \"double\" `back` \\n is not a newline, \\\\ and \\' \\x80 \\u1234"),
    ("control chars", "\x00\x01\x02\x1b[31mred\x1b[0m\x07\x08\x0b\x0c\x7f end"),
    ("repeated chars", "=" * 64 + "-" * 50 + "." * 33 + "!" * 9 + "ha" * 20),
    ("mixed scripts", "RWKV (读作 RwaKuv) は RNN です — 그리고 ça marche très bien, ¿verdad? Ωμέγα ∑∞≠√"),
]

# Raw bytes that are not valid UTF-8: the tokenizer works on bytes, so they must still tokenize.
BYTE_CASES = [
    ("invalid: lone continuation", b"abc\x80def"),
    ("invalid: ff fe", b"\xff\xfe hello \xfe\xff"),
    ("invalid: truncated emoji", b"smile \xf0\x9f"),
    ("invalid: overlong slash", b"\xc0\xaf\xe0\x80\xaf"),
    ("invalid: encoded surrogate", b"x\xed\xa0\x80y"),
    ("invalid: split 3-byte char", b"\xe4\xbd" + " and ".encode() + b"\xa0"),
]


def load_reference(wheel):
    """Imports rwkv/rwkv_tokenizer.py from the wheel (file or extracted directory); returns (module, vocab path)."""
    if os.path.isfile(wheel):
        tmp = tempfile.mkdtemp(prefix="rwkv-wheel-")
        with zipfile.ZipFile(wheel) as z:
            z.extractall(tmp)
        wheel = tmp
    src = os.path.join(wheel, "rwkv", "rwkv_tokenizer.py")
    vocab = os.path.join(wheel, "rwkv", VOCAB_NAME)
    if not os.path.isfile(src) or not os.path.isfile(vocab):
        sys.exit(f"{wheel}: expected rwkv/rwkv_tokenizer.py and rwkv/{VOCAB_NAME} (an extracted rwkv==0.8.32 wheel)")
    # Load the one module by path so that rwkv/__init__.py (and anything it imports) is not run.
    spec = importlib.util.spec_from_file_location("rwkv_tokenizer_reference", src)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, vocab


def calibration_slices(path, count=8, chars=1500):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    out = []
    for k in range(count):
        start = (len(text) - chars) * k // max(1, count - 1)
        out.append((f"calibration slice {k} @{start}", text[start:start + chars]))
    return out


def random_cases(seed=20230424):
    rng = random.Random(seed)
    ranges = [(0x20, 0x7E), (0x09, 0x0D), (0xA0, 0x24F), (0x370, 0x3FF), (0x400, 0x4FF), (0x600, 0x6FF),
              (0x3040, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0x1F300, 0x1FAFF), (0x80, 0x9F)]
    cases = []
    for k in range(3):
        chars = []
        for _ in range(400):
            lo, hi = rng.choice(ranges)
            chars.append(chr(rng.randint(lo, hi)))
        cases.append((f"random unicode {k}", "".join(chars)))
    for k in range(2):
        cases.append((f"random bytes {k}", bytes(rng.randrange(256) for _ in range(300))))
    return cases


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("wheel", help="rwkv-0.8.32 .whl file or the directory it was extracted into")
    repo = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    ap.add_argument("--calibration", default=os.path.join(repo, "..", "shared", "data", "calibration_data_v5_rc.txt"))
    ap.add_argument("--out", default=os.path.join(repo, "tests", "fixtures", "tokenizer", "official.json"))
    args = ap.parse_args()

    module, vocab = load_reference(args.wheel)
    with open(vocab, "rb") as f:
        md5 = hashlib.md5(f.read().replace(b"\r\n", b"\n")).hexdigest()
    if md5 != VOCAB_MD5_LF:
        sys.exit(f"{vocab}: md5 (LF line ends) is {md5}, expected {VOCAB_MD5_LF}")
    tok = module.TRIE_TOKENIZER(vocab)

    cases = []
    for name, text, expected in SPEC_VECTORS:
        ids = tok.encode(text)
        if ids != expected:
            sys.exit(f"{name}: the reference gives {ids}, rwkv7.md §4 says {expected}")
        cases.append((name, text))
    cases += TEXTS + BYTE_CASES + random_cases()
    if os.path.isfile(args.calibration):
        cases += calibration_slices(args.calibration)
    else:
        print(f"note: {args.calibration} not found, calibration slices left out", file=sys.stderr)

    lines = []
    for name, data in cases:
        if isinstance(data, bytes):
            ids = tok.encodeBytes(data)
            assert tok.decodeBytes(ids) == data
            entry = {"name": name, "bytes_hex": data.hex(), "ids": ids}
        else:
            ids = tok.encode(data)
            assert tok.decodeBytes(ids) == data.encode("utf-8")
            entry = {"name": name, "text": data, "ids": ids}
        lines.append(json.dumps(entry, ensure_ascii=False))

    header = {
        "generator": "tools/reference/make_tokenizer_fixtures.py",
        "reference": "pip rwkv==0.8.32, rwkv/rwkv_tokenizer.py TRIE_TOKENIZER, rwkv/" + VOCAB_NAME,
        "vocab_md5": VOCAB_MD5_LF,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("{\n")
        for k, v in header.items():
            f.write(f"  {json.dumps(k)}: {json.dumps(v)},\n")
        f.write('  "cases": [\n    ' + ",\n    ".join(lines) + "\n  ]\n}\n")
    size = os.path.getsize(args.out)
    print(f"wrote {args.out}: {len(lines)} cases, {size} bytes")


if __name__ == "__main__":
    main()

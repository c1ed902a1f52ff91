// UTF-8 validation and the streaming decoder (src/text/utf8.h).
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "text/utf8.h"

namespace {

using rwkv::first_invalid_utf8;
using rwkv::is_valid_utf8;
using rwkv::kReplacementChar;
using rwkv::to_valid_utf8;
using rwkv::Utf8StreamDecoder;

constexpr size_t npos = std::string_view::npos;

const std::vector<std::string> kValidTexts = {
    "",
    "plain ASCII\n\twith tabs",
    "café naïve Ångström \xC2\x80",                                     // 2-byte sequences, U+0080 included
    "人工智能 吾輩は猫である 대한민국",                                 // 3-byte
    "اللغة العربية",                                                    // 2-byte, right to left
    "😀 👨‍👩‍👧‍👦 🏳️‍🌈 🇯🇵 👍🏽",  // 4-byte, ZWJ sequences, flags, modifiers
    "\xF4\x8F\xBF\xBF \xEF\xBF\xBF \xED\x9F\xBF \xEE\x80\x80",          // U+10FFFF, U+FFFF, U+D7FF, U+E000: edges
    std::string("nul\0inside", 10),
};

// An independent validator for the exhaustive checks: decode the code point by its bit pattern, then reject
// overlong forms, surrogates and values above U+10FFFF.
bool reference_valid(const std::vector<uint8_t>& s) {
    size_t i = 0;
    while (i < s.size()) {
        const uint8_t b = s[i];
        int len;
        uint32_t cp;
        if (b < 0x80) {
            len = 1, cp = b;
        } else if ((b & 0xE0) == 0xC0) {
            len = 2, cp = b & 0x1F;
        } else if ((b & 0xF0) == 0xE0) {
            len = 3, cp = b & 0x0F;
        } else if ((b & 0xF8) == 0xF0) {
            len = 4, cp = b & 0x07;
        } else {
            return false;
        }
        if (i + len > s.size()) return false;
        for (int k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        static const uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += len;
    }
    return true;
}

std::string bytes(std::initializer_list<int> b) {
    std::string s;
    for (int c : b) s += static_cast<char>(c);
    return s;
}

TEST(Utf8, ValidTexts) {
    for (const std::string& t : kValidTexts) {
        EXPECT_TRUE(is_valid_utf8(t)) << t;
        EXPECT_EQ(first_invalid_utf8(t), npos) << t;
        EXPECT_EQ(to_valid_utf8(t), t);
    }
}

TEST(Utf8, FirstInvalidOffset) {
    EXPECT_EQ(first_invalid_utf8("abc\x80xyz"), 3u);        // lone continuation byte
    EXPECT_EQ(first_invalid_utf8("ok \xF0\x9F"), 3u);       // truncated at the end
    EXPECT_EQ(first_invalid_utf8("\xC0\xAF"), 0u);          // overlong '/'
    EXPECT_EQ(first_invalid_utf8("xy\xE0\x80\xAF"), 2u);    // overlong 3-byte
    EXPECT_EQ(first_invalid_utf8("é\xED\xA0\x80"), 2u);     // surrogate U+D800
    EXPECT_EQ(first_invalid_utf8("\xF4\x90\x80\x80"), 0u);  // U+110000
    EXPECT_EQ(first_invalid_utf8("\xF5\x80\x80\x80"), 0u);  // lead beyond U+10FFFF
    EXPECT_EQ(first_invalid_utf8("中\xE4\xBD\x20"), 3u);    // bad continuation
    EXPECT_EQ(first_invalid_utf8("\xFF"), 0u);
    EXPECT_FALSE(is_valid_utf8("\xC3"));
}

// Every 1- and 2-byte string, and every 3-byte string with a lead byte >= 0xE0, against the reference.
TEST(Utf8, ExhaustiveShortSequences) {
    std::vector<uint8_t> s(1);
    for (int a = 0; a < 256; a++) {
        s = {uint8_t(a)};
        ASSERT_EQ(is_valid_utf8(std::string(s.begin(), s.end())), reference_valid(s)) << a;
        for (int b = 0; b < 256; b++) {
            s = {uint8_t(a), uint8_t(b)};
            ASSERT_EQ(is_valid_utf8(std::string(s.begin(), s.end())), reference_valid(s)) << a << " " << b;
        }
    }
    size_t n_valid = 0;
    for (int a = 0xE0; a < 256; a++)
        for (int b = 0; b < 256; b++)
            for (int c = 0; c < 256; c++) {
                s = {uint8_t(a), uint8_t(b), uint8_t(c)};
                const bool valid = reference_valid(s);
                n_valid += valid;
                ASSERT_EQ(is_valid_utf8(std::string(s.begin(), s.end())), valid) << a << " " << b << " " << c;
            }
    // U+0800..U+FFFF less the 2048 surrogates.
    EXPECT_EQ(n_valid, 0x10000u - 0x800u - 0x800u);
}

TEST(Utf8, AppendUtf8) {
    auto enc = [](uint32_t cp) {
        std::string s;
        EXPECT_TRUE(rwkv::append_utf8(cp, s)) << cp;
        return s;
    };
    EXPECT_EQ(enc(0x00), std::string(1, '\0'));
    EXPECT_EQ(enc(0x7F), "\x7F");
    EXPECT_EQ(enc(0x80), "\xC2\x80");
    EXPECT_EQ(enc(0xFF), "\xC3\xBF");
    EXPECT_EQ(enc(0x7FF), "\xDF\xBF");
    EXPECT_EQ(enc(0x800), "\xE0\xA0\x80");
    EXPECT_EQ(enc(0xFFFD), std::string(kReplacementChar));
    EXPECT_EQ(enc(0x10000), "\xF0\x90\x80\x80");
    EXPECT_EQ(enc(0x1F600), "😀");
    EXPECT_EQ(enc(0x10FFFF), "\xF4\x8F\xBF\xBF");
    std::string s;
    EXPECT_FALSE(rwkv::append_utf8(0xD800, s));
    EXPECT_FALSE(rwkv::append_utf8(0xDFFF, s));
    EXPECT_FALSE(rwkv::append_utf8(0x110000, s));
    EXPECT_TRUE(s.empty());
}

// Expected outputs of Python's bytes.decode("utf-8", errors="replace") (maximal-subpart replacement).
TEST(Utf8, ReplacementMatchesPython) {
    const std::string R(kReplacementChar);
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"abc\x80xyz", "abc" + R + "xyz"},
        {"\xFF\xFE", R + R},
        {"\xF0\x9F", R},
        {std::string("\xF0\x9F") + "A", R + "A"},
        {"\xE0\x80\xAF", R + R + R},
        {"\xC0\xAF", R + R},
        {"\xED\xA0\x80", R + R + R},
        {"\xF4\x90\x80\x80", R + R + R + R},
        {"\xF5\x80", R + R},
        {"\xE4\xBD \xA0", R + " " + R},
        {"\xF0\x9F\x98\xF0\x9F\x98\x80", R + "😀"},
        {"\xC3", R},
        {"\xE2\x82\xAC\xE2\x82", "€" + R},
    };
    for (const auto& [in, want] : cases) EXPECT_EQ(to_valid_utf8(in), want) << in;
}

// Concatenated output for `pieces` fed one after another, checking that every piece of output is valid.
std::string feed_pieces(const std::vector<std::string>& pieces) {
    Utf8StreamDecoder dec;
    std::string all;
    for (const std::string& p : pieces) {
        const std::string out = dec.feed(p);
        EXPECT_TRUE(is_valid_utf8(out));
        EXPECT_LE(dec.pending_size(), 3u);
        all += out;
    }
    const std::string tail = dec.flush();
    EXPECT_EQ(dec.pending_size(), 0u);
    return all + tail;
}

TEST(Utf8Stream, EverySplitPointOfValidText) {
    for (const std::string& t : kValidTexts) {
        for (size_t i = 0; i <= t.size(); i++) {
            // Two pieces.
            ASSERT_EQ(feed_pieces({t.substr(0, i), t.substr(i)}), t) << "split at " << i;
            // Three pieces, for every second split point after the first.
            for (size_t j = i; j <= t.size() && j < i + 5; j++)
                ASSERT_EQ(feed_pieces({t.substr(0, i), t.substr(i, j - i), t.substr(j)}), t) << i << "," << j;
        }
        // One byte at a time.
        std::vector<std::string> singles;
        for (char c : t) singles.emplace_back(1, c);
        EXPECT_EQ(feed_pieces(singles), t);
    }
}

TEST(Utf8Stream, HoldsBackIncompleteCharacter) {
    Utf8StreamDecoder dec;
    EXPECT_EQ(dec.feed("ab\xF0"), "ab");
    EXPECT_EQ(dec.pending_size(), 1u);
    EXPECT_EQ(dec.feed("\x9F"), "");
    EXPECT_EQ(dec.feed("\x98"), "");
    EXPECT_EQ(dec.pending_size(), 3u);
    EXPECT_EQ(dec.feed("\x80!"), "😀!");
    EXPECT_EQ(dec.pending_size(), 0u);
    EXPECT_EQ(dec.flush(), "");
}

TEST(Utf8Stream, FlushEmitsReplacementForDanglingSequence) {
    Utf8StreamDecoder dec;
    EXPECT_EQ(dec.feed("x\xE4\xBD"), "x");
    EXPECT_EQ(dec.flush(), std::string(kReplacementChar));
    // The decoder is fresh again after flush().
    EXPECT_EQ(dec.feed("\xA0"), std::string(kReplacementChar));
    EXPECT_EQ(dec.feed("中"), "中");
    EXPECT_EQ(dec.flush(), "");
}

TEST(Utf8Stream, ReplacesAsSoonAsSequenceCannotComplete) {
    Utf8StreamDecoder dec;
    EXPECT_EQ(dec.feed("\xF0\x9F"), "");
    EXPECT_EQ(dec.feed("A"), std::string(kReplacementChar) + "A");  // 'A' ends it: U+FFFD, then 'A'
    EXPECT_EQ(dec.feed("\xE0"), "");
    EXPECT_EQ(dec.feed("\x80"), std::string(kReplacementChar) + std::string(kReplacementChar));  // overlong
    EXPECT_EQ(dec.feed("\xFF"), std::string(kReplacementChar));                                  // never valid
    EXPECT_EQ(dec.pending_size(), 0u);
    dec.feed("\xC3");
    dec.reset();  // drops the pending byte silently
    EXPECT_EQ(dec.feed("a"), "a");
    EXPECT_EQ(dec.flush(), "");
}

// Whatever the split, the stream gives the same text as to_valid_utf8 of the whole input.
TEST(Utf8Stream, InvalidInputIsSplitInvariant) {
    const std::vector<std::string> inputs = {
        "abc\x80\x80z",
        "\xF0\x9F\x98\xF0\x9F\x98\x80 end",
        "\xE0\x80\xAF\xED\xA0\x80\xF4\x90\x80\x80",
        "\xC3\xC3\xA9\xC3",
        "\xE2\x82\xAC\xE2\x82",
        "\xFF\xFE\xFD 中\xE4\xBD",
        bytes({0xF1, 0x80, 0x80})  // truncated 4-byte sequence at the end
    };
    for (const std::string& in : inputs) {
        const std::string want = to_valid_utf8(in);
        EXPECT_TRUE(is_valid_utf8(want));
        for (size_t i = 0; i <= in.size(); i++)
            for (size_t j = i; j <= in.size(); j++)
                ASSERT_EQ(feed_pieces({in.substr(0, i), in.substr(i, j - i), in.substr(j)}), want) << i << "," << j;
    }
}

}  // namespace

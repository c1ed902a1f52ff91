// The RWKV World tokenizer (src/text/tokenizer.h).
//
// Tests marked "real vocabulary" need rwkv_vocab_v20230424.txt and look for it in: $RWKV_VOCAB, then the
// build's share/rwkv/ (tools/setup_vocab.sh puts it there), then ../shared/vocab. Without it they skip.
// The corrupt-vocabulary tests write small synthetic files and always run.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "testutil/testutil.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

namespace {

namespace fs = std::filesystem;
using rwkv::WorldTokenizer;
using Ids = std::vector<int32_t>;

constexpr const char* kVocabName = "rwkv_vocab_v20230424.txt";

std::string find_vocab() {
    if (const char* env = std::getenv("RWKV_VOCAB"); env && *env) return env;  // explicit: used even if missing
    // Lexically, so that it works even before the bin directory exists.
    const fs::path built = (fs::path(RWKV_BIN_DIR) / "../share/rwkv" / kVocabName).lexically_normal();
    if (fs::is_regular_file(built)) return built.string();
    if (const std::string shared = rwkv::test::shared_dir(); !shared.empty()) {
        const std::string path = shared + "/vocab/" + kVocabName;
        if (fs::is_regular_file(path)) return path;
    }
    return "";
}

// The real vocabulary, loaded once for the whole suite.
class WorldVocab : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        path_ = find_vocab();
        if (path_.empty()) return;
        try {
            tok_ = WorldTokenizer::load(path_);
        } catch (const rwkv::Error& e) {
            load_error_ = e.what();
        }
    }
    static void TearDownTestSuite() { tok_.reset(); }
    void SetUp() override {
        if (!load_error_.empty()) FAIL() << load_error_;
        if (!tok_)
            GTEST_SKIP() << kVocabName << " not found: set RWKV_VOCAB, run tools/setup_vocab.sh (installs it into "
                         << "build/share/rwkv), or provide ../shared/vocab";
    }
    static const WorldTokenizer& tok() { return *tok_; }
    static std::string decode(const Ids& ids) { return tok_->decode(ids.data(), ids.size()); }

    static inline std::string path_, load_error_;
    static inline std::unique_ptr<WorldTokenizer> tok_;
};

// ---- real vocabulary

TEST_F(WorldVocab, SpecVectors) {  // rwkv7.md §4
    EXPECT_EQ(tok().encode("User: hi\n\nAssistant:"), (Ids{24281, 59, 4571, 261, 5585, 41693, 59}));
    EXPECT_EQ(tok().encode("Assistant: <think"), (Ids{5585, 41693, 59, 295, 35762}));
    EXPECT_EQ(tok().encode("\n\n\n"), (Ids{3328}));
    EXPECT_EQ(tok().encode("The Eiffel tower is in the city of"),
              (Ids{6699, 304, 25740, 109, 39990, 4600, 4596, 22590, 30449, 4706}));
    EXPECT_EQ(tok().encode("😀"), (Ids{3319, 153, 129}));
    // "Other useful ids".
    EXPECT_EQ(tok().encode("\n"), Ids{11});
    EXPECT_EQ(tok().encode(" "), Ids{33});
    EXPECT_EQ(tok().encode("\t"), Ids{10});
    for (int d = 0; d < 10; d++) EXPECT_EQ(tok().encode(std::to_string(d)), Ids{49 + d});
    EXPECT_EQ(tok().encode("\n\n"), Ids{261});
    EXPECT_EQ(tok().encode("User"), Ids{24281});
}

TEST_F(WorldVocab, VocabularyFacts) {
    EXPECT_EQ(tok().vocab_size(), 65530u);
    EXPECT_EQ(tok().model_vocab_size(), 65536u);
    EXPECT_EQ(tok().max_token_bytes(), 128u);
    // Ids 1..256 are the single bytes, id = byte + 1 (str '\x00'..'\x7f', then b'\x80'..b'\xff').
    for (int b = 0; b < 256; b++) ASSERT_EQ(tok().token_bytes(b + 1), std::string(1, static_cast<char>(b))) << b;
    // str '\x80' is U+0080, two bytes; b'\x80' is one byte.
    EXPECT_EQ(tok().token_bytes(2423), "\xC2\x80");
    EXPECT_EQ(tok().token_bytes(129), "\x80");
    EXPECT_EQ(tok().token_bytes(3319), "\xF0\x9F");
    EXPECT_EQ(tok().token_bytes(0), "");
    // 486 tokens are not valid UTF-8 on their own; all of them are written as b'' literals in the file.
    size_t n_invalid = 0, total_bytes = 0;
    for (int32_t id = 1; id < 65530; id++) {
        n_invalid += !rwkv::is_valid_utf8(tok().token_bytes(id));
        total_bytes += tok().token_bytes(id).size();
    }
    EXPECT_EQ(n_invalid, 486u);
    EXPECT_GT(total_bytes, 65529u);
}

// Every token encodes to itself. None can fail: the tokens are distinct (load() checks it) and greedy
// matching at position 0 can never take more than the whole input, so the longest match for a token's own
// bytes is that token. (In context it differs: ' t' followed by 'he' is read as ' the'.)
TEST_F(WorldVocab, EveryTokenRoundTrips) {
    size_t n_round_trip = 0;
    for (int32_t id = 1; id < 65530; id++) {
        const std::string_view b = tok().token_bytes(id);
        if (tok().encode(b) == Ids{id}) n_round_trip++;
        ASSERT_EQ(tok().token_id(b), id);
    }
    EXPECT_EQ(n_round_trip, 65529u);
    EXPECT_EQ(tok().token_id(""), -1);
    EXPECT_EQ(tok().token_id("this string is surely not a single token"), -1);
    const Ids pieces{tok().token_id(" t"), tok().token_id("he")};
    EXPECT_EQ(tok().encode(decode(pieces)), Ids{tok().token_id(" the")});
}

TEST_F(WorldVocab, EmptyInput) {
    EXPECT_TRUE(tok().encode("").empty());
    EXPECT_EQ(tok().decode(nullptr, 0), "");
    Ids out{7};
    tok().encode("", out);
    EXPECT_EQ(out, Ids{7});
    tok().encode("\n", out);  // the appending overload keeps what is there
    EXPECT_EQ(out, (Ids{7, 11}));
}

TEST_F(WorldVocab, OfficialTokenizerFixtures) {
    std::ifstream f(rwkv::test::fixture("tokenizer/official.json"));
    ASSERT_TRUE(f) << "missing fixture tokenizer/official.json";
    const nlohmann::json doc = nlohmann::json::parse(f);
    size_t n_cases = 0, n_ids = 0;
    for (const auto& c : doc.at("cases")) {
        std::string input;
        if (c.contains("text")) {
            input = c.at("text").get<std::string>();
        } else {
            const std::string hex = c.at("bytes_hex").get<std::string>();
            for (size_t i = 0; i + 1 < hex.size(); i += 2)
                input += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
        }
        const Ids want = c.at("ids").get<Ids>();
        const Ids got = tok().encode(input);
        EXPECT_EQ(got, want) << c.at("name").get<std::string>();
        EXPECT_EQ(decode(got), input) << c.at("name").get<std::string>();
        n_cases++;
        n_ids += want.size();
    }
    EXPECT_GE(n_cases, 40u);
    EXPECT_GT(n_ids, 3000u);
}

TEST_F(WorldVocab, MultilingualRoundTripAndStreaming) {
    const std::vector<std::string> texts = {
        "The quick brown fox jumps over the lazy dog.",
        "人工智能是计算机科学的一个分支。",
        "吾輩は猫である。名前はまだ無い。",
        "대한민국의 수도는 서울입니다.",
        "اللغة العربية هي أكثر اللغات تحدثاً",
        "family 👨‍👩‍👧‍👦 flag 🏳️‍🌈 hand 👍🏽 🇯🇵 😀",
        "def f(x):\n\tif x:\n\t\treturn 1\n" + std::string(64, ' ') + "end\t\t\t\n",
        "User: hi\n\nAssistant: hello\n\n\n\nUser:",
    };
    for (const std::string& t : texts) {
        const Ids ids = tok().encode(t);
        EXPECT_EQ(decode(ids), t);
        // Token by token through the streaming decoder: every chunk is valid, together they are the text.
        rwkv::Utf8StreamDecoder dec;
        std::string streamed;
        for (int32_t id : ids) {
            const std::string chunk = dec.feed(tok().token_bytes(id));
            ASSERT_TRUE(rwkv::is_valid_utf8(chunk));
            streamed += chunk;
        }
        streamed += dec.flush();
        EXPECT_EQ(streamed, t);
    }
    // Whitespace runs and "\n\n" boundaries: each token of a long run stays whitespace.
    const Ids run = tok().encode(std::string(300, ' '));
    EXPECT_LT(run.size(), 300u / 8);
    for (int32_t id : run) EXPECT_EQ(tok().token_bytes(id).find_first_not_of(' '), std::string_view::npos);
}

// encode() works on bytes: invalid UTF-8 is tokenized byte-wise and round-trips exactly.
TEST_F(WorldVocab, InvalidUtf8Input) {
    EXPECT_EQ(tok().encode("\xFF\xFE"), (Ids{256, 255}));
    EXPECT_EQ(tok().encode("\xF0\x9F"), Ids{3319});
    EXPECT_EQ(decode(tok().encode("abc\x80xyz")), "abc\x80xyz");
    std::mt19937 rng(42);
    for (int trial = 0; trial < 2000; trial++) {
        std::string s(rng() % 64, '\0');
        for (char& c : s) c = static_cast<char>(rng() & 0xFF);
        const Ids ids = tok().encode(s);
        ASSERT_EQ(decode(ids), s);
        for (int32_t id : ids) ASSERT_TRUE(id >= 1 && id < 65530);
    }
}

TEST_F(WorldVocab, DecodeBrokenCharactersAndSpecialIds) {
    // Half an emoji decodes to its raw bytes; the text layer turns it into U+FFFD.
    EXPECT_EQ(decode({3319}), "\xF0\x9F");
    EXPECT_EQ(rwkv::to_valid_utf8(decode({3319})), std::string(rwkv::kReplacementChar));
    EXPECT_EQ(decode({3319, 153, 129}), "😀");
    EXPECT_EQ(decode({3319, 153}) + decode({129}), "😀");
    // Two halves in the wrong order.
    EXPECT_EQ(rwkv::to_valid_utf8(decode({153, 3319})), std::string(rwkv::kReplacementChar) + "\xEF\xBF\xBD");
    // Id 0 (end of text) and the unused ids 65530..65535 decode to nothing.
    EXPECT_EQ(decode({0, 24281, 0, 65530, 65535, 59}), "User:");
    EXPECT_EQ(tok().token_bytes(65535), "");
    for (int32_t bad : {-1, 65536, 1 << 30}) {
        try {
            decode({24281, bad});
            ADD_FAILURE() << "no error for id " << bad;
        } catch (const rwkv::Error& e) {
            EXPECT_EQ(e.status(), RWKV_STATUS_INVALID_ARGUMENT);
            EXPECT_NE(std::string(e.what()).find(std::to_string(bad)), std::string::npos) << e.what();
        }
        EXPECT_THROW(tok().token_bytes(bad), rwkv::Error);
    }
}

TEST_F(WorldVocab, CrlfFileLoadsTheSame) {
    // The pip wheel ships the vocabulary with CRLF line ends.
    std::ifstream f(path_, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(f)), {}), crlf;
    for (char c : text) {
        if (c == '\r') continue;  // RWKV_VOCAB may already be the CRLF file
        if (c == '\n') crlf += '\r';
        crlf += c;
    }
    const std::string p = rwkv::test::temp_path("vocab_crlf.txt");
    rwkv::test::write_file(p, std::vector<uint8_t>(crlf.begin(), crlf.end()));
    const auto t2 = WorldTokenizer::load(p);
    ASSERT_EQ(t2->vocab_size(), tok().vocab_size());
    for (int32_t id = 0; id < 65530; id++) ASSERT_EQ(t2->token_bytes(id), tok().token_bytes(id));
}

// ---- synthetic vocabularies (no real vocabulary needed)

// 256 single-byte lines written as in the real file, then a few multi-byte tokens exercising the literal
// rules. Line k holds id k.
std::vector<std::string> synthetic_lines() {
    std::vector<std::string> lines;
    char buf[64];
    for (int b = 0; b < 256; b++) {
        std::string lit;
        switch (b) {
            case '\'':  // "'" as in the real file
                lit = "\"'\"";
                break;
            case '\\':
                lit = "'\\\\'";
                break;
            case '\n':
                lit = "'\\n'";
                break;
            case '\t':
                lit = "'\\t'";
                break;
            case '\r':
                lit = "'\\r'";
                break;
            default:
                if (b >= 0x20 && b < 0x7F) {
                    lit = std::string("'") + static_cast<char>(b) + "'";
                } else {
                    std::snprintf(buf, sizeof buf, "%s'\\x%02x'", b < 0x80 ? "" : "b", b);
                    lit = buf;
                }
        }
        lines.push_back(std::to_string(b + 1) + " " + lit + " 1");
    }
    const char* extra[] = {
        "257 'ab' 2",           // plain
        "258 '\\x80' 2",        // str \x80 is U+0080: C2 80
        "259 b'\\xf0\\x9f' 2",  // bytes: raw, half an emoji
        "260 \"it's\" 4",       // double quotes around '
        "261 'a b' 3",          // a space inside the literal
        "262 '\\u4e2d' 3",      // \u escape: 中
        "263 '中文' 6",         // raw UTF-8 in a str literal
        "264 '\\n\\n' 2",       // escapes
        "265 \"x\\\"y\\'\" 4",  // \" and \' escapes
        "266 'a b c  d' 8",     // several spaces: byte length is after the last one
    };
    for (const char* e : extra) lines.push_back(e);
    return lines;
}

std::string write_vocab(const std::string& name, const std::vector<std::string>& lines, const char* eol = "\n") {
    std::string text;
    for (const std::string& l : lines) text += l + eol;
    const std::string p = rwkv::test::temp_path(name);
    rwkv::test::write_file(p, std::vector<uint8_t>(text.begin(), text.end()));
    return p;
}

TEST(SyntheticVocab, LiteralRules) {
    const auto tok = WorldTokenizer::load(write_vocab("good.txt", synthetic_lines()));
    EXPECT_EQ(tok->vocab_size(), 267u);
    EXPECT_EQ(tok->model_vocab_size(), 320u);
    EXPECT_EQ(tok->token_bytes(40), "'");
    EXPECT_EQ(tok->token_bytes(93), "\\");
    EXPECT_EQ(tok->token_bytes(129), "\x80");
    EXPECT_EQ(tok->token_bytes(258), "\xC2\x80");
    EXPECT_EQ(tok->token_bytes(259), "\xF0\x9F");
    EXPECT_EQ(tok->token_bytes(260), "it's");
    EXPECT_EQ(tok->token_bytes(261), "a b");
    EXPECT_EQ(tok->token_bytes(262), "中");
    EXPECT_EQ(tok->token_bytes(263), "中文");
    EXPECT_EQ(tok->token_bytes(264), "\n\n");
    EXPECT_EQ(tok->token_bytes(265), "x\"y'");
    EXPECT_EQ(tok->token_bytes(266), "a b c  d");
    EXPECT_EQ(tok->max_token_bytes(), 8u);
    // Greedy longest match: "a b c  d" beats "a b", which beats "a".
    EXPECT_EQ(tok->encode("a b c  d"), Ids{266});
    EXPECT_EQ(tok->encode("a b c"), (Ids{261, 33, 100}));
    EXPECT_EQ(tok->encode("\xC2\x80\x80"), (Ids{258, 129}));
    EXPECT_EQ(tok->encode("😀"), (Ids{259, 0x98 + 1, 0x80 + 1}));
    EXPECT_EQ(tok->encode("中文中"), (Ids{263, 262}));
    EXPECT_EQ(tok->encode("abab\n\n\n"), (Ids{257, 257, 264, 11}));
    // Ids in [267, 320) decode to nothing; 320 is out of range.
    EXPECT_EQ(tok->token_bytes(319), "");
    EXPECT_THROW(tok->token_bytes(320), rwkv::Error);
}

TEST(SyntheticVocab, CrlfAndMissingFinalNewline) {
    const auto crlf = WorldTokenizer::load(write_vocab("crlf.txt", synthetic_lines(), "\r\n"));
    EXPECT_EQ(crlf->vocab_size(), 267u);
    EXPECT_EQ(crlf->token_bytes(266), "a b c  d");
    std::vector<std::string> lines = synthetic_lines();
    std::string text;
    for (size_t i = 0; i < lines.size(); i++) text += lines[i] + (i + 1 < lines.size() ? "\n" : "");
    const std::string p = rwkv::test::temp_path("no_final_newline.txt");
    rwkv::test::write_file(p, std::vector<uint8_t>(text.begin(), text.end()));
    EXPECT_EQ(WorldTokenizer::load(p)->token_bytes(266), "a b c  d");
}

struct Corruption {
    const char* name;
    size_t line;           // 1-based line to replace; 0 appends `text` as a new last line
    const char* text;      // the new line (nullptr: delete the line)
    const char* message;   // expected substring of the error
    size_t reported_line;  // line the message names; 0 for whole-file errors
};

std::string identifier(std::string s) {
    for (char& ch : s)
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
    return s;
}

class CorruptVocab : public ::testing::TestWithParam<Corruption> {};

TEST_P(CorruptVocab, NamesTheLine) {
    const Corruption& c = GetParam();
    std::vector<std::string> lines = synthetic_lines();
    if (c.line == 0)
        lines.push_back(c.text);
    else if (c.text)
        lines[c.line - 1] = c.text;
    else
        lines.erase(lines.begin() + (c.line - 1));
    const std::string path = write_vocab("corrupt_" + identifier(c.name) + ".txt", lines);
    try {
        WorldTokenizer::load(path);
        FAIL() << c.name << ": loaded without error";
    } catch (const rwkv::Error& e) {
        const std::string msg = e.what();
        EXPECT_EQ(e.status(), RWKV_STATUS_FORMAT_ERROR) << msg;
        const std::string where = c.reported_line ? path + ":" + std::to_string(c.reported_line) + ": " : path + ": ";
        EXPECT_EQ(msg.rfind(where, 0), 0u) << "message should start with '" << where << "': " << msg;
        EXPECT_NE(msg.find(c.message), std::string::npos) << "expected '" << c.message << "' in: " << msg;
    }
}

const Corruption kCorruptions[] = {
    {"bad escape", 257, "257 'a\\qb' 3", "unknown escape '\\q'", 257},
    {"u escape in bytes", 257, "257 b'\\u1234' 6", "unknown escape '\\u'", 257},
    {"wrong length", 257, "257 'ab' 3", "byte length mismatch: the literal is 2 bytes, the line says 3", 257},
    {"wrong length of str \\x80", 258, "258 '\\x80' 1", "byte length mismatch", 258},
    {"missing id", 257, nullptr, "non-contiguous id: expected 257, found 258", 257},
    {"repeated id", 258, "257 'zz' 2", "non-contiguous id: expected 258, found 257", 258},
    {"id 0", 1, "0 '\\x00' 1", "id 0 is reserved", 1},
    {"non-numeric id", 257, "x57 'ab' 2", "bad id 'x57'", 257},
    {"negative id", 257, "-257 'ab' 2", "bad id", 257},
    {"huge id", 257, "99999999999 'ab' 2", "bad id", 257},
    {"non-numeric length", 257, "257 'ab' two", "bad byte length 'two'", 257},
    {"missing length", 257, "257 'ab'", "expected '<id> <literal> <byte_len>'", 257},
    {"no fields", 100, "100", "expected '<id> <literal> <byte_len>'", 100},
    {"empty line", 200, "", "empty line", 200},
    {"unquoted literal", 257, "257 ab 2", "bad literal", 257},
    {"mismatched quotes", 257, "257 'ab\" 2", "bad literal", 257},
    {"escaped closing quote", 257, "257 'ab\\' 2", "unterminated", 257},
    {"unescaped quote", 257, "257 'a'b' 3", "unescaped quote", 257},
    {"short hex escape", 257, "257 '\\x4' 1", "needs 2 hex digits", 257},
    {"short u escape", 262, "262 '\\u4e2' 3", "needs 4 hex digits", 262},
    {"surrogate", 262, "262 '\\ud800' 3", "surrogate", 262},
    {"non-ASCII in bytes literal", 263, "263 b'中文' 6", "non-ASCII", 263},
    {"invalid UTF-8 in str literal", 257, "257 'a\xff' 2", "invalid UTF-8", 257},
    {"empty token", 257, "257 '' 0", "empty token", 257},
    {"duplicate token", 257, "257 'a' 1", "duplicate token: same bytes as id 98 (line 98)", 257},
    {"duplicate token via escape", 257, "257 '\\x61' 1", "duplicate token: same bytes as id 98 (line 98)", 257},
    {"duplicate token via bytes", 263, "263 b'\\xe4\\xb8\\xad' 3", "duplicate token: same bytes as id 262 (line 262)",
     263},
    {"missing single byte", 256, "256 'zz' 2", "no token for the single byte 0xff", 0},
};

INSTANTIATE_TEST_SUITE_P(WorldTokenizer, CorruptVocab, ::testing::ValuesIn(kCorruptions),
                         [](const auto& test) { return identifier(test.param.name); });

TEST(SyntheticVocab, IoAndEmptyFiles) {
    try {
        WorldTokenizer::load(rwkv::test::temp_path("does_not_exist.txt"));
        FAIL();
    } catch (const rwkv::Error& e) {
        EXPECT_EQ(e.status(), RWKV_STATUS_IO_ERROR);
        EXPECT_NE(std::string(e.what()).find("does_not_exist.txt"), std::string::npos) << e.what();
    }
    try {
        WorldTokenizer::load(rwkv::test::temp_dir());  // a directory
        FAIL();
    } catch (const rwkv::Error& e) {
        EXPECT_EQ(e.status(), RWKV_STATUS_IO_ERROR) << e.what();
    }
    const std::string empty = write_vocab("empty.txt", {});
    try {
        WorldTokenizer::load(empty);
        FAIL();
    } catch (const rwkv::Error& e) {
        EXPECT_EQ(e.status(), RWKV_STATUS_FORMAT_ERROR);
        EXPECT_EQ(std::string(e.what()), empty + ": the vocabulary has no tokens");
    }
}

}  // namespace

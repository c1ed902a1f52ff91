#include "text/tokenizer.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

#include "common/error.h"
#include "text/utf8.h"

namespace rwkv {

namespace {

// Double-array placement: a node with at least this many children is placed past the highest used slot
// instead of in the first hole that fits. Wide nodes rarely fit in the holes, and trying them all is what
// makes first-fit slow. With the World vocabulary: 8 gives 99.8% of slots used and about 6-9 ms of
// placement; 4 gives 89%; no limit gives 99.8% but about 50 ms.
constexpr size_t kWideNode = 8;

// The World vocabulary is 1.3 MB; a file far larger is not a vocabulary, and a device such as /dev/zero or a FIFO
// that never ends must not be read forever.
constexpr size_t kMaxVocabBytes = 16 << 20;

std::string read_whole_file(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw_io("cannot open vocabulary " + path + ": " + std::strerror(errno));
    std::string data;
    char buf[1 << 16];
    size_t got;
    while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) {
        data.append(buf, got);
        if (data.size() > kMaxVocabBytes) {
            std::fclose(f);
            throw_format(path + ": vocabulary file larger than " + std::to_string(kMaxVocabBytes >> 20) +
                         " MiB (the World vocabulary is 1.3 MB)");
        }
    }
    const bool failed = std::ferror(f) != 0;
    const int err = errno;
    std::fclose(f);
    if (failed) throw_io("cannot read vocabulary " + path + ": " + std::strerror(err));
    return data;
}

// A short, printable rendering of untrusted text for error messages: bytes outside ASCII become \xHH.
std::string printable(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size() && i < 40; i++) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x7F) {
            out += static_cast<char>(c);
        } else {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            out += hex;
        }
    }
    if (s.size() > 40) out += "...";
    return out;
}

std::string quoted(std::string_view s) {
    return "'" + printable(s) + "'";
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Parses a non-negative decimal integer that fits in int32 ("" and signs are rejected).
bool parse_decimal(std::string_view s, int64_t& value) {
    if (s.empty() || s.size() > 10) return false;
    value = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        value = value * 10 + (c - '0');
    }
    return value <= std::numeric_limits<int32_t>::max();
}

// Parses one line's fields and appends the token's bytes to `out`.
class LineParser {
  public:
    LineParser(const std::string& path, size_t line_no) : path_(path), line_no_(line_no) {}

    [[noreturn]] void fail(const std::string& what) const {
        throw_format(path_ + ":" + std::to_string(line_no_) + ": " + what);
    }

    // `<id> <literal> <byte_len>`: id is the text before the first space, byte_len the text after the
    // last space, the literal everything in between (it may itself contain spaces).
    void parse(std::string_view line, int32_t expected_id, std::string& out) {
        const size_t first = line.find(' ');
        const size_t last = line.rfind(' ');
        if (first == std::string_view::npos || first == last)
            fail("expected '<id> <literal> <byte_len>', found " + quoted(line));
        int64_t id, byte_len;
        if (!parse_decimal(line.substr(0, first), id)) fail("bad id " + quoted(line.substr(0, first)));
        if (id == 0) fail("id 0 is reserved for end-of-text and must not appear in the file");
        if (id != expected_id)
            fail("non-contiguous id: expected " + std::to_string(expected_id) + ", found " + std::to_string(id));
        if (!parse_decimal(line.substr(last + 1), byte_len)) fail("bad byte length " + quoted(line.substr(last + 1)));
        const size_t start = out.size();
        parse_literal(line.substr(first + 1, last - first - 1), out);
        const size_t n = out.size() - start;
        if (n != static_cast<size_t>(byte_len))
            fail("byte length mismatch: the literal is " + std::to_string(n) + " bytes, the line says " +
                 std::to_string(byte_len));
        if (n == 0) fail("empty token");
    }

  private:
    // A Python str or bytes literal: 'x', "x", b'x' or b"x". In a str literal the characters are Unicode
    // code points and are UTF-8 encoded, so '\x80' is the two bytes C2 80; in a bytes literal '\x80' is
    // the byte 80 and only ASCII may appear raw. Escapes: \xHH, \uHHHH (str only), \n \t \r \\ \' \".
    void parse_literal(std::string_view lit, std::string& out) const {
        const bool is_bytes = !lit.empty() && lit[0] == 'b';
        const size_t open = is_bytes ? 1 : 0;
        if (lit.size() < open + 2 || (lit[open] != '\'' && lit[open] != '"') || lit.back() != lit[open])
            fail("bad literal " + printable(lit) + ": expected '...', \"...\" or b'...'");
        const char quote = lit[open];
        const std::string_view body = lit.substr(open + 1, lit.size() - open - 2);

        if (is_bytes) {
            for (char c : body)
                if (static_cast<unsigned char>(c) >= 0x80)
                    fail("bad literal " + printable(lit) + ": non-ASCII character in a bytes literal");
        } else if (size_t bad = first_invalid_utf8(body); bad != std::string_view::npos) {
            fail("bad literal " + printable(lit) + ": invalid UTF-8 at byte " + std::to_string(bad) +
                 " of the literal");
        }

        for (size_t i = 0; i < body.size(); i++) {
            const char c = body[i];
            if (c == quote) fail("bad literal " + printable(lit) + ": unescaped quote inside");
            if (c != '\\') {
                out += c;
                continue;
            }
            if (++i == body.size()) fail("bad literal " + printable(lit) + ": unterminated (escaped closing quote)");
            const char e = body[i];
            switch (e) {
                case 'n':
                    out += '\n';
                    break;
                case 't':
                    out += '\t';
                    break;
                case 'r':
                    out += '\r';
                    break;
                case '\\':
                case '\'':
                case '"':
                    out += e;
                    break;
                case 'x':
                case 'u': {
                    if (e == 'u' && is_bytes) fail("unknown escape '\\u' in bytes literal " + printable(lit));
                    const size_t digits = e == 'x' ? 2 : 4;
                    uint32_t v = 0;
                    for (size_t k = 1; k <= digits; k++) {
                        const int h = i + k < body.size() ? hex_value(body[i + k]) : -1;
                        if (h < 0)
                            fail("bad literal " + printable(lit) + ": '\\" + e + "' needs " + std::to_string(digits) +
                                 " hex digits");
                        v = v * 16 + static_cast<uint32_t>(h);
                    }
                    i += digits;
                    if (is_bytes) {
                        out += static_cast<char>(v);
                    } else if (!append_utf8(v, out)) {
                        fail("bad literal " + printable(lit) + ": '\\u' escape is a surrogate code point");
                    }
                    break;
                }
                default:
                    fail("unknown escape " + quoted(std::string("\\") + e) + " in literal " + printable(lit));
            }
        }
    }

    const std::string& path_;
    size_t line_no_;
};

}  // namespace

std::unique_ptr<WorldTokenizer> WorldTokenizer::load(const std::string& path) {
    const std::string text = read_whole_file(path);
    std::unique_ptr<WorldTokenizer> tok(new WorldTokenizer());
    tok->bytes_.reserve(text.size() / 2);
    tok->offsets_ = {0, 0};  // id 0: no bytes

    size_t line_no = 0;
    for (size_t pos = 0; pos < text.size();) {
        size_t end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();  // last line without a newline
        std::string_view line(text.data() + pos, end - pos);
        pos = end + 1;
        line_no++;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // the pip wheel ships CRLF
        LineParser parser(path, line_no);
        if (line.empty()) parser.fail("empty line");
        const auto expected_id = static_cast<int32_t>(tok->offsets_.size() - 1);
        parser.parse(line, expected_id, tok->bytes_);
        if (tok->bytes_.size() > std::numeric_limits<uint32_t>::max()) parser.fail("vocabulary too large");
        tok->offsets_.push_back(static_cast<uint32_t>(tok->bytes_.size()));
        tok->max_token_bytes_ = std::max<size_t>(tok->max_token_bytes_, tok->offsets_.back() - tok->offsets_.end()[-2]);
    }
    if (tok->vocab_size() < 2) throw_format(path + ": the vocabulary has no tokens");
    tok->build_trie(path);

    // encode() relies on every byte being a token: it then always advances by at least one byte, and its
    // first step from the root needs no check.
    for (int b = 0; b < 256; b++) {
        const int32_t slot = tok->child(0, static_cast<uint8_t>(b));
        if (slot < 0 || tok->units_[slot].id < 0) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "0x%02x", b);
            throw_format(path + ": no token for the single byte " + std::string(hex) +
                         " (every byte must be a token so that any input can be encoded)");
        }
    }
    return tok;
}

// Builds the double-array trie. Sorting the tokens by bytes gives each node's children in byte order and
// puts duplicates side by side. A breadth-first pass then makes the plain trie (parents before children),
// and each node's children are placed at the first base where all their slots are free.
void WorldTokenizer::build_trie(const std::string& path) {
    const auto n_tokens = static_cast<int32_t>(vocab_size());
    std::vector<int32_t> order;
    order.reserve(n_tokens - 1);
    for (int32_t id = 1; id < n_tokens; id++) order.push_back(id);
    auto bytes_of = [this](int32_t id) {
        return std::string_view(bytes_.data() + offsets_[id], offsets_[id + 1] - offsets_[id]);
    };
    // std::string_view compares as unsigned bytes (char_traits<char>), which is the order children need.
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
        const int c = bytes_of(a).compare(bytes_of(b));
        return c != 0 ? c < 0 : a < b;
    });
    for (size_t i = 1; i < order.size(); i++) {
        if (bytes_of(order[i - 1]) == bytes_of(order[i])) {
            // Ids equal line numbers, since ids are contiguous from 1 with one token per line.
            const int32_t first = order[i - 1], again = order[i];
            throw_format(path + ":" + std::to_string(again) + ": duplicate token: same bytes as id " +
                         std::to_string(first) + " (line " + std::to_string(first) + ")");
        }
    }

    // The plain trie, breadth-first. A node covers the range [lo, hi) of `order` (the tokens that start with
    // its prefix of `depth` bytes); its children are nodes[first_child, first_child + n_children).
    struct Node {
        uint32_t lo, hi, depth, first_child = 0, n_children = 0;
        int32_t id = -1;
    };
    std::vector<Node> nodes{{0, static_cast<uint32_t>(order.size()), 0}};
    std::vector<uint8_t> labels{0};  // byte on the edge into each node
    for (size_t v = 0; v < nodes.size(); v++) {
        uint32_t lo = nodes[v].lo;
        const uint32_t hi = nodes[v].hi, depth = nodes[v].depth;
        if (bytes_of(order[lo]).size() == depth) nodes[v].id = order[lo++];  // the prefix itself sorts first
        nodes[v].first_child = static_cast<uint32_t>(nodes.size());
        while (lo < hi) {
            const auto byte = static_cast<uint8_t>(bytes_of(order[lo])[depth]);
            uint32_t end = lo + 1;
            while (end < hi && static_cast<uint8_t>(bytes_of(order[end])[depth]) == byte) end++;
            nodes.push_back({lo, end, depth + 1});
            labels.push_back(byte);
            nodes[v].n_children++;
            lo = end;
        }
    }

    // Placement. slot[v] is where node v lives; `first_free` only moves forward, every slot below it is used.
    constexpr Unit kFree{0, -1, -1};
    units_.assign(nodes.size() + 512, kFree);
    std::vector<int32_t> slot(nodes.size(), -1);
    slot[0] = 0;
    units_[0].check = -2;
    size_t first_free = 1, max_used = 0;
    for (size_t v = 0; v < nodes.size(); v++) {
        const int32_t s = slot[v];
        units_[s].id = nodes[v].id;
        const uint32_t c0 = nodes[v].first_child, n = nodes[v].n_children;
        if (n == 0) continue;  // a leaf keeps base 0
        const uint8_t min_label = labels[c0];
        auto fits = [&](size_t base) {
            for (uint32_t c = c0; c < c0 + n; c++)
                if (units_[base + labels[c]].check != -1) return false;
            return true;
        };
        size_t f = n >= kWideNode ? std::max<size_t>(max_used + 1, min_label + 1) : first_free;
        for (;; f++) {
            if (f + 256 >= units_.size()) units_.resize(units_.size() * 2, kFree);
            // base >= 1 keeps children off slot 0 (the root).
            if (units_[f].check == -1 && f > min_label && fits(f - min_label)) break;
        }
        const size_t base = f - min_label;
        units_[s].base = static_cast<int32_t>(base);
        for (uint32_t c = c0; c < c0 + n; c++) {
            const size_t t = base + labels[c];
            units_[t].check = s;
            slot[c] = static_cast<int32_t>(t);
            max_used = std::max(max_used, t);
        }
        while (units_[first_free].check != -1) first_free++;
    }
    units_.resize(max_used + 1 + 256, kFree);  // base + byte stays in range for every node with children
    units_.shrink_to_fit();
    if (units_.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
        throw_format(path + ": vocabulary too large");
}

void WorldTokenizer::encode(std::string_view text, std::vector<int32_t>& out) const {
    const auto* s = reinterpret_cast<const uint8_t*>(text.data());
    const size_t n = text.size();
    const Unit* u = units_.data();
    const int32_t root_base = u[0].base;
    out.reserve(out.size() + n / 3 + 1);
    size_t p = 0;
    while (p < n) {
        // Longest match from p. The first byte always matches: every single byte is a token (load() checks).
        int32_t cur = root_base + s[p];
        int32_t best_id = u[cur].id;
        size_t best_end = p + 1;
        for (size_t q = p + 1; q < n; q++) {
            const int32_t next = u[cur].base + s[q];
            if (u[next].check != cur) break;
            cur = next;
            if (u[cur].id >= 0) {
                best_id = u[cur].id;
                best_end = q + 1;
            }
        }
        out.push_back(best_id);
        p = best_end;
    }
}

std::vector<int32_t> WorldTokenizer::encode(std::string_view text) const {
    std::vector<int32_t> out;
    encode(text, out);
    return out;
}

std::string_view WorldTokenizer::token_bytes(int32_t id) const {
    if (id < 0 || static_cast<size_t>(id) >= model_vocab_size())
        throw_invalid("token id " + std::to_string(id) + " is outside [0, " + std::to_string(model_vocab_size()) + ")");
    if (static_cast<size_t>(id) >= vocab_size()) return {};
    return std::string_view(bytes_.data() + offsets_[id], offsets_[id + 1] - offsets_[id]);
}

std::string WorldTokenizer::decode(const int32_t* ids, size_t n) const {
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += token_bytes(ids[i]).size();  // validates every id first
    std::string out;
    out.reserve(total);
    for (size_t i = 0; i < n; i++) out += token_bytes(ids[i]);
    return out;
}

int32_t WorldTokenizer::token_id(std::string_view bytes) const {
    int32_t slot = 0;
    for (char c : bytes) {
        slot = child(slot, static_cast<uint8_t>(c));
        if (slot < 0) return -1;
    }
    return units_[slot].id;
}

}  // namespace rwkv

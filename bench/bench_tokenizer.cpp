// WorldTokenizer throughput: encode (and decode) of about 1 MB of text, median over repetitions.
//
//   bench_tokenizer <vocab.txt> <text file> [repetitions=11] [target_bytes=1048576]
//
// The text is repeated (or cut) to target_bytes, cut back to a UTF-8 character boundary. Prints the load
// time, then median (and best) MB/s and tokens/s for encode, decode and streaming UTF-8 decode, on one thread.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common/error.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

double best(const std::vector<double>& v) {
    return *std::min_element(v.begin(), v.end());
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s <vocab.txt> <text file> [repetitions=11] [target_bytes=1048576]\n", argv[0]);
        return 2;
    }
    const int reps = argc > 3 ? std::max(1, std::atoi(argv[3])) : 11;
    const size_t target = argc > 4 ? std::strtoull(argv[4], nullptr, 10) : (1u << 20);

    std::ifstream f(argv[2], std::ios::binary);
    std::string seed((std::istreambuf_iterator<char>(f)), {});
    if (seed.empty()) {
        std::fprintf(stderr, "cannot read %s (or it is empty)\n", argv[2]);
        return 1;
    }
    std::string text;
    while (text.size() < target) text += seed;
    text.resize(target);
    while (!text.empty() && (static_cast<unsigned char>(text.back()) & 0xC0) == 0x80) text.pop_back();
    if (!text.empty() && static_cast<unsigned char>(text.back()) >= 0xC0) text.pop_back();

    try {
        auto t0 = std::chrono::steady_clock::now();
        auto tok = rwkv::WorldTokenizer::load(argv[1]);
        std::printf("load: %.1f ms, %zu ids\n", seconds_since(t0) * 1e3, tok->vocab_size());

        std::vector<double> enc, dec, stream;
        std::vector<int32_t> ids;
        size_t n_tokens = 0;
        for (int r = 0; r < reps; r++) {
            ids.clear();
            t0 = std::chrono::steady_clock::now();
            tok->encode(text, ids);
            enc.push_back(seconds_since(t0));
            n_tokens = ids.size();

            t0 = std::chrono::steady_clock::now();
            std::string back = tok->decode(ids.data(), ids.size());
            dec.push_back(seconds_since(t0));
            if (back != text) {
                std::fprintf(stderr, "round trip failed\n");
                return 1;
            }

            t0 = std::chrono::steady_clock::now();
            rwkv::Utf8StreamDecoder sd;
            std::string out;
            out.reserve(text.size());
            for (int32_t id : ids) sd.feed(tok->token_bytes(id), out);
            sd.flush(out);
            stream.push_back(seconds_since(t0));
            if (out != text) {
                std::fprintf(stderr, "streaming decode differs\n");
                return 1;
            }
        }
        const double mb = text.size() / 1e6;
        std::printf("text: %zu bytes, %zu tokens (%.2f bytes/token), %d repetitions\n", text.size(), n_tokens,
                    double(text.size()) / n_tokens, reps);
        auto report = [&](const char* what, const std::vector<double>& t) {
            std::printf("%-14s median %8.3f ms %8.1f MB/s %10.0f tokens/s | best %8.3f ms %8.1f MB/s\n", what,
                        median(t) * 1e3, mb / median(t), n_tokens / median(t), best(t) * 1e3, mb / best(t));
        };
        report("encode:", enc);
        report("decode:", dec);
        report("stream decode:", stream);
    } catch (const rwkv::Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}

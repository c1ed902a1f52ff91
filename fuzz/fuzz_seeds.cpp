// Writes the seed corpora of the fuzz targets into OUTDIR/<target>/ (tools/fuzz.sh runs it before fuzzing):
// the small test fixtures, the data.pkl of every .pth fixture, slices of the World vocabulary, tokenizer
// fixture texts, and files made by the test writers for the layouts the fixtures lack (ZIP64, prefixed zips,
// plain dicts, strided views, unaligned safetensors, valid state files). Nothing is committed: the seeds are
// regenerated from the fixtures on every run.
//
// Usage: fuzz_seeds OUTDIR
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "fuzz_common.h"
#include "io/mapped_file.h"
#include "io/zip_reader.h"
#include "model/state.h"
#include "testutil/writers.h"

#ifdef RWKV_FUZZ_CHAT
// fuzz_seeds_chat.cpp: the chat seeds, built only when the CLI's chat sources are (fuzz/CMakeLists.txt).
void write_chat_seeds(const std::function<void(const std::string&, const std::vector<uint8_t>&)>& write,
                      const std::string& tmp_dir);
#endif

namespace fs = std::filesystem;
using rwkv::test::Bytes;

namespace {

constexpr size_t kMaxSeed = 8192;  // tools/fuzz.sh's -max_len for the file targets

std::string g_out;

void write_seed(const std::string& target, const std::string& name, const Bytes& bytes) {
    fs::create_directories(g_out + "/" + target);
    std::ofstream(g_out + "/" + target + "/" + name, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}
void write_seed(const std::string& target, const std::string& name, const std::string& text) {
    write_seed(target, name, Bytes(text.begin(), text.end()));
}

Bytes read_bytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return Bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

Bytes floats(size_t n, float scale = 0.25f) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; i++) v[i] = scale * static_cast<float>(i % 7) - 0.5f;
    return rwkv::test::f32_bytes(v);
}

void pth_and_pickle_seeds() {
    const std::string fixtures = RWKV_FIXTURES_DIR;
    std::vector<std::string> paths;
    for (const auto& e : fs::directory_iterator(fixtures + "/io"))
        if (e.path().extension() == ".pth") paths.push_back(e.path().string());
    for (const auto& e : fs::directory_iterator(fixtures))
        if (e.path().extension() == ".pth") paths.push_back(e.path().string());
    for (const std::string& path : paths) {
        Bytes b = read_bytes(path);
        std::string stem = fs::path(path).stem().string();
        if (b.size() <= kMaxSeed) write_seed("fuzz_pth", stem, b);
        // The pickle of every fixture (the tiny models' pickles are a few KB even when the file is not).
        rwkv::MappedFile file(path);
        rwkv::ZipReader zip(path, file.data(), file.size());
        for (const rwkv::ZipEntry& entry : zip.entries()) {
            if (entry.name.size() > 9 && entry.name.ends_with("/data.pkl")) {
                const uint8_t* p = zip.entry_data(entry);
                write_seed("fuzz_pickle", stem, Bytes(p, p + entry.size));
            }
        }
    }

    // Layouts the fixtures lack.
    using rwkv::DType;
    using rwkv::test::TensorSpec;
    std::vector<TensorSpec> tensors = {
        {"emb.weight", DType::F32, {4, 2}, {}, 0, "", -1, floats(8), ""},
        {"blocks.0.att.time_state",
         DType::BF16,
         {2, 2, 2},
         {},
         0,
         "",
         -1,
         rwkv::test::bf16_bytes({1, 2, 3, 4, 5, 6, 7, 8}),
         ""},
        {"head.weight", DType::F16, {2, 3}, {}, 0, "", -1, rwkv::test::f16_bytes({1, 2, 3, 4, 5, 6}), ""},
    };
    std::vector<TensorSpec> strided = {
        {"t", DType::F32, {2, 3}, {1, 2}, 0, "s", -1, floats(6), ""},  // a transposed view
        {"u", DType::F32, {3}, {2}, 1, "s", -1, floats(6), ""},        // shares storage "s", offset 1
        {"z", DType::F32, {0, 4}, {4, 1}, 0, "z", -1, {}, ""},         // empty
        {"scalar", DType::F32, {}, {}, 0, "c", -1, floats(1), ""},     // 0-dim
    };
    struct Variant {
        const char* name;
        rwkv::test::PthOptions opt;
    };
    std::vector<Variant> variants(6);
    variants[0].name = "made";
    variants[1].name = "zip64";
    variants[1].opt.zip.zip64 = true;
    variants[2].name = "prefixed";
    variants[2].opt.zip.prefix_bytes = 100;
    variants[3].name = "plain_zip";
    variants[3].opt.zip.torch_layout = false;
    variants[4].name = "plain_dict";
    variants[4].opt.pickle.ordered_dict = false;
    variants[5].name = "module";
    variants[5].opt.pickle.module_metadata = true;
    variants[5].opt.pickle.batch = 2;
    for (const Variant& v : variants) {
        write_seed("fuzz_pth", std::string(v.name), rwkv::test::make_pth(tensors, v.opt));
        write_seed("fuzz_pickle", std::string(v.name), rwkv::test::state_dict_pickle(tensors, v.opt.pickle));
    }
    write_seed("fuzz_pth", "strided", rwkv::test::make_pth(strided));
    // For fuzz_pickle the storages are "0".."3" of 2, 16, 64 and 256 bytes: views that fit them.
    std::vector<TensorSpec> fitting = {
        {"a", DType::F32, {2, 2}, {1, 2}, 0, "1", -1, floats(4), ""},
        {"b", DType::BF16, {8}, {4}, 0, "2", -1, Bytes(64), ""},
        {"c", DType::F16, {1}, {}, 0, "0", -1, Bytes(2), ""},
        {"d", DType::F32, {4, 4, 4}, {}, 0, "3", -1, Bytes(256), ""},
    };
    write_seed("fuzz_pickle", "fitting", rwkv::test::state_dict_pickle(fitting));
}

void safetensors_seeds() {
    const std::string fixtures = RWKV_FIXTURES_DIR;
    write_seed("fuzz_safetensors", "tensors", read_bytes(fixtures + "/io/tensors.safetensors"));
    write_seed("fuzz_safetensors", "made",
               rwkv::test::make_safetensors({{"a", "F32", {2, 2}, floats(4)},
                                             {"b", "BF16", {3}, rwkv::test::bf16_bytes({1, 2, 3})},
                                             {"c", "F16", {0}, {}},
                                             {"d", "F32", {}, floats(1)}}));
    write_seed("fuzz_safetensors", "unaligned",
               rwkv::test::make_safetensors_raw(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}})",
                                                Bytes(9, 1), false));
    write_seed("fuzz_safetensors", "empty", rwkv::test::make_safetensors_raw("{}", {}));
    // The tiny model's names and dtypes with small shapes: a realistic header of a few KB.
    Bytes tiny = read_bytes(fixtures + "/tiny-bf16-hf.safetensors");
    if (tiny.size() > 8) {
        uint64_t n = 0;
        for (int i = 0; i < 8; i++) n |= uint64_t(tiny[i]) << (8 * i);
        auto header = nlohmann::json::parse(tiny.begin() + 8, tiny.begin() + 8 + static_cast<std::ptrdiff_t>(n));
        std::vector<rwkv::test::SafetensorsSpec> specs;
        for (auto it = header.begin(); it != header.end(); ++it) {
            if (it.key() == "__metadata__") continue;
            specs.push_back({it.key(), it.value()["dtype"].get<std::string>(), {2}, Bytes(4)});
            if (specs.size() == 40) break;
        }
        write_seed("fuzz_safetensors", "tiny_names", rwkv::test::make_safetensors(specs));
    }
}

void vocab_and_tokenizer_seeds() {
    std::ifstream f(RWKV_FUZZ_VOCAB, std::ios::binary);
    std::vector<std::string> lines;
    for (std::string line; std::getline(f, line);) lines.push_back(line);
    if (lines.size() < 300) {
        std::cerr << "fuzz_seeds: no vocabulary at " << RWKV_FUZZ_VOCAB << "; fuzz_vocab starts without seeds\n";
    } else {
        // Ids must be contiguous: slices are the 256 single bytes plus the next tokens.
        auto slice = [&](size_t n, const char* eol) {
            std::string s;
            for (size_t i = 0; i < n; i++) s += lines[i] + eol;
            return s;
        };
        write_seed("fuzz_vocab", "bytes_only", slice(256, "\n"));
        write_seed("fuzz_vocab", "first_300", slice(300, "\n"));
        write_seed("fuzz_vocab", "first_300_crlf", slice(300, "\r\n"));
        // A few later lines renumbered after the bytes: longer tokens, \u escapes, multi-byte UTF-8.
        std::string s = slice(256, "\n");
        int id = 257;
        for (size_t i = 300; i < lines.size(); i += 997) {
            s += std::to_string(id++) + lines[i].substr(lines[i].find(' ')) + "\n";
        }
        write_seed("fuzz_vocab", "sampled", s);
    }

    std::ifstream cases_file(std::string(RWKV_FIXTURES_DIR) + "/tokenizer/official.json");
    int n = 0;
    if (cases_file) {
        nlohmann::json cases = nlohmann::json::parse(cases_file);
        for (const auto& c : cases["cases"]) {
            std::string text;
            if (c.contains("text") && c["text"].is_string()) {
                text = c["text"].get<std::string>();
            } else if (c.contains("bytes_hex") && c["bytes_hex"].is_string()) {
                const std::string hex = c["bytes_hex"].get<std::string>();
                for (size_t i = 0; i + 1 < hex.size(); i += 2)
                    text += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
            }
            if (text.size() <= kMaxSeed) write_seed("fuzz_tokenizer", "case_" + std::to_string(n++), text);
        }
    }
    write_seed("fuzz_tokenizer", "mixed",
               std::string("User: 你好\n\nAssistant: <think>\xf0\x9f\x98\x80 caf\xc3\xa9 \xff\xfe\xed\xa0\x80"));
}

void state_seeds() {
    rwkv::RecurrentState state(rwkv::fuzz::fuzz_state_config());
    for (size_t i = 0; i < state.data.size(); i++) state.data[i] = 0.125f * static_cast<float>(i);
    Bytes valid = rwkv::serialize_state(state);
    for (uint8_t mode : {0, 1, 2, 3, 4, 7}) {
        Bytes b{mode};
        b.insert(b.end(), valid.begin(), valid.end());
        write_seed("fuzz_state", "valid_mode" + std::to_string(mode), b);
    }
    Bytes truncated{3};
    truncated.insert(truncated.end(), valid.begin(), valid.begin() + 100);
    write_seed("fuzz_state", "truncated", truncated);
}

#ifdef RWKV_FUZZ_CHAT
void chat_seeds() {
    write_chat_seeds([](const std::string& name, const Bytes& b) { write_seed("fuzz_chat", name, b); }, g_out);
}
#endif

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: fuzz_seeds OUTDIR\n";
        return 2;
    }
    g_out = argv[1];
    try {
        pth_and_pickle_seeds();
        safetensors_seeds();
        vocab_and_tokenizer_seeds();
        state_seeds();
#ifdef RWKV_FUZZ_CHAT
        chat_seeds();
#endif
    } catch (const std::exception& e) {
        std::cerr << "fuzz_seeds: " << e.what() << "\n";
        return 1;
    }
    return 0;
}

// Replays every input that once crashed, hung or exhausted a reader (found by the fuzz targets in fuzz/ or by the
// resource-limit tests). Each lives in tests/regress/<reader>/ and README.md there says what it did and which fix
// stopped it. The contract is the fuzz targets' contract: a reader refuses an input with rwkv::Error and a
// message, or accepts it; it never crashes (a crash kills this test), never throws anything else, and is quick.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "common/error.h"
#include "fuzz/fuzz_common.h"
#include "io/checkpoint.h"
#include "model/state.h"
#include "text/tokenizer.h"

namespace rwkv {
namespace {

namespace fs = std::filesystem;

const fs::path kRegressDir = fs::path(RWKV_FIXTURES_DIR).parent_path() / "regress";

std::vector<fs::path> inputs(const std::string& reader) {
    std::vector<fs::path> out;
    if (fs::is_directory(kRegressDir / reader))
        for (const auto& e : fs::directory_iterator(kRegressDir / reader))
            if (e.is_regular_file()) out.push_back(e.path());
    return out;
}

// Runs `f` on every input of `reader`; each must be refused with FORMAT_ERROR (all of them are malformed) within
// a few seconds, and, when `phrase` is given for its file name, with a message that says so.
template <typename F>
void replay(const std::string& reader, F f, const std::vector<std::pair<std::string, std::string>>& phrases = {}) {
    for (const fs::path& p : inputs(reader)) {
        SCOPED_TRACE(p.string());
        auto t0 = std::chrono::steady_clock::now();
        try {
            f(p.string());
            ADD_FAILURE() << "accepted";
        } catch (const Error& e) {
            EXPECT_EQ(e.status(), RWKV_STATUS_FORMAT_ERROR) << e.what();
            for (const auto& [name, phrase] : phrases) {
                if (p.filename() == name) {
                    EXPECT_NE(std::string(e.what()).find(phrase), std::string::npos) << e.what();
                }
            }
        }
        EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
    }
}

TEST(Regress, Checkpoints) {
    auto open = [](const std::string& path) { Checkpoint::open(path); };
    replay("safetensors", open, {{"deep-shape-stack-overflow.safetensors", "nested deeper than 3 levels"}});
    replay("pth", open);
}

TEST(Regress, Vocabularies) {
    replay("vocab", [](const std::string& path) { WorldTokenizer::load(path); });
}

TEST(Regress, StateFiles) {
    const ModelConfig c = fuzz::fuzz_state_config();  // the shape fuzz_state's inputs are for
    replay("state", [&](const std::string& path) {
        RecurrentState s(c);
        load_state(s, path);
    });
}

}  // namespace
}  // namespace rwkv

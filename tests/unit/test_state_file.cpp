// State files: round trip, refusal of another model's state, corrupt and truncated files (state untouched).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>

#include "common/error.h"
#include "common/file_util.h"
#include "model/state.h"
#include "testutil/testutil.h"

namespace {

rwkv::ModelConfig tiny_config() {
    rwkv::ModelConfig c;
    c.n_layer = 2;
    c.n_embd = 128;
    c.n_head = 2;
    c.head_size = 64;
    c.n_vocab = 256;
    c.n_ffn = 256;
    c.d_decay = 16;
    c.d_aaa = 16;
    c.d_value = 8;
    c.d_gate = 32;
    return c;
}

rwkv::RecurrentState filled_state(const rwkv::ModelConfig& c) {
    rwkv::RecurrentState s(c);
    for (size_t i = 0; i < s.data.size(); i++) s.data[i] = std::sin(0.37f * float(i)) * 3.0f;
    return s;
}

rwkv_status status_of(const std::function<void()>& f, std::string* message) {
    try {
        f();
        return RWKV_STATUS_OK;
    } catch (const rwkv::Error& e) {
        *message = e.what();
        return e.status();
    }
}

TEST(StateFile, RoundTripIsBitExact) {
    rwkv::RecurrentState s = filled_state(tiny_config());
    const std::string path = rwkv::test::temp_path("a.state");
    rwkv::save_state(s, path);
    rwkv::RecurrentState t(tiny_config());
    rwkv::load_state(t, path);
    EXPECT_EQ(s.data, t.data);
}

TEST(StateFile, SaveReplacesAnExistingFileAndLeavesNoTemporary) {
    const std::string dir = rwkv::test::temp_path("replace");
    std::filesystem::create_directories(dir);
    rwkv::RecurrentState s = filled_state(tiny_config());
    rwkv::save_state(s, dir + "/x.state");
    s.data[0] = 42.0f;
    rwkv::save_state(s, dir + "/x.state");
    rwkv::RecurrentState t(tiny_config());
    rwkv::load_state(t, dir + "/x.state");
    EXPECT_EQ(t.data[0], 42.0f);
    int files = 0;
    for (auto& e : std::filesystem::directory_iterator(dir)) files += e.is_regular_file();
    EXPECT_EQ(files, 1);
}

TEST(StateFile, AnotherModelsStateIsRefusedNamingTheDifference) {
    rwkv::ModelConfig other = tiny_config();
    other.n_layer = 3;
    const std::string path = rwkv::test::temp_path("other.state");
    rwkv::save_state(filled_state(other), path);
    rwkv::RecurrentState t(tiny_config());
    std::string msg;
    EXPECT_EQ(status_of([&] { rwkv::load_state(t, path); }, &msg), RWKV_STATUS_FORMAT_ERROR);
    EXPECT_NE(msg.find("another model"), std::string::npos) << msg;
    EXPECT_NE(msg.find("n_layer 3"), std::string::npos) << msg;
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    for (float v : t.data) ASSERT_EQ(v, 0.0f);
}

TEST(StateFile, CorruptTruncatedAndForeignFilesAreRefused) {
    rwkv::RecurrentState s = filled_state(tiny_config());
    const std::string good = rwkv::test::temp_path("good.state");
    rwkv::save_state(s, good);
    std::vector<uint8_t> bytes = rwkv::test::read_file(good);

    struct Bad {
        std::string name;
        std::vector<uint8_t> bytes;
        std::string phrase;
    };
    std::vector<uint8_t> flipped = bytes, truncated(bytes.begin(), bytes.end() - 100), version = bytes;
    flipped[1000] ^= 0x01;
    version[8] = 9;
    std::vector<Bad> cases = {
        {"flipped.state", flipped, "checksum mismatch"},
        {"truncated.state", truncated, "truncated"},
        {"empty.state", {}, "not a librwkv state file"},
        {"text.state", {'h', 'e', 'l', 'l', 'o'}, "not a librwkv state file"},
        {"version.state", version, "version 9"},
    };
    for (const Bad& b : cases) {
        const std::string path = rwkv::test::temp_path(b.name);
        rwkv::test::write_file(path, b.bytes);
        rwkv::RecurrentState t(tiny_config());
        std::string msg;
        EXPECT_EQ(status_of([&] { rwkv::load_state(t, path); }, &msg), RWKV_STATUS_FORMAT_ERROR) << b.name;
        EXPECT_NE(msg.find(b.phrase), std::string::npos) << b.name << ": " << msg;
        for (float v : t.data) ASSERT_EQ(v, 0.0f) << b.name;
    }
    std::string msg;
    rwkv::RecurrentState t(tiny_config());
    EXPECT_EQ(status_of([&] { rwkv::load_state(t, rwkv::test::temp_path("missing.state")); }, &msg),
              RWKV_STATUS_IO_ERROR);
}

TEST(StateFile, Crc32MatchesTheStandardCheckValue) {
    const char* s = "123456789";
    EXPECT_EQ(rwkv::crc32(s, 9), 0xCBF43926u);
}

}  // namespace

// Interrupted saves lose nothing. A child process saves large states in a loop, each one a recognisable
// "version"; the parent SIGKILLs it at random moments (mostly in the middle of a write), then checks that the file
// still loads, passes its checksum and fingerprint, and holds exactly one of the versions that were saved: the
// last one the child finished, or the one it was finishing. Temporary files that a killed save leaves behind are
// named "<file>.tmp-XXXXXX" beside it, never mistaken for the file, and a completed save leaves none of its own.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <thread>

#include "common/error.h"
#include "common/file_util.h"
#include "model/state.h"
#include "testutil/testutil.h"

namespace rwkv {
namespace {

// 3.3 MB of state: a write takes long enough that random kills land inside it.
ModelConfig large_config() {
    ModelConfig c;
    c.n_layer = 12;
    c.n_embd = 1024;
    c.n_head = 16;
    c.head_size = 64;
    c.n_vocab = 65536;
    c.n_ffn = 4096;
    c.d_decay = 64;
    c.d_aaa = 64;
    c.d_value = 32;
    c.d_gate = 128;
    return c;
}

// Version v: every float differs, and every float says which version it belongs to.
void fill_version(RecurrentState& s, uint32_t v) {
    for (size_t i = 0; i < s.data.size(); i++) s.data[i] = static_cast<float>(v) * 1e-3f + static_cast<float>(i % 1000);
}
// The version a state holds, or -1 when its floats are not all of one version.
int64_t version_of(const RecurrentState& s) {
    const float v0 = s.data[0];  // = v * 1e-3
    const auto v = static_cast<int64_t>(std::lround(v0 * 1e3f));
    RecurrentState expected(s.config);
    fill_version(expected, static_cast<uint32_t>(v));
    return std::memcmp(expected.data.data(), s.data.data(), s.data.size() * 4) == 0 ? v : -1;
}

std::vector<std::string> temporaries_of(const std::string& dir, const std::string& base) {
    std::vector<std::string> out;
    if (DIR* d = opendir(dir.c_str())) {
        while (dirent* e = readdir(d)) {
            std::string name = e->d_name;
            if (name.rfind(base + ".tmp-", 0) == 0) out.push_back(name);
        }
        closedir(d);
    }
    return out;
}

// The child: saves versions first, first + 1, ... until killed, reporting each finished save on `fd`.
[[noreturn]] void save_forever(const std::string& path, uint32_t first, int fd) {
    RecurrentState s(large_config());
    for (uint32_t v = first;; v++) {
        fill_version(s, v);
        try {
            save_state(s, path);
        } catch (...) {
            _exit(3);
        }
        if (write(fd, &v, sizeof v) != sizeof v) _exit(4);
    }
}

TEST(AtomicSave, KilledDuringSaveLoopLeavesTheLastCompleteVersion) {
    const std::string dir = test::temp_dir() + "/atomic";
    mkdir(dir.c_str(), 0755);
    const std::string path = dir + "/chat.state";
    RecurrentState s(large_config());
    fill_version(s, 0);
    auto t0 = std::chrono::steady_clock::now();
    save_state(s, path);
    const double save_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_TRUE(temporaries_of(dir, "chat.state").empty());

    const unsigned seed = 20240611;
    std::mt19937 rng(seed);
    // Up to three saves' time, so that some kills come before the first save ends and most land in a write.
    std::uniform_real_distribution<double> delay(0.0, 3.0 * save_seconds + 0.002);
    uint32_t next = 1;        // first version the next child saves
    int64_t last_loaded = 0;  // versions only move forward
    int mid_write_kills = 0;  // kills that left a temporary behind
    const int kRounds = 20;
    for (int round = 0; round < kRounds; round++) {
        SCOPED_TRACE("round " + std::to_string(round) + ", seed " + std::to_string(seed));
        int fds[2];
        ASSERT_EQ(pipe(fds), 0);
        const size_t temps_before = temporaries_of(dir, "chat.state").size();
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            close(fds[0]);
            save_forever(path, next, fds[1]);
        }
        close(fds[1]);
        std::this_thread::sleep_for(std::chrono::duration<double>(delay(rng)));
        kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
        ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the saver failed by itself: " << status;

        // The versions the child reported as saved.
        int64_t last_reported = -1;
        uint32_t v;
        while (read(fds[0], &v, sizeof v) == sizeof v) last_reported = v;
        close(fds[0]);

        RecurrentState loaded(large_config());
        ASSERT_NO_THROW(load_state(loaded, path)) << "the file is damaged after a kill";
        const int64_t got = version_of(loaded);
        ASSERT_GE(got, 0) << "the file mixes versions";
        // Either the last save the child reported, the one after it (finished but not yet reported), or, when the
        // child reported nothing, the version the file held before.
        const int64_t floor = last_reported >= 0 ? last_reported : last_loaded;
        EXPECT_TRUE(got == floor || got == floor + 1)
            << "loaded version " << got << ", last reported " << last_reported << ", previously " << last_loaded;
        EXPECT_GE(got, last_loaded);
        last_loaded = got;
        next = static_cast<uint32_t>(std::max<int64_t>(got, last_reported) + 1);
        if (temporaries_of(dir, "chat.state").size() > temps_before) mid_write_kills++;
    }
    std::printf("[          ] %d rounds, %d kills during a write (one save: %.1f ms)\n", kRounds, mid_write_kills,
                save_seconds * 1e3);

    // What a killed save leaves is only ever a "<file>.tmp-XXXXXX" beside the file, and loading ignores it.
    for (const std::string& t : temporaries_of(dir, "chat.state"))
        EXPECT_EQ(t.size(), std::string("chat.state.tmp-XXXXXX").size());
    // A save that completes leaves no temporary of its own.
    const size_t temps = temporaries_of(dir, "chat.state").size();
    fill_version(s, 999);
    save_state(s, path);
    EXPECT_EQ(temporaries_of(dir, "chat.state").size(), temps);
    RecurrentState loaded(large_config());
    load_state(loaded, path);
    EXPECT_EQ(version_of(loaded), 999);
}

TEST(AtomicSave, KilledDuringWriteFileAtomicallyKeepsThePreviousBytes) {
    // The same for any file written through write_file_atomically (conversation files, ...): the content is always
    // one complete version, never a prefix or a mix.
    const std::string dir = test::temp_dir() + "/atomic_text";
    mkdir(dir.c_str(), 0755);
    const std::string path = dir + "/conversation.json";
    auto content = [](uint32_t v) {
        std::string s = "{\"version\": " + std::to_string(v) + ", \"text\": \"";
        s.append(2 << 20, static_cast<char>('a' + v % 26));
        return s + "\"}\n";
    };
    std::string first = content(0);
    write_file_atomically(path, first.data(), first.size());
    std::mt19937 rng(7);
    std::uniform_real_distribution<double> delay(0.0, 0.05);
    for (int round = 0; round < 8; round++) {
        SCOPED_TRACE("round " + std::to_string(round));
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            try {
                for (uint32_t v = 1;; v++) {
                    std::string c = content(v);
                    write_file_atomically(path, c.data(), c.size());
                }
            } catch (...) {
                _exit(3);
            }
        }
        std::this_thread::sleep_for(std::chrono::duration<double>(delay(rng)));
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
        std::vector<uint8_t> bytes = read_whole_file(path);
        std::string text(bytes.begin(), bytes.end());
        size_t colon = text.find(": ");
        ASSERT_NE(colon, std::string::npos) << "damaged file of " << text.size() << " bytes";
        uint32_t v = static_cast<uint32_t>(std::stoul(text.substr(colon + 2)));
        EXPECT_EQ(text, content(v)) << "the file is not one complete version";
    }
}

TEST(AtomicSave, FailedSaveLeavesNoTemporaryAndTheTargetIntact) {
    // The target is a directory: the rename fails after the temporary was written.
    const std::string dir = test::temp_dir() + "/atomic_fail";
    mkdir(dir.c_str(), 0755);
    const std::string target = dir + "/occupied";
    mkdir(target.c_str(), 0755);
    RecurrentState s(large_config());
    try {
        save_state(s, target);
        FAIL() << "saving over a directory succeeded";
    } catch (const Error& e) {
        EXPECT_EQ(e.status(), RWKV_STATUS_IO_ERROR) << e.what();
        EXPECT_NE(std::string(e.what()).find(target), std::string::npos) << e.what();
    }
    struct stat st {};
    ASSERT_EQ(stat(target.c_str(), &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_TRUE(temporaries_of(dir, "occupied").empty());

    // A directory that does not exist: nothing is created.
    EXPECT_THROW(save_state(s, dir + "/missing/x.state"), Error);
}

TEST(AtomicSave, TornFilesAreRefusedAndLeaveTheStateUntouched) {
    // What a non-atomic writer would leave after a power cut: every prefix of a valid file, and a valid file with
    // one flipped bit. All are refused by size or checksum; the state keeps its contents.
    ModelConfig c = large_config();
    c.n_layer = 1;
    c.n_embd = 64;
    c.n_head = 1;
    RecurrentState s(c);
    fill_version(s, 5);
    std::vector<uint8_t> good = serialize_state(s);
    RecurrentState target(c);
    fill_version(target, 9);
    for (size_t n = 0; n < good.size(); n += n < 128 ? 1 : 997) {
        EXPECT_THROW(deserialize_state(target, good.data(), n, "torn"), Error) << n;
    }
    for (size_t bit = 0; bit < good.size() * 8; bit += 4099) {
        std::vector<uint8_t> bad = good;
        bad[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
        EXPECT_THROW(deserialize_state(target, bad.data(), bad.size(), "flipped"), Error) << bit;
    }
    EXPECT_EQ(version_of(target), 9);
}

}  // namespace
}  // namespace rwkv

// Resource limits: files that claim absurd sizes are refused quickly, with a message that says what was claimed,
// and with bounded memory. "Bounded" is measured, not assumed: each case runs in a forked child, which reports
// how long the refusal took and how far its resident memory rose above where it started (the peak RSS, VmHWM,
// minus the RSS at the start). The bound is the file's real size plus a fixed allowance for the sanitizer
// runtimes, never the size the file claims.
//
// The claims (docs/robustness.md lists what each one gets):
//   * a 2^40-element tensor (safetensors shape, .pth storage, .pth stride-0 view);
//   * 10^6 tensors (zip central directory, safetensors header, pickle);
//   * a pickle nested 10^6 deep (MARKs, lists, tuples, dicts) and a JSON header nested 10^6 deep;
//   * a 4 GB safetensors header (claimed in a small file, and present in a sparse 4 GiB file);
//   * views that each fit in the file but together would expand it many times over;
//   * state files and vocabularies that are huge, endless (/dev/zero) or claim 2^60 floats.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>

#include "common/error.h"
#include "io/checkpoint.h"
#include "model/state.h"
#include "testutil/testutil.h"
#include "testutil/writers.h"
#include "text/tokenizer.h"

namespace rwkv {
namespace {

using test::Bytes;
using test::PickleBuilder;

constexpr double kMaxSeconds = 5.0;   // generous: ASan + UBSan on a loaded 2-core CI machine
constexpr long kSlackKb = 96 * 1024;  // sanitizer runtimes, allocator caches, the test's own buffers

struct Outcome {
    bool refused = false;  // threw rwkv::Error
    int status = 0;        // its rwkv_status
    std::string message;
    double seconds = 0;
    long rss_rise_kb = 0;  // peak RSS minus RSS at the start of the call
    std::string crash;     // non-empty when the child died or threw something else
};

long rss_kb() {
    long pages = 0, resident = 0;
    std::ifstream("/proc/self/statm") >> pages >> resident;
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

// The peak RSS since the last reset_peak_rss(). A forked child inherits its parent's peak (which may be far above
// its own, after the parent built a large file), so the child resets it first.
void reset_peak_rss() {
    std::ofstream("/proc/self/clear_refs") << "5";
}
long peak_rss_kb() {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
    return 0;
}

// Runs `f` in a child process and reports how it ended. The child leaves with _exit, so the parent's static
// objects (the temporary directory) are not destroyed twice.
Outcome isolated(const std::function<void()>& f) {
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        std::string report;
        reset_peak_rss();
        long start_rss = rss_kb();
        auto t0 = std::chrono::steady_clock::now();
        char kind = 'o';
        int status = 0;
        try {
            f();
        } catch (const Error& e) {
            kind = 'e';
            status = e.status();
            report = e.what();
        } catch (const std::exception& e) {
            kind = 'x';
            report = std::string("unexpected exception: ") + e.what();
        }
        double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::string head = std::string(1, kind) + " " + std::to_string(status) + " " + std::to_string(seconds) + " " +
                           std::to_string(peak_rss_kb() - start_rss) + "\n";
        std::string all = head + report;
        ssize_t unused = write(fds[1], all.data(), all.size());
        (void)unused;
        close(fds[1]);
        _exit(0);
    }
    close(fds[1]);
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
    close(fds[0]);
    int wstatus = 0;
    waitpid(pid, &wstatus, 0);
    Outcome o;
    if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0 || out.empty()) {
        o.crash = "child died (wait status " + std::to_string(wstatus) + ")";
        return o;
    }
    size_t nl = out.find('\n');
    char kind = out[0];
    std::sscanf(out.c_str() + 2, "%d %lf %ld", &o.status, &o.seconds, &o.rss_rise_kb);
    o.message = out.substr(nl + 1);
    o.refused = kind == 'e';
    if (kind == 'x') o.crash = o.message;
    return o;
}

// `f` must be refused with `status` and a message containing `phrase`, within kMaxSeconds, with RSS rising by at
// most `allowed_kb` + kSlackKb.
::testing::AssertionResult refused_cheaply(const std::function<void()>& f, int status, const std::string& phrase,
                                           long allowed_kb = 0) {
    Outcome o = isolated(f);
    auto failure = [&] {
        return ::testing::AssertionFailure() << "[" << o.seconds << " s, +" << o.rss_rise_kb / 1024 << " MiB] ";
    };
    if (!o.crash.empty()) return failure() << o.crash;
    if (!o.refused) return failure() << "accepted";
    if (o.status != status) return failure() << "status " << o.status << " (expected " << status << "): " << o.message;
    if (o.message.find(phrase) == std::string::npos)
        return failure() << "message lacks '" << phrase << "': " << o.message;
    if (o.seconds > kMaxSeconds) return failure() << "too slow: " << o.message;
    if (o.rss_rise_kb > allowed_kb + kSlackKb) return failure() << "too much memory: " << o.message;
    // The figures docs/robustness.md quotes.
    std::printf("[  refused ] %.3f s, +%ld MiB: %s\n", o.seconds, o.rss_rise_kb / 1024, o.message.c_str());
    return ::testing::AssertionSuccess();
}

std::string write_temp(const std::string& name, const Bytes& bytes) {
    std::string path = test::temp_path(name);
    test::write_file(path, bytes);
    return path;
}

long kb(size_t bytes) {
    return static_cast<long>(bytes / 1024 + 1);
}

std::function<void()> open_checkpoint(const std::string& path) {
    return [path] { Checkpoint::open(path); };
}

// An f32 tensor viewing storage `key` (whose bytes are `data`).
test::TensorSpec spec(const std::string& name, std::vector<int64_t> shape, std::vector<int64_t> stride,
                      const std::string& key, Bytes data) {
    test::TensorSpec t;
    t.name = name;
    t.shape = std::move(shape);
    t.stride = std::move(stride);
    t.storage_key = key;
    t.data = std::move(data);
    return t;
}

constexpr int kFormat = RWKV_STATUS_FORMAT_ERROR;
constexpr int kIo = RWKV_STATUS_IO_ERROR;

// ---------------------------------------------------------------- a 2^40-element tensor

TEST(Limits, SafetensorsTensorOf2To40Elements) {
    // Claimed with matching offsets: the offsets run past the end of the 8 data bytes.
    std::string h1 = R"({"w":{"dtype":"F32","shape":[1048576,1048576],"data_offsets":[0,4398046511104]}})";
    EXPECT_TRUE(
        refused_cheaply(open_checkpoint(write_temp("st_2p40_a.safetensors", test::make_safetensors_raw(h1, Bytes(8)))),
                        kFormat, "run past the end of the data"));
    // Claimed with small offsets: the sizes disagree.
    std::string h2 = R"({"w":{"dtype":"BF16","shape":[1099511627776],"data_offsets":[0,8]}})";
    EXPECT_TRUE(
        refused_cheaply(open_checkpoint(write_temp("st_2p40_b.safetensors", test::make_safetensors_raw(h2, Bytes(8)))),
                        kFormat, "needs 2199023255552"));
    // Beyond 64 bits.
    std::string h3 = R"({"w":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,8]}})";
    EXPECT_TRUE(
        refused_cheaply(open_checkpoint(write_temp("st_2p80.safetensors", test::make_safetensors_raw(h3, Bytes(8)))),
                        kFormat, "too many elements"));
    std::string h4 = R"({"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,8]}})";
    EXPECT_TRUE(
        refused_cheaply(open_checkpoint(write_temp("st_2p62.safetensors", test::make_safetensors_raw(h4, Bytes(8)))),
                        kFormat, "has a bad dimension"));
}

TEST(Limits, PthStorageAndViewOf2To40Elements) {
    // The pickle claims a storage of 2^40 floats; the zip entry holds 16 bytes.
    test::TensorSpec big = spec("w", {4}, {}, "0", test::f32_bytes({1, 2, 3, 4}));
    big.storage_numel = int64_t(1) << 40;
    EXPECT_TRUE(refused_cheaply(open_checkpoint(write_temp("pth_storage.pth", test::make_pth({big}))), kFormat,
                                "expected 1099511627776 f32 elements"));
    // A stride-0 view of one float that would expand to 2^40 floats.
    test::TensorSpec view = spec("w", {int64_t(1) << 40}, {0}, "0", test::f32_bytes({1}));
    EXPECT_TRUE(refused_cheaply(open_checkpoint(write_temp("pth_view.pth", test::make_pth({view}))), kFormat,
                                "larger than the file; refusing to expand it"));
    // A 2^40-byte zip entry (ZIP64 sizes) in a small file.
    test::ZipOptions zip64;
    zip64.zip64 = true;
    Bytes zip = test::make_zip({{"archive/data.pkl", Bytes(8, '.')}}, zip64);
    size_t central = test::find_sig(zip, 0x02014b50);
    size_t extra = central + 46 + std::string("archive/data.pkl").size();  // the ZIP64 extra field's header
    test::put_le64(zip, extra + 4, uint64_t(1) << 40);                     // uncompressed size
    test::put_le64(zip, extra + 12, uint64_t(1) << 40);                    // compressed size
    EXPECT_TRUE(refused_cheaply(open_checkpoint(write_temp("zip_2p40.pth", zip)), kFormat,
                                "runs past the start of the central directory"));
}

// ---------------------------------------------------------------- 10^6 tensors

TEST(Limits, ZipClaimingAMillionEntries) {
    test::PthOptions opt;
    opt.zip.zip64 = true;
    Bytes pth = test::make_pth({spec("w", {1}, {}, "0", test::f32_bytes({1}))}, opt);
    size_t rec = test::rfind_sig(pth, 0x06064b50);  // ZIP64 end record: entry counts at +24 and +32
    test::put_le64(pth, rec + 24, 1000000);
    test::put_le64(pth, rec + 32, 1000000);
    EXPECT_TRUE(
        refused_cheaply(open_checkpoint(write_temp("zip_1e6.pth", pth)), kFormat, "cannot hold 1000000 entries"));
}

TEST(Limits, SafetensorsWithAMillionTensors) {
    std::string header = "{";
    for (int i = 0; i < 1000000; i++) {
        if (i) header += ',';
        header += "\"t" + std::to_string(i) + R"(":{"dtype":"F32","shape":[0],"data_offsets":[0,0]})";
    }
    header += "}";
    Bytes file = test::make_safetensors_raw(header, {});
    EXPECT_TRUE(refused_cheaply(open_checkpoint(write_temp("st_1e6.safetensors", file)), kFormat,
                                "more than 65536 tensors", kb(file.size())));
}

TEST(Limits, PickleWithAMillionTensors) {
    // Compact, as a hostile file would be: the storage, the size/stride tuples, the hooks dict and the rebuild
    // function are memoised once and fetched with BINGET, so each tensor costs ~30 bytes of pickle.
    PickleBuilder p;
    p.proto(2).empty_dict().put(0);
    p.global("torch._utils", "_rebuild_tensor_v2").put(1);
    p.mark().str("storage").global("torch", "FloatStorage").str("0").str("cpu").integer(1).tuple().binpersid().put(2);
    p.int_tuple({1}).put(3);
    p.global("collections", "OrderedDict").empty_tuple().reduce().put(4);
    p.op('0').op('0').op('0').op('0');  // leave only the dict on the stack
    p.mark();
    for (int i = 0; i < 1000000; i++) {
        p.str("t" + std::to_string(i)).get(1).mark().get(2).integer(0).get(3).get(3).newfalse().get(4).tuple().reduce();
        if (i % 1000 == 999) p.setitems().mark();
    }
    p.setitems().stop();
    Bytes pth = test::make_pth_with_pickle(p.bytes(), {{"0", test::f32_bytes({1})}});
    EXPECT_TRUE(refused_cheaply(open_checkpoint(write_temp("pickle_1e6.pth", pth)), kFormat, "more than 65536 tensors",
                                kb(pth.size())));
}

// ---------------------------------------------------------------- nesting 10^6 deep

TEST(Limits, PickleNestedAMillionDeep) {
    // Each pickle would nest 10^6 levels; the interpreter stops at 1000. Lists and dicts are nested through the
    // memo (POP the outer container, make a new one, fetch the previous one with BINGET, add it, BINPUT the new
    // one), as a file that wants depth without a deep stack would do.
    constexpr int kDepth = 1000000;
    PickleBuilder marks, tuples, lists, dicts;
    marks.proto(2);
    for (int i = 0; i < kDepth; i++) marks.mark();
    tuples.proto(2).integer(1);
    for (int i = 0; i < kDepth; i++) tuples.op(0x85);  // TUPLE1: ((((1,),),),)
    lists.proto(2).op(']').put(0);
    for (int i = 0; i < kDepth; i++) lists.op('0').op(']').get(i % 2).op('a').put((i + 1) % 2);
    dicts.proto(2).empty_dict().put(0);
    for (int i = 0; i < kDepth; i++) dicts.op('0').empty_dict().str("k").get(i % 2).setitem().put((i + 1) % 2);
    struct Case {
        const char* name;
        PickleBuilder* pickle;
        const char* phrase;
    };
    const Case cases[] = {{"marks", &marks, "MARKs nested deeper than 1000"},
                          {"tuples", &tuples, "containers nested deeper than 1000"},
                          {"lists", &lists, "containers nested deeper than 1000"},
                          {"dicts", &dicts, "containers nested deeper than 1000"}};
    for (const Case& c : cases) {
        SCOPED_TRACE(c.name);
        Bytes pth = test::make_pth_with_pickle(c.pickle->stop().bytes(), {});
        EXPECT_TRUE(refused_cheaply(open_checkpoint(write_temp(std::string("deep_") + c.name + ".pth", pth)), kFormat,
                                    c.phrase, kb(pth.size())));
    }
}

TEST(Limits, SafetensorsHeaderNestedAMillionDeep) {
    for (const char* shape : {"array", "object"}) {
        SCOPED_TRACE(shape);
        std::string header;
        if (std::string(shape) == "array") {
            header = R"({"w":{"dtype":"F32","shape":)" + std::string(1000000, '[') + std::string(1000000, ']') +
                     R"(,"data_offsets":[0,0]}})";
        } else {
            std::string open, close;
            for (int i = 0; i < 1000000; i++) {
                open += "{\"a\":";
                close += "}";
            }
            header = R"({"__metadata__":)" + open + "0" + close + "}";
        }
        Bytes file = test::make_safetensors_raw(header, {});
        EXPECT_TRUE(refused_cheaply(open_checkpoint(write_temp("st_deep.safetensors", file)), kFormat,
                                    "nested deeper than", kb(file.size())));
    }
}

// ---------------------------------------------------------------- a 4 GB safetensors header

TEST(Limits, SafetensorsHeaderOf4GB) {
    // Claimed in a 64-byte file.
    Bytes small = test::make_safetensors_raw("{}", Bytes(48));
    test::put_le64(small, 0, uint64_t(4) << 30);
    EXPECT_TRUE(refused_cheaply(open_checkpoint(write_temp("st_4g_claim.safetensors", small)), kFormat,
                                "header length 4294967296 runs past the end of the file"));

    // Present: a sparse file of 4 GiB + 16 bytes whose header length is 4 GiB. Nothing of it may be read.
    std::string path = test::temp_path("st_4g_sparse.safetensors");
    {
        int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
        ASSERT_GE(fd, 0);
        Bytes head(9, 0);
        test::put_le64(head, 0, uint64_t(4) << 30);
        head[8] = '{';
        ASSERT_EQ(::write(fd, head.data(), head.size()), 9);
        bool sparse = ::ftruncate(fd, (off_t(4) << 30) + 16) == 0;
        ::close(fd);
        if (!sparse) GTEST_SKIP() << "the temporary directory does not take a 4 GiB sparse file";
    }
    EXPECT_TRUE(refused_cheaply(open_checkpoint(path), kFormat, "exceeds the limit of 104857600"));
    ::unlink(path.c_str());
}

// ---------------------------------------------------------------- expansion by strided views

TEST(Limits, StridedViewsCannotTogetherExpandTheFile) {
    // Each tensor is a stride-0 view of one float, as large as the file itself (so each one alone is allowed),
    // and there are 256 of them: copied out, they would take 256 times the file.
    constexpr int64_t kElems = 64 * 1024;  // 256 KiB per view
    std::vector<test::TensorSpec> specs;
    specs.push_back(spec("pad", {kElems}, {}, "pad", Bytes(kElems * 4, 0)));  // makes the file large
    for (int i = 0; i < 256; i++)
        specs.push_back(spec("v" + std::to_string(i), {kElems - 64}, {0}, "one", test::f32_bytes({1})));
    Bytes pth = test::make_pth(specs);
    ASSERT_GT(pth.size(), size_t(kElems * 4));
    EXPECT_TRUE(refused_cheaply(open_checkpoint(write_temp("views.pth", pth)), kFormat, "copies of strided views",
                                2 * kb(pth.size())));
}

// ---------------------------------------------------------------- state files and vocabularies

ModelConfig small_config() {
    ModelConfig c;
    c.n_layer = 2;
    c.n_embd = 64;
    c.n_head = 1;
    c.head_size = 64;
    c.n_vocab = 256;
    c.n_ffn = 256;
    c.d_decay = c.d_aaa = c.d_value = c.d_gate = 16;
    return c;
}

TEST(Limits, StateFileClaiming2To60Floats) {
    RecurrentState state(small_config());
    Bytes b = serialize_state(state);
    test::put_le64(b, 60, uint64_t(1) << 60);
    std::string path = write_temp("huge_claim.state", b);
    EXPECT_TRUE(refused_cheaply([&] { load_state(state, path); }, kFormat, "size mismatch"));
}

TEST(Limits, HugeStateFileIsNotReadWhole) {
    // A valid header followed by 256 MiB: refused from its size, without reading it into memory.
    RecurrentState state(small_config());
    Bytes b = serialize_state(state);
    std::string path = test::temp_path("huge.state");
    test::write_file(path, b);
    ASSERT_EQ(::truncate(path.c_str(), off_t(256) << 20), 0);
    EXPECT_TRUE(refused_cheaply([&] { load_state(state, path); }, kFormat, "oversized state file"));
    ::unlink(path.c_str());
}

TEST(Limits, EndlessFilesAreRefused) {
    RecurrentState state(small_config());
    EXPECT_TRUE(refused_cheaply([&] { load_state(state, "/dev/zero"); }, kIo, "not a regular file"));
    // The vocabulary reader stops at 16 MiB (the World vocabulary is 1.3 MB).
    EXPECT_TRUE(refused_cheaply([] { WorldTokenizer::load("/dev/zero"); }, kFormat, "larger than 16 MiB", 48 * 1024));
    EXPECT_TRUE(refused_cheaply(open_checkpoint("/dev/zero"), kIo, "not a regular file"));
}

TEST(Limits, VocabularyClaimingAbsurdNumbers) {
    std::string bytes;
    for (int i = 1; i <= 256; i++) {
        char line[32];
        std::snprintf(line, sizeof line, "%d b'\\x%02x' 1\n", i, i - 1);
        bytes += line;
    }
    std::string huge_len = bytes + "257 'ab' 2147483647\n";
    std::string huge_id = bytes + "4294967296 'ab' 2\n";
    std::string p1 = write_temp("vocab_len.txt", Bytes(huge_len.begin(), huge_len.end()));
    std::string p2 = write_temp("vocab_id.txt", Bytes(huge_id.begin(), huge_id.end()));
    EXPECT_TRUE(refused_cheaply([&] { WorldTokenizer::load(p1); }, kFormat, "byte length mismatch"));
    EXPECT_TRUE(refused_cheaply([&] { WorldTokenizer::load(p2); }, kFormat, "bad id"));
}

}  // namespace
}  // namespace rwkv

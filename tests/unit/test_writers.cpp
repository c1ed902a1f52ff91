// The checkpoint writers: .safetensors and .pth files read back by the project's own readers bit-exactly, with the
// container details torch.load relies on (64-byte aligned zip entries, archive prefix, ZIP64, SETITEMS batches),
// atomic replacement, and — when /usr/bin/python3 with torch is present — torch.load on the written files.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "common/error.h"
#include "common/file_util.h"
#include "io/checkpoint.h"
#include "io/pth_writer.h"
#include "io/safetensors_writer.h"
#include "io/zip_reader.h"
#include "model/synthetic.h"
#include "model/weights.h"
#include "testutil/testutil.h"

namespace rwkv {
namespace {

namespace fs = std::filesystem;

std::vector<const TensorView*> pointers(const std::vector<TensorView>& v) {
    std::vector<const TensorView*> p;
    for (const TensorView& t : v) p.push_back(&t);
    return p;
}

std::unique_ptr<Checkpoint> tiny(DType dt, uint64_t seed = 1) {
    SyntheticSpec spec;
    spec.preset = "tiny";
    spec.dtype = dt;
    spec.seed = seed;
    return make_synthetic_checkpoint(spec);
}

void write(const std::string& path, const std::vector<const TensorView*>& t, uint64_t zip64_threshold = 0xFFFFFFFF) {
    if (path.size() > 4 && path.substr(path.size() - 4) == ".pth") {
        PthWriteOptions o;
        o.zip64_threshold = zip64_threshold;
        write_pth(path, t, o);
    } else {
        write_safetensors(path, t);
    }
}

// Same names (in order when `ordered`), dtypes, shapes and bytes.
void expect_same(const std::vector<TensorView>& want, const Checkpoint& got, bool ordered) {
    ASSERT_EQ(got.tensors().size(), want.size());
    for (size_t i = 0; i < want.size(); i++) {
        const TensorView& w = want[i];
        const TensorView* g = ordered ? &got.tensors()[i] : got.find(w.name);
        ASSERT_TRUE(g) << w.name;
        EXPECT_EQ(g->name, w.name);
        EXPECT_EQ(g->dtype, w.dtype) << w.name;
        EXPECT_EQ(g->shape, w.shape) << w.name;
        ASSERT_EQ(g->nbytes(), w.nbytes()) << w.name;
        if (w.nbytes() > 0) {  // an empty tensor may have no data pointer
            EXPECT_EQ(std::memcmp(g->data, w.data, w.nbytes()), 0) << w.name;
        }
    }
}

// ---- round trips through Checkpoint::open

TEST(Writers, SyntheticModelRoundTripsInEveryFormatAndDtype) {
    for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
        auto ckpt = tiny(dt);
        for (const char* ext : {".pth", ".safetensors"}) {
            SCOPED_TRACE(std::string(dtype_name(dt)) + ext);
            const std::string path = test::temp_path(std::string("tiny-") + dtype_name(dt) + ext);
            write(path, pointers(ckpt->tensors()));
            auto back = Checkpoint::open(path);
            EXPECT_EQ(back->format(),
                      ext == std::string(".pth") ? CheckpointFormat::Pth : CheckpointFormat::Safetensors);
            expect_same(ckpt->tensors(), *back, /*ordered=*/true);
            LoadedModel m = load_model(std::move(back));
            EXPECT_EQ(m.config.describe(), synthetic_config("tiny").describe());
            EXPECT_EQ(m.n_params, checkpoint_param_count(m.config));
        }
    }
}

// Tensors of awkward sizes: scalars, empty tensors, odd byte counts, many dimensions, big dimensions (pickle
// BININT2 / BININT paths).
struct OddSet {
    std::vector<std::vector<uint8_t>> data;
    std::vector<TensorView> views;
    void add(const std::string& name, DType dt, std::vector<int64_t> shape, uint32_t seed) {
        TensorView t;
        t.name = name;
        t.dtype = dt;
        t.shape = std::move(shape);
        std::vector<uint8_t> bytes(t.nbytes());
        std::mt19937 rng(seed);
        for (uint8_t& b : bytes) b = uint8_t(rng());
        data.push_back(std::move(bytes));
        views.push_back(t);
    }
    std::vector<TensorView> finish() {
        for (size_t i = 0; i < views.size(); i++) views[i].data = data[i].data();
        return views;
    }
};

std::vector<TensorView> odd_tensors(OddSet& s) {
    s.add("scalar.f32", DType::F32, {}, 1);
    s.add("three.f16", DType::F16, {3}, 2);
    s.add("empty.bf16", DType::BF16, {0, 4}, 3);
    s.add("five.bf16", DType::BF16, {5, 1}, 4);
    s.add("cube.f32", DType::F32, {2, 3, 5}, 5);
    s.add("deep.f16", DType::F16, {1, 2, 1, 3, 1, 2}, 6);
    s.add("wide.bf16", DType::BF16, {1, 70000}, 7);
    s.add("long.f16", DType::F16, {300, 257}, 8);
    s.add("unicode.é.ünï", DType::F32, {4}, 9);
    return s.finish();
}

TEST(Writers, OddShapesRoundTrip) {
    OddSet s;
    std::vector<TensorView> t = odd_tensors(s);
    const std::string pth = test::temp_path("odd.pth"), st = test::temp_path("odd.safetensors");
    write_pth(pth, pointers(t));
    write_safetensors(st, pointers(t));
    expect_same(t, *Checkpoint::open(pth), true);
    expect_same(t, *Checkpoint::open(st), false);  // odd byte counts are stored last
}

TEST(Writers, SafetensorsLayout) {
    OddSet s;
    std::vector<TensorView> t = odd_tensors(s);
    const std::string path = test::temp_path("layout.safetensors");
    write_safetensors(path, pointers(t));
    std::vector<uint8_t> b = test::read_file(path);
    uint64_t n = 0;
    for (int i = 0; i < 8; i++) n |= uint64_t(b[i]) << (8 * i);
    EXPECT_EQ((8 + n) % 8, 0u);
    nlohmann::ordered_json h = nlohmann::ordered_json::parse(b.begin() + 8, b.begin() + 8 + long(n));
    EXPECT_EQ(h.begin().key(), "__metadata__");
    EXPECT_EQ(h["__metadata__"], nlohmann::ordered_json({{"format", "pt"}}));
    // Header in the given order; data contiguous from 0 to the end, 8-aligned for sizes that are multiples of 8.
    std::vector<std::pair<uint64_t, uint64_t>> ranges;
    size_t i = 0;
    for (auto it = std::next(h.begin()); it != h.end(); ++it, ++i) {
        EXPECT_EQ(it.key(), t[i].name);
        uint64_t a = (*it)["data_offsets"][0], z = (*it)["data_offsets"][1];
        ranges.push_back({a, z});
        if (t[i].nbytes() % 8 == 0) {
            EXPECT_EQ(a % 8, 0u) << t[i].name;
        }
    }
    std::sort(ranges.begin(), ranges.end());
    uint64_t at = 0;
    for (auto [a, z] : ranges) {
        EXPECT_EQ(a, at);
        at = z;
    }
    EXPECT_EQ(8 + n + at, b.size());
}

TEST(Writers, PthLayout) {
    auto ckpt = tiny(DType::BF16);
    const std::string path = test::temp_path("my.model.pth");
    write_pth(path, pointers(ckpt->tensors()));
    std::vector<uint8_t> b = test::read_file(path);
    ZipReader zip(path, b.data(), b.size());
    const size_t n = ckpt->tensors().size();
    ASSERT_EQ(zip.entries().size(), n + 3);
    EXPECT_EQ(zip.entries().front().name, "my.model/data.pkl");  // prefix: the file name without its extension
    EXPECT_EQ(zip.entries().back().name, "my.model/version");
    const ZipEntry* version = zip.find("my.model/version");
    const ZipEntry* order = zip.find("my.model/byteorder");
    ASSERT_TRUE(version && order);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(zip.entry_data(*version)), version->size), "3\n");
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(zip.entry_data(*order)), order->size), "little");
    for (const ZipEntry& e : zip.entries()) EXPECT_EQ(e.data_offset % 64, 0u) << e.name;
    for (size_t i = 0; i < n; i++) {
        const ZipEntry* e = zip.find("my.model/data/" + std::to_string(i));
        ASSERT_TRUE(e);
        EXPECT_EQ(e->size, ckpt->tensors()[i].nbytes());
    }
    // Local headers as torch writes them: flags 0x0808, STORED, zero CRC and sizes, a data descriptor after the
    // data with the CRC of the bytes.
    for (const ZipEntry& e : zip.entries()) {
        const uint8_t* d = zip.entry_data(e);
        uint32_t crc = 0, size = 0;
        std::memcpy(&crc, d + e.size + 4, 4);
        std::memcpy(&size, d + e.size + 8, 4);
        EXPECT_EQ(crc, crc32(d, e.size)) << e.name;
        EXPECT_EQ(size, e.size) << e.name;
    }
    const uint8_t* lh = b.data();
    EXPECT_EQ(lh[6] | lh[7] << 8, 0x0808);
    EXPECT_EQ(lh[8] | lh[9] << 8, 0);
    for (int k = 14; k < 26; k++) EXPECT_EQ(lh[k], 0) << k;
}

TEST(Writers, PthWithManyTensorsUsesSeveralSetitemsBatches) {
    std::vector<std::vector<float>> data;
    std::vector<TensorView> t;
    for (int i = 0; i < 2501; i++) data.push_back({float(i), -float(i), 0.5f * i});
    for (int i = 0; i < 2501; i++) t.push_back({"t." + std::to_string(i), DType::F32, {3}, data[i].data()});
    const std::string path = test::temp_path("many.pth");
    write_pth(path, pointers(t));
    expect_same(t, *Checkpoint::open(path), true);
}

TEST(Writers, PthWithZip64FieldsRoundTrips) {
    auto ckpt = tiny(DType::F16);
    OddSet s;
    std::vector<TensorView> odd = odd_tensors(s);
    for (uint64_t threshold : {uint64_t(1), uint64_t(1000), uint64_t(100000)}) {
        SCOPED_TRACE(threshold);
        const std::string path = test::temp_path("zip64.pth");
        PthWriteOptions o;
        o.zip64_threshold = threshold;
        write_pth(path, pointers(ckpt->tensors()), o);
        expect_same(ckpt->tensors(), *Checkpoint::open(path), true);
        write_pth(path, pointers(odd), o);
        expect_same(odd, *Checkpoint::open(path), true);
    }
}

// ---- atomic replacement and errors

TEST(Writers, ReplaceAtomicallyAndLeaveNoTemporaries) {
    const std::string dir = test::temp_path("atomic");
    fs::create_directories(dir);
    auto a = tiny(DType::BF16, 1), b = tiny(DType::BF16, 2);
    for (const char* ext : {".pth", ".safetensors"}) {
        const std::string path = dir + "/model" + ext;
        write(path, pointers(a->tensors()));
        write(path, pointers(b->tensors()));  // replaces
        expect_same(b->tensors(), *Checkpoint::open(path), true);
        // An invalid tensor list fails before touching the file.
        std::vector<const TensorView*> dup = pointers(a->tensors());
        dup.push_back(dup.front());
        try {
            write(path, dup);
            FAIL() << "duplicate names accepted";
        } catch (const Error& e) {
            EXPECT_EQ(e.status(), RWKV_STATUS_INVALID_ARGUMENT);
            EXPECT_NE(std::string(e.what()).find("emb.weight"), std::string::npos) << e.what();
        }
        expect_same(b->tensors(), *Checkpoint::open(path), true);
    }
    size_t files = 0;
    for (auto& e : fs::directory_iterator(dir)) files += e.is_regular_file();
    EXPECT_EQ(files, 2u);  // no leftover temporaries
    for (const char* ext : {".pth", ".safetensors"}) {
        try {
            write(dir + "/no/such/dir/model" + ext, pointers(a->tensors()));
            FAIL() << "wrote into a missing directory";
        } catch (const Error& e) {
            EXPECT_EQ(e.status(), RWKV_STATUS_IO_ERROR);
            EXPECT_NE(std::string(e.what()).find("no/such/dir"), std::string::npos) << e.what();
        }
    }
    TensorView nodata{"x", DType::F32, {4}, nullptr};
    EXPECT_THROW(write_pth(dir + "/x.pth", {&nodata}), Error);
    EXPECT_THROW(write_safetensors(dir + "/x.safetensors", {&nodata}), Error);
}

TEST(Writers, Crc32MatchesTheReference) {
    std::mt19937 rng(5);
    std::vector<uint8_t> b(1 << 20);
    for (uint8_t& x : b) x = uint8_t(rng());
    for (size_t n : {0, 1, 7, 8, 9, 63, 64, 1000, 1 << 20}) EXPECT_EQ(crc32_fast(b.data(), n), crc32(b.data(), n)) << n;
    EXPECT_EQ(crc32_fast(b.data() + 5, 1000, crc32_fast(b.data(), 5)), crc32(b.data(), 1005));
    EXPECT_EQ(crc32_fast("123456789", 9), 0xCBF43926u);  // the CRC-32 check value
}

// ---- torch.load

bool have_torch() {
    static const bool yes = std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
    return yes;
}

// Loads each file with torch.load and prints one JSON object per file: every tensor's name, dtype, shape,
// storage offset, contiguity and the CRC-32 of its bytes, plus whether torch.save of the loaded dict produces the
// same data.pkl.
const char* kTorchScript = R"PY(
import io, json, sys, zipfile, zlib, torch
for path in sys.argv[1:]:
    sd = torch.load(path)
    out = {"type": type(sd).__name__, "tensors": []}
    for k, v in sd.items():
        raw = v.view(torch.int16 if v.element_size() == 2 else torch.int32).numpy().tobytes() if v.numel() else b""
        out["tensors"].append([k, str(v.dtype), list(v.shape), v.storage_offset(), v.is_contiguous(),
                               zlib.crc32(raw)])
    buf = io.BytesIO()
    torch.save(sd, buf)
    def pkl(z):
        return z.read([n for n in z.namelist() if n.endswith("/data.pkl")][0])
    out["same_pickle"] = pkl(zipfile.ZipFile(path)) == pkl(zipfile.ZipFile(buf))
    print(json.dumps(out))
)PY";

TEST(Writers, TorchLoadsThePthFilesBitExactly) {
    if (!have_torch()) GTEST_SKIP() << "/usr/bin/python3 with torch is not available";
    auto b16 = tiny(DType::BF16), f16 = tiny(DType::F16), f32 = tiny(DType::F32);
    OddSet s;
    std::vector<TensorView> odd = odd_tensors(s);
    std::vector<std::vector<float>> data;
    std::vector<TensorView> many;
    for (int i = 0; i < 2501; i++) data.push_back({float(i), 1.0f / float(i + 1)});
    for (int i = 0; i < 2501; i++) many.push_back({"m." + std::to_string(i), DType::F32, {2}, data[i].data()});

    struct Case {
        std::string file;
        const std::vector<TensorView>* tensors;
        uint64_t zip64_threshold;  // 1: every size and offset in ZIP64 fields (miniz, which torch reads with, checks
                                   // a saturated offset against the file size unless the sizes are saturated too, so
                                   // partly saturated small files are not valid test inputs for torch)
    };
    const std::vector<Case> cases = {
        {"tiny-bf16.pth", &b16->tensors(), 0xFFFFFFFF},
        {"tiny-f16-zip64.pth", &f16->tensors(), 1},
        {"tiny-f32.pth", &f32->tensors(), 0xFFFFFFFF},
        {"odd.pth", &odd, 0xFFFFFFFF},
        {"many.pth", &many, 0xFFFFFFFF},
        {"many-zip64.pth", &many, 1},
    };
    const std::string script = test::temp_path("check_torch.py");
    std::ofstream(script) << kTorchScript;
    std::string cmd = "/usr/bin/python3 " + script;
    for (const Case& c : cases) {
        write(test::temp_path(c.file), pointers(*c.tensors), c.zip64_threshold);
        cmd += " " + test::temp_path(c.file);
    }
    FILE* p = popen((cmd + " 2>&1").c_str(), "r");
    ASSERT_TRUE(p);
    std::string output;
    char buf[4096];
    while (size_t n = fread(buf, 1, sizeof buf, p)) output.append(buf, n);
    const std::string tail = output.size() > 3000 ? "..." + output.substr(output.size() - 3000) : output;
    ASSERT_EQ(pclose(p), 0) << tail;

    std::istringstream lines(output);
    std::string line;
    size_t k = 0;
    const char* torch_dtype[] = {"torch.float32", "torch.float16", "torch.bfloat16"};
    while (std::getline(lines, line)) {
        if (line.empty() || line[0] != '{') continue;  // torch's own warnings
        ASSERT_LT(k, cases.size()) << line.substr(0, 200);
        SCOPED_TRACE(cases[k].file);
        nlohmann::json j = nlohmann::json::parse(line);
        EXPECT_EQ(j["type"], "OrderedDict");
        EXPECT_TRUE(j["same_pickle"].get<bool>()) << "data.pkl differs from torch.save's";
        const std::vector<TensorView>& want = *cases[k].tensors;
        ASSERT_EQ(j["tensors"].size(), want.size());
        for (size_t i = 0; i < want.size(); i++) {
            const nlohmann::json& t = j["tensors"][i];
            EXPECT_EQ(t[0], want[i].name);
            EXPECT_EQ(t[1], torch_dtype[int(want[i].dtype)]);
            EXPECT_EQ(t[2].get<std::vector<int64_t>>(), want[i].shape);
            EXPECT_EQ(t[3], 0);
            EXPECT_TRUE(t[4].get<bool>());
            EXPECT_EQ(t[5].get<uint32_t>(), crc32_fast(want[i].data, want[i].nbytes())) << want[i].name;
        }
        k++;
    }
    EXPECT_EQ(k, cases.size()) << tail;
}

}  // namespace
}  // namespace rwkv

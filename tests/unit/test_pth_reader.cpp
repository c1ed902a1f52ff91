// The .pth reader: genuine torch.save files (tests/fixtures/io, made by tools/reference/make_io_fixtures.py)
// read bit-exactly, and malformed archives and pickles rejected with a FORMAT_ERROR or IO_ERROR whose message
// names the file and the problem.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "io/checkpoint.h"
#include "io/pickle.h"
#include "io/zip_reader.h"
#include "testutil/testutil.h"
#include "testutil/writers.h"

namespace rwkv {
namespace {

using test::Bytes;
using test::TensorSpec;

// Opening `path` must fail with `status` and a message "<path>: ..." containing `phrase`.
::testing::AssertionResult fails_with(const std::string& path, rwkv_status status, const std::string& phrase) {
    try {
        auto ckpt = Checkpoint::open(path);
        return ::testing::AssertionFailure() << path << " opened, with " << ckpt->tensors().size() << " tensors";
    } catch (const Error& e) {
        std::string msg = e.what();
        if (e.status() != status)
            return ::testing::AssertionFailure() << "status " << e.status() << " (expected " << status << "): " << msg;
        if (msg.rfind(path + ": ", 0) != 0)
            return ::testing::AssertionFailure() << "message does not start with the path: " << msg;
        if (msg.find(phrase) == std::string::npos)
            return ::testing::AssertionFailure() << "message lacks '" << phrase << "': " << msg;
        return ::testing::AssertionSuccess() << msg;
    }
}

std::string write_temp(const std::string& name, const Bytes& bytes) {
    std::string path = test::temp_path(name);
    test::write_file(path, bytes);
    return path;
}

::testing::AssertionResult bytes_fail_with(const std::string& name, const Bytes& bytes, const std::string& phrase) {
    return fails_with(write_temp(name, bytes), RWKV_STATUS_FORMAT_ERROR, phrase);
}

// Opening may succeed or throw rwkv::Error, but nothing else (no crash, no other exception).
void opens_or_format_error(const std::string& path) {
    try {
        Checkpoint::open(path);
    } catch (const Error& e) {
        EXPECT_EQ(e.status(), RWKV_STATUS_FORMAT_ERROR) << e.what();
    }
}

bool bit_equal(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * 4) == 0);
}

bool inside(const Checkpoint& c, const void* p) {
    auto q = static_cast<const uint8_t*>(p);
    return q >= c.file().data() && q < c.file().data() + c.file().size();
}

TensorSpec spec(const std::string& name, DType dtype, std::vector<int64_t> shape, const std::vector<float>& values) {
    TensorSpec t;
    t.name = name;
    t.dtype = dtype;
    t.shape = std::move(shape);
    t.data = dtype == DType::F32   ? test::f32_bytes(values)
             : dtype == DType::F16 ? test::f16_bytes(values)
                                   : test::bf16_bytes(values);
    return t;
}

std::vector<float> iota(size_t n, float start = 0.5f) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; i++) v[i] = start + float(i) * (i % 2 ? -1.0f : 1.0f);
    return v;
}

std::vector<TensorSpec> small_state_dict() {
    return {spec("emb.weight", DType::BF16, {3, 4}, iota(12)), spec("blocks.0.att.r_k", DType::F16, {2, 2}, iota(4, 2)),
            spec("blocks.0.att.w0", DType::F32, {1, 1, 3}, iota(3, -1))};
}

void expect_small_state_dict(const Checkpoint& c) {
    ASSERT_EQ(c.tensors().size(), 3u);
    auto want = small_state_dict();
    for (size_t i = 0; i < want.size(); i++) {
        const TensorView& t = c.tensors()[i];
        EXPECT_EQ(t.name, want[i].name);
        EXPECT_EQ(t.dtype, want[i].dtype);
        EXPECT_EQ(t.shape, want[i].shape);
        ASSERT_EQ(t.nbytes(), want[i].data.size());
        EXPECT_EQ(std::memcmp(t.data, want[i].data.data(), t.nbytes()), 0) << t.name;
    }
}

// ------------------------------------------------------------------ genuine torch files

nlohmann::json expected() {
    std::ifstream f(test::fixture("io/expected.json"));
    return nlohmann::json::parse(f);
}

class TorchFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(TorchFixture, ReadsBitExactly) {
    const std::string name = GetParam();
    nlohmann::json want = expected()[name];
    auto ckpt = Checkpoint::open(test::fixture("io/" + name));
    EXPECT_EQ(ckpt->format(), CheckpointFormat::Pth);
    const auto& tensors = ckpt->tensors();
    ASSERT_EQ(tensors.size(), want["tensors"].size());
    for (size_t i = 0; i < tensors.size(); i++) {
        const nlohmann::json& w = want["tensors"][i];
        const TensorView& t = tensors[i];
        SCOPED_TRACE(t.name);
        EXPECT_EQ(t.name, w["name"].get<std::string>());
        EXPECT_STREQ(dtype_name(t.dtype), w["dtype"].get<std::string>().c_str());
        EXPECT_EQ(t.shape, w["shape"].get<std::vector<int64_t>>());
        std::vector<float> values;
        for (double v : w["values"]) values.push_back(static_cast<float>(v));
        EXPECT_TRUE(bit_equal(test::to_f32(t), values));
        EXPECT_EQ(ckpt->find(t.name), &t);
    }
}

INSTANTIATE_TEST_SUITE_P(Io, TorchFixture,
                         ::testing::Values("ordered.pth", "module.pth", "views.pth", "peft_state.pth", "tiny.pth",
                                           "params.pth"),
                         [](const auto& param_info) {
                             std::string s = param_info.param;
                             return s.substr(0, s.find('.'));
                         });

TEST(PthReader, TorchViewsAreCopiedOnlyWhenStrided) {
    auto ckpt = Checkpoint::open(test::fixture("io/views.pth"));
    EXPECT_TRUE(inside(*ckpt, ckpt->find("base")->data));
    EXPECT_TRUE(inside(*ckpt, ckpt->find("sliced")->data));  // storage offset 5, contiguous: zero copy
    EXPECT_FALSE(inside(*ckpt, ckpt->find("transposed")->data));
    EXPECT_FALSE(inside(*ckpt, ckpt->find("expanded")->data));
    EXPECT_FALSE(inside(*ckpt, ckpt->find("permuted")->data));
    EXPECT_EQ(ckpt->find("blocks.0.att.key.weight"), nullptr);
}

TEST(PthReader, TorchFileWithForbiddenGlobal) {
    EXPECT_TRUE(fails_with(test::fixture("io/forbidden.pth"), RWKV_STATUS_FORMAT_ERROR,
                           "forbidden pickle global 'collections Counter' at byte"));
}

TEST(PthReader, FormatName) {
    EXPECT_STREQ(checkpoint_format_name(CheckpointFormat::Pth), "pth");
    EXPECT_STREQ(checkpoint_format_name(CheckpointFormat::Safetensors), "safetensors");
}

// ------------------------------------------------------------------ synthetic archives that must be accepted

TEST(PthReader, SyntheticStateDict) {
    auto ckpt = Checkpoint::open(write_temp("plain.pth", test::make_pth(small_state_dict())));
    expect_small_state_dict(*ckpt);
    for (const TensorView& t : ckpt->tensors()) EXPECT_TRUE(inside(*ckpt, t.data)) << t.name;
}

TEST(PthReader, PlainDictAndModuleMetadata) {
    test::PthOptions opt;
    opt.pickle.ordered_dict = false;
    expect_small_state_dict(*Checkpoint::open(write_temp("dict.pth", test::make_pth(small_state_dict(), opt))));
    opt.pickle.ordered_dict = true;
    opt.pickle.module_metadata = true;
    expect_small_state_dict(*Checkpoint::open(write_temp("meta.pth", test::make_pth(small_state_dict(), opt))));
}

TEST(PthReader, AnyArchivePrefix) {
    test::PthOptions opt;
    opt.prefix = "RWKV-x070-World-0.1B-v2.8-20241210-ctx4096";
    expect_small_state_dict(*Checkpoint::open(write_temp("prefix.pth", test::make_pth(small_state_dict(), opt))));
}

TEST(PthReader, Zip64Records) {
    test::PthOptions opt;
    opt.zip.zip64 = true;
    expect_small_state_dict(*Checkpoint::open(write_temp("zip64.pth", test::make_pth(small_state_dict(), opt))));
}

TEST(PthReader, BytesBeforeTheArchive) {
    for (size_t junk : {64, 100, 3}) {  // 3: the data is no longer aligned and is copied
        for (bool zip64 : {false, true}) {
            SCOPED_TRACE(std::to_string(junk) + (zip64 ? " zip64" : ""));
            test::PthOptions opt;
            opt.zip.prefix_bytes = junk;
            opt.zip.zip64 = zip64;
            expect_small_state_dict(*Checkpoint::open(write_temp("junk.pth", test::make_pth(small_state_dict(), opt))));
        }
    }
}

TEST(PthReader, PlainZipLayout) {
    test::PthOptions opt;
    opt.zip.torch_layout = false;  // no padding, sizes in the local headers, no data descriptors
    expect_small_state_dict(*Checkpoint::open(write_temp("plainzip.pth", test::make_pth(small_state_dict(), opt))));
}

TEST(PthReader, ManySetItemsBatches) {
    std::vector<TensorSpec> tensors;
    for (int i = 0; i < 2345; i++) tensors.push_back(spec("t" + std::to_string(i), DType::F32, {1}, {float(i)}));
    auto ckpt = Checkpoint::open(write_temp("many.pth", test::make_pth(tensors)));
    ASSERT_EQ(ckpt->tensors().size(), tensors.size());
    EXPECT_EQ(ckpt->tensors()[2000].name, "t2000");
    EXPECT_EQ(test::to_f32(*ckpt->find("t2344"))[0], 2344.0f);
}

TEST(PthReader, StridesOffsetsAndSharedStorage) {
    std::vector<float> storage = iota(8);
    TensorSpec whole = spec("whole", DType::F32, {8}, storage);
    TensorSpec transposed = whole;  // [[0, 3], [1, 4], [2, 5]] of the 2x3 matrix starting at element 1
    transposed.name = "transposed";
    transposed.shape = {3, 2};
    transposed.stride = {1, 3};
    transposed.offset = 1;
    transposed.storage_key = "0";
    TensorSpec expanded = whole;
    expanded.name = "expanded";
    expanded.shape = {2, 3};
    expanded.stride = {0, 1};
    expanded.storage_key = "0";
    TensorSpec scalar = whole;
    scalar.name = "scalar";
    scalar.shape = {};
    scalar.offset = 7;
    scalar.storage_key = "0";
    TensorSpec empty = whole;
    empty.name = "empty";
    empty.shape = {0, 4};
    empty.storage_key = "0";
    auto ckpt =
        Checkpoint::open(write_temp("strides.pth", test::make_pth({whole, transposed, expanded, scalar, empty})));
    const auto s = storage;
    EXPECT_TRUE(bit_equal(test::to_f32(*ckpt->find("transposed")), {s[1], s[4], s[2], s[5], s[3], s[6]}));
    EXPECT_TRUE(bit_equal(test::to_f32(*ckpt->find("expanded")), {s[0], s[1], s[2], s[0], s[1], s[2]}));
    EXPECT_TRUE(bit_equal(test::to_f32(*ckpt->find("scalar")), {s[7]}));
    EXPECT_EQ(ckpt->find("scalar")->numel(), 1);
    EXPECT_EQ(ckpt->find("empty")->numel(), 0);
    EXPECT_EQ(ckpt->find("empty")->shape_string(), "[0, 4]");
}

TEST(PthReader, LongAndWideIntegers) {
    // numel written with LONG1, offset with BININT2, sizes with BININT: all the integer opcodes.
    Bytes data = test::f32_bytes(iota(300));
    test::PickleBuilder p;
    p.proto(2).empty_dict().mark().str("x").global("torch._utils", "_rebuild_tensor_v2");
    p.mark().mark().str("storage").global("torch", "FloatStorage").str("0").str("cpu");
    p.raw({0x8a, 0x02, 0x2c, 0x01}).tuple().binpersid();  // LONG1 300
    p.raw({'M', 0x2c, 0x00});                             // BININT2 44
    p.raw({'J', 0x00, 0x01, 0x00, 0x00}).op(0x85);        // BININT 256, TUPLE1
    p.int_tuple({1}).newfalse().empty_dict().tuple().reduce().setitems().stop();
    auto ckpt = Checkpoint::open(write_temp("ints.pth", test::make_pth_with_pickle(p.bytes(), {{"0", data}})));
    const TensorView& t = ckpt->tensors().at(0);
    EXPECT_EQ(t.shape, std::vector<int64_t>{256});
    EXPECT_EQ(test::to_f32(t)[0], iota(300)[44]);
}

// ------------------------------------------------------------------ files and the zip layer

TEST(PthReader, MissingFile) {
    EXPECT_TRUE(fails_with(test::temp_path("does-not-exist.pth"), RWKV_STATUS_IO_ERROR,
                           "cannot open: No such file or directory"));
}

TEST(PthReader, Directory) {
    EXPECT_TRUE(fails_with(test::temp_dir(), RWKV_STATUS_IO_ERROR, "not a regular file"));
}

TEST(PthReader, EmptyFile) {
    EXPECT_TRUE(bytes_fail_with("empty.pth", {}, "empty file"));
}

TEST(PthReader, NotACheckpoint) {
    EXPECT_TRUE(bytes_fail_with("text.pth", Bytes(100, 'x'), "not a .pth (zip) or .safetensors file"));
}

TEST(PthReader, TruncatedZip) {
    Bytes b = test::make_pth(small_state_dict());
    b.resize(b.size() - 10);  // the end record is cut
    EXPECT_TRUE(bytes_fail_with("trunc.pth", b, "no end-of-central-directory record"));
    b.resize(b.size() / 2);  // only the start remains
    EXPECT_TRUE(bytes_fail_with("trunc.pth", b, "no end-of-central-directory record"));
}

TEST(PthReader, EveryTruncationIsRejected) {
    Bytes b = test::make_pth(small_state_dict());
    test::MemFile file;
    for (size_t n = 0; n < b.size(); n++) {
        file.write(Bytes(b.begin(), b.begin() + static_cast<ptrdiff_t>(n)));
        EXPECT_THROW(Checkpoint::open(file.path()), Error) << "length " << n;
    }
}

TEST(PthReader, ByteFlipsNeverCrash) {
    for (bool zip64 : {false, true}) {
        test::PthOptions opt;
        opt.zip.zip64 = zip64;
        opt.pickle.module_metadata = true;
        Bytes b = test::make_pth(small_state_dict(), opt);
        test::MemFile file;
        for (size_t i = 0; i < b.size(); i++) {
            for (uint8_t mask : {0x01, 0x80, 0xff}) {
                Bytes c = b;
                c[i] ^= mask;
                file.write(c);
                opens_or_format_error(file.path());
            }
        }
    }
}

TEST(PthReader, BadCentralDirectory) {
    Bytes good = test::make_pth(small_state_dict());
    size_t cd = test::find_sig(good, 0x02014b50);
    size_t eocd = test::rfind_sig(good, 0x06054b50);
    ASSERT_NE(cd, SIZE_MAX);

    Bytes b = good;
    b[cd] = 'X';  // first central entry's signature
    EXPECT_TRUE(bytes_fail_with("cd1.pth", b, "bad signature (bad central directory)"));

    b = good;
    test::put_le32(b, cd + 42, 7);  // local header offset pointing nowhere
    EXPECT_TRUE(bytes_fail_with("cd2.pth", b, "no local header at offset 7"));

    b = good;
    test::put_le32(b, eocd + 12, 0x7FFFFFF0);  // central directory size larger than the file
    EXPECT_TRUE(bytes_fail_with("cd3.pth", b, "central directory size 2147483632 is larger"));

    b = good;
    test::put_le16(b, eocd + 10, 9999);  // more entries than fit
    EXPECT_TRUE(bytes_fail_with("cd4.pth", b, "cannot hold 9999 entries"));

    b = good;
    test::put_le32(b, eocd + 16, static_cast<uint32_t>(cd + 1));  // stated start after the actual start
    EXPECT_TRUE(bytes_fail_with("cd5.pth", b, "(bad central directory)"));

    b = good;
    test::put_le32(b, cd + 24, 0x00100000);  // first entry's size past the central directory
    test::put_le32(b, cd + 20, 0x00100000);
    EXPECT_TRUE(bytes_fail_with("cd6.pth", b, "runs past the start of the central directory"));

    b = good;
    test::put_le32(b, cd + 20, 0xFFFFFFFF);  // saturated without a ZIP64 extra field
    EXPECT_TRUE(bytes_fail_with("cd7.pth", b, "no ZIP64 extra field"));
}

TEST(PthReader, BadZip64Records) {
    test::PthOptions opt;
    opt.zip.zip64 = true;
    Bytes good = test::make_pth(small_state_dict(), opt);
    size_t rec = test::rfind_sig(good, 0x06064b50);
    size_t loc = test::rfind_sig(good, 0x07064b50);
    ASSERT_NE(rec, SIZE_MAX);
    ASSERT_NE(loc, SIZE_MAX);

    Bytes b = good;
    b[rec] = 'X';
    EXPECT_TRUE(bytes_fail_with("z1.pth", b, "holds no ZIP64 end record"));

    b = good;
    b[loc] = 'X';  // EOCD still saturated, but no locator
    EXPECT_TRUE(bytes_fail_with("z2.pth", b, "ZIP64 markers but no ZIP64 locator"));

    b = good;
    test::put_le64(b, rec + 48, uint64_t(1) << 62);  // central directory offset far beyond the file
    EXPECT_TRUE(bytes_fail_with("z3.pth", b, "bad central directory"));

    b = good;
    size_t cd = test::find_sig(b, 0x02014b50);
    size_t name_len = b[cd + 28] | (b[cd + 29] << 8);
    test::put_le16(b, cd + 46 + name_len + 2, 8);  // ZIP64 field of 8 bytes cannot hold three 64-bit values
    EXPECT_TRUE(bytes_fail_with("z4.pth", b, "ZIP64 extra field is too short"));
}

TEST(PthReader, CompressedEntry) {
    test::PthOptions opt;
    opt.zip.compressed_entry = "archive/data/1";
    EXPECT_TRUE(bytes_fail_with("deflate.pth", test::make_pth(small_state_dict(), opt),
                                "entry 'archive/data/1': compression method 8 is not supported"));
}

TEST(PthReader, NoPickle) {
    Bytes b = test::make_zip({{"model/weights.bin", Bytes(16, 0)}});
    EXPECT_TRUE(bytes_fail_with("nopkl.pth", b, "no '<name>/data.pkl' entry"));
    b = test::make_zip({{"a/data.pkl", Bytes(1, '.')}, {"b/data.pkl", Bytes(1, '.')}});
    EXPECT_TRUE(bytes_fail_with("twopkl.pth", b, "two pickles in one archive"));
}

TEST(PthReader, DuplicateZipEntry) {
    Bytes b = test::make_zip({{"archive/data.pkl", Bytes(1, '.')}, {"archive/data.pkl", Bytes(1, '.')}});
    EXPECT_TRUE(bytes_fail_with("dupentry.pth", b, "duplicate entry name"));
}

// ------------------------------------------------------------------ storages and tensor ranges

TEST(PthReader, MissingStorage) {
    test::PthOptions opt;
    opt.omit_storages = true;
    EXPECT_TRUE(bytes_fail_with("nostorage.pth", test::make_pth(small_state_dict(), opt),
                                "tensor 'emb.weight': storage entry 'archive/data/0' is missing"));
}

TEST(PthReader, StorageSizeMismatch) {
    auto t = small_state_dict();
    t[1].storage_numel = 5;  // entry holds 4 halves
    EXPECT_TRUE(bytes_fail_with("storagesize.pth", test::make_pth(t),
                                "storage 'archive/data/1' has 8 bytes, expected 5 f16 elements"));
}

TEST(PthReader, StorageOutOfRange) {
    auto t = small_state_dict();
    t[0].offset = 1;  // 12 elements from offset 1 in a 12-element storage
    EXPECT_TRUE(bytes_fail_with("range1.pth", test::make_pth(t), "reaches element 12, outside its storage of 12"));
    t = small_state_dict();
    t[0].stride = {5, 1};  // last element 2*5 + 3 = 13
    EXPECT_TRUE(bytes_fail_with("range2.pth", test::make_pth(t), "reaches element 13"));
    t = small_state_dict();
    t[0].shape = {0, 4};
    t[0].offset = 13;  // empty, but the offset is still past the storage
    EXPECT_TRUE(bytes_fail_with("range3.pth", test::make_pth(t), "outside its storage"));
}

TEST(PthReader, SharedStorageWithTwoTypes) {
    auto t = small_state_dict();
    t[1].storage_key = "0";
    t[1].dtype = DType::F32;
    EXPECT_TRUE(bytes_fail_with("shared.pth", test::make_pth(t), "used with two different types or sizes"));
}

TEST(PthReader, AbsurdSizes) {
    auto t = small_state_dict();
    t[0].shape = {int64_t(1) << 20, int64_t(1) << 20};  // 2^40 elements claimed by a 24-byte storage
    t[0].storage_numel = int64_t(1) << 40;
    EXPECT_TRUE(bytes_fail_with("huge1.pth", test::make_pth(t), "expected 1099511627776 bf16 elements"));

    t = small_state_dict();
    t[0].storage_numel = int64_t(1) << 62;  // numel * 2 bytes overflows 64 bits
    EXPECT_TRUE(bytes_fail_with("huge2.pth", test::make_pth(t), "expected 4611686018427387904 bf16 elements"));

    t = small_state_dict();
    t[0].shape = {int64_t(1) << 40, int64_t(1) << 40};  // numel overflows
    EXPECT_TRUE(bytes_fail_with("huge3.pth", test::make_pth(t), "is too large"));

    t = small_state_dict();
    t[0].shape = {int64_t(1) << 20, int64_t(1) << 20};  // fits the storage through zero strides
    t[0].stride = {0, 0};
    EXPECT_TRUE(bytes_fail_with("huge4.pth", test::make_pth(t), "larger than the file; refusing to expand it"));
}

TEST(PthReader, UnsupportedStorageType) {
    auto t = small_state_dict();
    t[2].storage_type = "DoubleStorage";
    EXPECT_TRUE(bytes_fail_with("double.pth", test::make_pth(t),
                                "forbidden pickle global 'torch DoubleStorage' (unsupported storage type"));
}

TEST(PthReader, DuplicateKey) {
    auto t = small_state_dict();
    t[2].name = t[0].name;
    EXPECT_TRUE(bytes_fail_with("dupkey.pth", test::make_pth(t), "duplicate tensor name 'emb.weight'"));
}

// ------------------------------------------------------------------ hostile pickles

::testing::AssertionResult pickle_fails_with(const test::PickleBuilder& p, const std::string& phrase) {
    return bytes_fail_with("evil.pth", test::make_pth_with_pickle(p.bytes(), {}), phrase);
}

TEST(PthReader, ForbiddenGlobal) {
    test::PickleBuilder p;
    p.proto(2).global("os", "system").str("echo pwned").op(0x85).reduce().stop();
    EXPECT_TRUE(pickle_fails_with(p, "archive/data.pkl: forbidden pickle global 'os system' at byte 2"));

    test::PickleBuilder q;  // the same through STACK_GLOBAL (protocol 4)
    q.proto(4).str("builtins").str("eval").op(0x93).stop();
    EXPECT_TRUE(pickle_fails_with(q, "forbidden pickle global 'builtins eval'"));
}

TEST(PthReader, UnknownOpcode) {
    test::PickleBuilder p;
    p.proto(2).op(0xff);
    EXPECT_TRUE(pickle_fails_with(p, "unknown or unsupported pickle opcode 0xff at byte 2"));
    test::PickleBuilder q;
    q.proto(2).global("collections", "OrderedDict").empty_tuple().op(0x81);  // NEWOBJ
    EXPECT_TRUE(pickle_fails_with(q, "opcode 0x81 at byte 28"));
    test::PickleBuilder r;
    r.proto(6);
    EXPECT_TRUE(pickle_fails_with(r, "pickle protocol 6 is not supported"));
}

TEST(PthReader, WhitelistedCallablesOnly) {
    test::PickleBuilder p;
    p.proto(2).global("torch", "FloatStorage").empty_tuple().reduce().stop();
    EXPECT_TRUE(pickle_fails_with(p, "REDUCE calls a storage type"));
    test::PickleBuilder q;
    q.proto(2).str("not callable").empty_tuple().reduce().stop();
    EXPECT_TRUE(pickle_fails_with(q, "REDUCE on a str, not a callable"));
    test::PickleBuilder r;
    r.proto(2).global("collections", "OrderedDict").str("x").op(0x85).reduce().stop();
    EXPECT_TRUE(pickle_fails_with(r, "OrderedDict() called with arguments"));
    test::PickleBuilder s;
    s.proto(2).empty_dict().str("x").op(0x85).build().empty_tuple().build().stop();
    EXPECT_TRUE(pickle_fails_with(s, "BUILD with a tuple state"));
}

TEST(PthReader, BadRebuildParameter) {
    test::PickleBuilder p;
    p.proto(2).global("torch._utils", "_rebuild_parameter").str("x").newfalse().empty_dict().op(0x87).reduce().stop();
    EXPECT_TRUE(pickle_fails_with(p, "_rebuild_parameter data: expected tensor, found str"));
}

TEST(PthReader, HugeString) {
    test::PickleBuilder p;
    p.proto(2).raw({'X', 0xff, 0xff, 0xff, 0xff}).stop();
    EXPECT_TRUE(pickle_fails_with(p, "string of 4294967295 bytes exceeds the limit of 1048576"));
    test::PickleBuilder q;
    q.proto(2).raw({'X', 0x10, 0x00, 0x00, 0x00, 'a', 'b'});
    EXPECT_TRUE(pickle_fails_with(q, "pickle ends inside an opcode argument"));
}

TEST(PthReader, DeepNesting) {
    test::PickleBuilder p;
    p.proto(2).empty_tuple();
    for (int i = 0; i < 5000; i++) p.op(0x85);  // ((((),),),)...
    p.stop();
    EXPECT_TRUE(pickle_fails_with(p, "containers nested deeper than 1000"));

    test::PickleBuilder q;
    q.proto(2);
    for (int i = 0; i < 5000; i++) q.mark();
    EXPECT_TRUE(pickle_fails_with(q, "MARKs nested deeper than 1000"));

    // Dicts mutated after being nested (through the memo) cannot defeat the bound into a crash.
    test::PickleBuilder r;
    r.proto(2).empty_dict().put(0);
    for (uint32_t i = 1; i < 100000; i++) r.get(i - 1).str("k").empty_dict().put(i).setitem().op('0');
    r.get(0).stop();
    EXPECT_TRUE(pickle_fails_with(r, "state-dict value 'k' is a dict, not a tensor"));
}

TEST(PthReader, StackAndMemoErrors) {
    test::PickleBuilder p;
    p.proto(2).reduce();
    EXPECT_TRUE(pickle_fails_with(p, "stack underflow at byte 2"));
    test::PickleBuilder q;
    q.proto(2).get(7);
    EXPECT_TRUE(pickle_fails_with(q, "memo entry 7 is read before it is written"));
    test::PickleBuilder r;
    r.proto(2).empty_dict();
    EXPECT_TRUE(pickle_fails_with(r, "pickle ends without STOP"));
    test::PickleBuilder s;
    s.proto(2).mark().str("a").setitems().stop();
    EXPECT_TRUE(pickle_fails_with(s, "stack underflow"));
}

TEST(PthReader, NotAStateDict) {
    test::PickleBuilder p;
    p.proto(2).empty_tuple().stop();
    EXPECT_TRUE(pickle_fails_with(p, "the pickled object is a tuple, not a dict"));
    test::PickleBuilder q;
    q.proto(2).empty_dict().integer(3).integer(4).setitem().stop();
    EXPECT_TRUE(pickle_fails_with(q, "state-dict key 0 is a int, not a string"));
    test::PickleBuilder r;
    r.proto(2).empty_dict().str("x").integer(4).setitem().stop();
    EXPECT_TRUE(pickle_fails_with(r, "state-dict value 'x' is a int, not a tensor"));
}

TEST(PthReader, BadRebuildArguments) {
    test::PickleBuilder p;
    p.proto(2).global("torch._utils", "_rebuild_tensor_v2").mark().integer(1).integer(0).tuple().reduce().stop();
    EXPECT_TRUE(pickle_fails_with(p, "_rebuild_tensor_v2 called with 2 arguments"));
    test::PickleBuilder q;
    q.proto(2).mark().str("storage").global("torch", "FloatStorage").str("0").str("cpu").integer(-1).tuple();
    q.binpersid().stop();
    EXPECT_TRUE(pickle_fails_with(q, "negative storage size -1"));
    test::PickleBuilder r;
    r.proto(2).mark().str("file").str("/etc/passwd").tuple().binpersid().stop();
    EXPECT_TRUE(pickle_fails_with(r, "persistent id is not a ('storage', type, key, location, numel) tuple"));
}

TEST(PthReader, PickleInterpreterDirectly) {
    // The interpreter alone, on a torch-like pickle: records come back in insertion order.
    Bytes pkl = test::state_dict_pickle(small_state_dict());
    auto tensors = parse_torch_pickle(pkl.data(), pkl.size(), "x");
    ASSERT_EQ(tensors.size(), 3u);
    EXPECT_EQ(tensors[0].key, "emb.weight");
    EXPECT_EQ(tensors[0].dtype, DType::BF16);
    EXPECT_EQ(tensors[0].storage_numel, 12);
    EXPECT_EQ(tensors[0].stride, (std::vector<int64_t>{4, 1}));
    EXPECT_EQ(tensors[2].storage_key, "2");
}

TEST(PthReader, ZipReaderDirectly) {
    Bytes b = test::make_zip({{"a/x", Bytes(5, 1)}, {"a/y", Bytes(0, 0)}}, {});
    ZipReader zip("z.zip", b.data(), b.size());
    ASSERT_EQ(zip.entries().size(), 2u);
    ASSERT_NE(zip.find("a/x"), nullptr);
    EXPECT_EQ(zip.find("a/x")->size, 5u);
    EXPECT_EQ(zip.find("a/x")->data_offset % 64, 0u);
    EXPECT_EQ(zip.find("a/z"), nullptr);
    EXPECT_TRUE(ZipReader::looks_like_zip(b.data(), b.size()));
    EXPECT_FALSE(ZipReader::looks_like_zip(b.data(), 10));
}

}  // namespace
}  // namespace rwkv
